/**
 * The metrics heapstate exports, once, for both faces (Prometheus and OpenTelemetry): names,
 * help, the source each value is read from, and the points of one snapshot. They complement
 * prom-client's defaults (process_resident_memory_bytes, nodejs_heap_*) and never repeat them:
 * what heapstate adds is the partition of RSS, the allocator's own figures and the findings.
 */
import { FINDING_IDS } from "./findings";
import type { PageStates, Snapshot } from "./types";

export interface MetricPoint {
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  /** Prometheus name without the prefix (heapstate_ is added). */
  name: string;
  /** OpenTelemetry instrument name. */
  otelName: string;
  unit: "By" | "1" | "s";
  help: string;
  points: MetricPoint[];
}

const pageStateNames: Array<[keyof PageStates, string]> = [
  ["activeBytes", "active"],
  ["dirtyBytes", "dirty"],
  ["muzzyBytes", "muzzy"],
  ["retainedBytes", "retained"],
  ["releasedBytes", "released"],
  ["freeBytes", "free"],
  ["topReleasableBytes", "top_releasable"],
  ["cachedBytes", "cached"],
];

const allocatorFigures = [
  ["allocatedBytes", "allocated", "bytes the program holds, as the allocator counts them"],
  ["activeBytes", "active", "bytes in pages holding live allocations"],
  ["residentBytes", "resident", "resident bytes, as the allocator estimates them"],
  ["mappedBytes", "mapped", "address space the allocator holds"],
  ["metadataBytes", "metadata", "the allocator's own metadata"],
  ["retainedBytes", "retained", "virtual memory kept but purged (not resident)"],
  ["committedBytes", "committed", "memory the allocator has committed"],
] as const;

export function metricFamilies(s: Snapshot): MetricFamily[] {
  const families: MetricFamily[] = [];
  const b = s.breakdown;
  families.push({
    name: "rss_bytes",
    otelName: "heapstate.memory.rss",
    unit: "By",
    help: "Resident set size that heapstate_rss_breakdown_bytes partitions (smaps_rollup Rss, or status VmRSS in the fast tier), same reading",
    points: s.process?.rssBytes !== undefined ? [{ labels: {}, value: s.process.rssBytes }] : [],
  });
  families.push({
    name: "rss_breakdown_bytes",
    otelName: "heapstate.memory.breakdown",
    unit: "By",
    help: 'RSS by part; the parts, "unattributed" (signed) included, add up to heapstate_rss_bytes',
    points: b
      ? [
          ...b.parts.map((p) => ({
            labels: {
              part: p.name,
              ...(p.allocator !== undefined ? { allocator: p.allocator } : {}),
              ...(p.name.startsWith("other-") && p.library !== undefined
                ? { library: p.library.slice(p.library.lastIndexOf("/") + 1) }
                : {}),
            },
            value: p.bytes,
          })),
          { labels: { part: "unattributed" }, value: b.unattributedBytes },
        ]
      : [],
  });
  for (const [key, suffix, help] of allocatorFigures) {
    families.push({
      name: `allocator_${suffix}_bytes`,
      otelName: `heapstate.allocator.${suffix}`,
      unit: "By",
      help: `Allocator: ${help}`,
      points: s.allocators.flatMap((a) => {
        const v = a[key];
        return v === undefined
          ? []
          : [{ labels: { allocator: a.allocator, serves_malloc: String(a.servesMalloc) }, value: v }];
      }),
    });
  }
  families.push({
    name: "allocator_pages_bytes",
    otelName: "heapstate.allocator.pages",
    unit: "By",
    help: "Allocator page states: active, dirty (free, resident), muzzy (MADV_FREE), retained/released (not resident), free, top_releasable, cached",
    points: s.allocators.flatMap((a) =>
      pageStateNames.flatMap(([key, state]) => {
        const v = a.pages?.[key];
        return v === undefined
          ? []
          : [{ labels: { allocator: a.allocator, serves_malloc: String(a.servesMalloc), state }, value: v }];
      }),
    ),
  });
  families.push({
    name: "allocator_arenas",
    otelName: "heapstate.allocator.arenas",
    unit: "1",
    help: "Allocator arenas (jemalloc arenas.narenas; glibc malloc_info heaps, deep tier)",
    points: s.allocators.flatMap((a) =>
      a.arenas === undefined
        ? []
        : [{ labels: { allocator: a.allocator, serves_malloc: String(a.servesMalloc) }, value: a.arenas }],
    ),
  });
  const cg = s.cgroup;
  families.push({
    name: "cgroup_usage_bytes",
    otelName: "heapstate.cgroup.usage",
    unit: "By",
    help: "Memory cgroup usage (memory.current, v1 memory.usage_in_bytes)",
    points: cg ? [{ labels: {}, value: cg.usageBytes }] : [],
  });
  families.push({
    name: "cgroup_limit_bytes",
    otelName: "heapstate.cgroup.limit",
    unit: "By",
    help: "Memory cgroup limit (memory.max, v1 memory.limit_in_bytes); absent when unlimited",
    points: cg?.limitBytes !== undefined ? [{ labels: {}, value: cg.limitBytes }] : [],
  });
  families.push({
    name: "cgroup_oom_kill_events",
    otelName: "heapstate.cgroup.oom_kills",
    unit: "1",
    help: "OOM kills in the memory cgroup (memory.events oom_kill, v1 memory.oom_control oom_kill)",
    points: cg?.oomKillEvents !== undefined ? [{ labels: {}, value: cg.oomKillEvents }] : [],
  });
  const active = new Map((s.findings ?? []).map((f) => [f.id, f.severity]));
  families.push({
    name: "finding",
    otelName: "heapstate.finding",
    unit: "1",
    help: "1 when heapstate's finding is present in the last reading, else 0 (ids and meanings: README, Findings)",
    points: FINDING_IDS.map((id) => ({ labels: { id }, value: active.has(id) ? 1 : 0 })),
  });
  families.push({
    name: "snapshot_cost_seconds",
    otelName: "heapstate.snapshot.cost",
    unit: "s",
    help: "What reading the snapshot cost (costMicros)",
    points: [{ labels: {}, value: s.costMicros / 1e6 }],
  });
  return families;
}
