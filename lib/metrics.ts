/**
 * The metrics heapstate exports, once, for both faces (Prometheus and OpenTelemetry): names,
 * help, the source each value is read from, and the points of one snapshot. They complement
 * prom-client's defaults (process_resident_memory_bytes, nodejs_heap_*) and never repeat them:
 * what heapstate adds is the partition of RSS, the allocator's own figures and the findings.
 */
import { FINDING_IDS } from "./findings";
import type { AllocatorState, PageStates, Snapshot } from "./types";

export interface MetricPoint {
  labels: Record<string, string>;
  value: number;
}

/** One metric family: how both faces name, type and describe it, and how its points are read off a snapshot. */
export interface MetricSpec {
  /** Prometheus name without the prefix (heapstate_ is added). */
  name: string;
  /** OpenTelemetry instrument name. */
  otelName: string;
  unit: "By" | "1" | "s";
  help: string;
  /** A count that only grows (Prometheus TYPE counter, an OpenTelemetry observable counter); a gauge otherwise. */
  counter?: true;
  /** The points of one reading; none for what it did not measure. */
  points(s: Snapshot): MetricPoint[];
}

/** A family with the points of one reading. */
export interface MetricFamily extends Omit<MetricSpec, "points"> {
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

const allocatorLabels = (a: AllocatorState) => ({ allocator: a.allocator, serves_malloc: String(a.servesMalloc) });

/** Every family heapstate exports, in the order they are written: the one table both faces read. */
export const METRICS: readonly MetricSpec[] = [
  {
    name: "rss_bytes",
    otelName: "heapstate.memory.rss",
    unit: "By",
    help: "Resident set size that heapstate_rss_breakdown_bytes partitions (smaps_rollup Rss, or status VmRSS in the fast tier), same reading",
    points: (s) => (s.process?.rssBytes !== undefined ? [{ labels: {}, value: s.process.rssBytes }] : []),
  },
  {
    name: "rss_breakdown_bytes",
    otelName: "heapstate.memory.breakdown",
    unit: "By",
    help: 'RSS by part; the parts, "unattributed" (signed) included, add up to heapstate_rss_bytes',
    points: (s) => {
      const b = s.breakdown;
      if (!b) return [];
      const out: MetricPoint[] = b.parts.map((p) => ({
        labels: {
          part: p.name,
          ...(p.allocator !== undefined ? { allocator: p.allocator } : {}),
          ...(p.name.startsWith("other-") && p.library !== undefined
            ? { library: p.library.slice(p.library.lastIndexOf("/") + 1) }
            : {}),
          ...(p.label !== undefined ? { reporter: p.label } : {}),
        },
        value: p.bytes,
      }));
      out.push({ labels: { part: "unattributed" }, value: b.unattributedBytes });
      return out;
    },
  },
  {
    name: "rss_breakdown_children_bytes",
    otelName: "heapstate.memory.breakdown.children",
    unit: "By",
    help: "The parts within a part, by owner: native-in-use's (native-v8, native-array-buffers, native-reported, native-allocator-slack, native-unclassified) and v8-heap's spaces; a parent's children add up to its heapstate_rss_breakdown_bytes point",
    points: (s) =>
      (s.breakdown?.parts ?? []).flatMap((p) =>
        (p.children ?? []).map((c) => ({
          labels: {
            parent: p.name,
            part: c.name,
            ...(c.label !== undefined ? { [c.name === "v8-space" ? "space" : "reporter"]: c.label } : {}),
          },
          value: c.bytes,
        })),
      ),
  },
  {
    name: "rss_peak_bytes",
    otelName: "heapstate.memory.rss.peak",
    unit: "By",
    help: "The peak RSS since the previous scrape (registerPrometheus({ resetPeak: true }) resets VmHWM at each), else since the last reset or the process start",
    points: (s) => (s.peak ? [{ labels: {}, value: s.peak.rssBytes }] : []),
  },
  ...allocatorFigures.map(
    ([key, suffix, help]): MetricSpec => ({
      name: `allocator_${suffix}_bytes`,
      otelName: `heapstate.allocator.${suffix}`,
      unit: "By",
      help: `Allocator: ${help}`,
      points: (s) =>
        s.allocators.flatMap((a) => {
          const v = a[key];
          return v === undefined ? [] : [{ labels: allocatorLabels(a), value: v }];
        }),
    }),
  ),
  {
    name: "allocator_pages_bytes",
    otelName: "heapstate.allocator.pages",
    unit: "By",
    help: "Allocator page states: active, dirty (free, resident), muzzy (MADV_FREE), retained/released (not resident), free, top_releasable, cached",
    points: (s) =>
      s.allocators.flatMap((a) =>
        pageStateNames.flatMap(([key, state]) => {
          const v = a.pages?.[key];
          return v === undefined ? [] : [{ labels: { ...allocatorLabels(a), state }, value: v }];
        }),
      ),
  },
  {
    name: "allocator_arenas",
    otelName: "heapstate.allocator.arenas",
    unit: "1",
    help: "Allocator arenas (jemalloc arenas.narenas; glibc malloc_info heaps, deep tier)",
    points: (s) =>
      s.allocators.flatMap((a) => (a.arenas === undefined ? [] : [{ labels: allocatorLabels(a), value: a.arenas }])),
  },
  {
    name: "cgroup_usage_bytes",
    otelName: "heapstate.cgroup.usage",
    unit: "By",
    help: "Memory cgroup usage (memory.current, v1 memory.usage_in_bytes)",
    points: (s) => (s.cgroup ? [{ labels: {}, value: s.cgroup.usageBytes }] : []),
  },
  {
    name: "cgroup_limit_bytes",
    otelName: "heapstate.cgroup.limit",
    unit: "By",
    help: "Memory cgroup limit (memory.max, v1 memory.limit_in_bytes); absent when unlimited",
    points: (s) => (s.cgroup?.limitBytes !== undefined ? [{ labels: {}, value: s.cgroup.limitBytes }] : []),
  },
  {
    name: "cgroup_oom_kill_events",
    otelName: "heapstate.cgroup.oom_kills",
    unit: "1",
    help: "OOM kills in the memory cgroup (memory.events oom_kill, v1 memory.oom_control oom_kill)",
    points: (s) => (s.cgroup?.oomKillEvents !== undefined ? [{ labels: {}, value: s.cgroup.oomKillEvents }] : []),
  },
  {
    name: "autotrim_trims_total",
    otelName: "heapstate.autotrim.trims",
    unit: "1",
    counter: true,
    help: "Trims the running auto-trim (startAutoTrim) has made",
    points: (s) => (s.autoTrim ? [{ labels: {}, value: s.autoTrim.trims }] : []),
  },
  {
    name: "autotrim_skipped_total",
    otelName: "heapstate.autotrim.skipped",
    unit: "1",
    counter: true,
    help: 'Auto-trim checks that did not trim: reason "below_floor" (less than minReleasableBytes to release) or "pause" (predicted pause above maxPauseMs)',
    points: (s) =>
      s.autoTrim
        ? [
            { labels: { reason: "below_floor" }, value: s.autoTrim.skippedBelowFloor },
            { labels: { reason: "pause" }, value: s.autoTrim.skippedPause },
          ]
        : [],
  },
  {
    name: "autotrim_released_bytes_total",
    otelName: "heapstate.autotrim.released",
    unit: "By",
    counter: true,
    help: "RSS the auto-trim's trims released, in all (smaps_rollup right before and after each)",
    points: (s) => (s.autoTrim ? [{ labels: {}, value: s.autoTrim.releasedBytes }] : []),
  },
  {
    name: "autotrim_last_pause_seconds",
    otelName: "heapstate.autotrim.last_pause",
    unit: "s",
    help: "How long the auto-trim's last trim held the allocator (the trim call's time)",
    points: (s) => (s.autoTrim?.lastTrim ? [{ labels: {}, value: s.autoTrim.lastTrim.pauseMs / 1000 }] : []),
  },
  {
    name: "autotrim_interval_seconds",
    otelName: "heapstate.autotrim.interval",
    unit: "s",
    help: "The auto-trim's interval in force (it doubles while trims release little)",
    points: (s) => (s.autoTrim ? [{ labels: {}, value: s.autoTrim.intervalMs / 1000 }] : []),
  },
  {
    name: "finding",
    otelName: "heapstate.finding",
    unit: "1",
    help: "1 when heapstate's finding is present in the last reading, else 0 (ids and meanings: docs/findings.md)",
    points: (s) => {
      const active = new Set((s.findings ?? []).map((f) => f.id));
      return FINDING_IDS.map((id) => ({ labels: { id }, value: active.has(id) ? 1 : 0 }));
    },
  },
  {
    name: "snapshot_cost_seconds",
    otelName: "heapstate.snapshot.cost",
    unit: "s",
    help: "What reading the snapshot cost (costMicros)",
    points: (s) => [{ labels: {}, value: s.costMicros / 1e6 }],
  },
];

/** Every family with the points of one reading. */
export function metricFamilies(s: Snapshot): MetricFamily[] {
  return METRICS.map(({ points, ...spec }) => ({ ...spec, points: points(s) }));
}
