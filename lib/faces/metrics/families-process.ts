/** The allocators' own figures, the cgroup, auto-trim, the findings, and which reading an answer is. */
import type { AllocatorState, PageStates } from "../../core";
import { extend, FINDING_IDS, keyFigures } from "../../core";
import { type MetricSpec, one, snake } from "./spec";

/**
 * Page states that do not overlap within one allocator, so that a sum over the states means
 * something: jemalloc's dirty and muzzy (active and retained have gauges of their own), tcmalloc's
 * dirty, released and cached, glibc's dirty and released where its free memory was measured, else
 * its free bytes (dirty + released, which mallinfo2 cannot split). glibc's top chunk is inside
 * its free bytes, and its releasable pages inside dirty: neither is a state of its own.
 */
function pageStates(a: AllocatorState): Array<[keyof PageStates, string]> {
  switch (a.allocator) {
    case "jemalloc":
      return [
        ["dirtyBytes", "dirty"],
        ["muzzyBytes", "muzzy"],
      ];
    case "tcmalloc":
      return [
        ["dirtyBytes", "dirty"],
        ["releasedBytes", "released"],
        ["cachedBytes", "cached"],
      ];
    case "glibc":
      return a.pages?.dirtyBytes !== undefined
        ? [
            ["dirtyBytes", "dirty"],
            ["releasedBytes", "released"],
          ]
        : [["freeBytes", "free"]];
    default:
      return [];
  }
}

const allocatorFigures = [
  ["allocatedBytes", "allocated", "bytes the program holds, as the allocator counts them"],
  ["activeBytes", "active", "bytes in pages holding live allocations"],
  ["residentBytes", "resident", "resident bytes, as the allocator estimates them"],
  ["mappedBytes", "mapped", "address space the allocator holds"],
  ["metadataBytes", "metadata", "the allocator's own metadata"],
  ["retainedBytes", "retained", "virtual memory kept but purged (not resident)"],
  ["committedBytes", "committed", "memory the allocator has committed"],
] as const;

const allocatorAttributes = (a: AllocatorState) => ({
  "heapstate.allocator.name": a.allocator,
  "heapstate.allocator.serves_malloc": a.servesMalloc,
});

export const PROCESS_METRICS: readonly MetricSpec[] = [
  ...allocatorFigures.map(
    ([key, suffix, help]): MetricSpec => ({
      otelName: `heapstate.allocator.${suffix}`,
      instrument: "updowncounter",
      unit: "By",
      aggregator: "sum",
      help: `Allocator: ${help}`,
      points: (s) =>
        s.allocators.flatMap((a) => {
          const v = a[key];
          return v === undefined ? [] : [{ attributes: allocatorAttributes(a), value: v }];
        }),
    }),
  ),
  {
    otelName: "heapstate.allocator.pages",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: "Allocator page states that do not overlap, per allocator: dirty (free, resident) and muzzy (MADV_FREE) for jemalloc; dirty, released and cached for tcmalloc; dirty and released for glibc where measured, else free",
    points: (s) =>
      s.allocators.flatMap((a) =>
        pageStates(a).flatMap(([key, state]) => {
          const v = a.pages?.[key];
          return v === undefined
            ? []
            : [{ attributes: extend(allocatorAttributes(a), { "heapstate.allocator.page.state": state }), value: v }];
        }),
      ),
  },
  {
    otelName: "heapstate.allocator.arenas",
    instrument: "updowncounter",
    unit: "{arena}",
    aggregator: "sum",
    help: "Allocator arenas (jemalloc arenas.narenas; glibc malloc_info heaps, deep tier)",
    points: (s) =>
      s.allocators.flatMap((a) =>
        a.arenas === undefined ? [] : [{ attributes: allocatorAttributes(a), value: a.arenas }],
      ),
  },
  {
    otelName: "heapstate.cgroup.usage",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "max",
    help: "Memory cgroup usage (memory.current, v1 memory.usage_in_bytes): cgroup-wide, the same for every process in it",
    points: (s) => one(s.cgroup?.usageBytes),
  },
  {
    otelName: "heapstate.cgroup.limit",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "max",
    help: "Memory cgroup limit (memory.max, v1 memory.limit_in_bytes); absent when unlimited",
    points: (s) => one(s.cgroup?.limitBytes),
  },
  {
    otelName: "heapstate.cgroup.oom_kills",
    instrument: "counter",
    unit: "{kill}",
    aggregator: "max",
    help: "OOM kills in the memory cgroup (memory.events oom_kill, v1 memory.oom_control oom_kill)",
    points: (s) => one(s.cgroup?.oomKillEvents),
  },
  {
    otelName: "heapstate.autotrim.trims",
    instrument: "counter",
    unit: "{trim}",
    aggregator: "sum",
    help: "Trims the running auto-trim (startAutoTrim) has made",
    points: (s) => one(s.autoTrim?.trims),
  },
  {
    otelName: "heapstate.autotrim.skipped",
    instrument: "counter",
    unit: "{check}",
    aggregator: "sum",
    help: 'Auto-trim checks that did not trim: reason "below_floor" (less than minReleasableBytes to release), "pause" (predicted pause above maxPauseMs) or "unmeasured" (what a trim would release could not be measured)',
    points: (s) => {
      const a = s.autoTrim;
      if (!a) return [];
      const points = [
        { attributes: { "heapstate.autotrim.reason": "below_floor" }, value: a.skippedBelowFloor },
        { attributes: { "heapstate.autotrim.reason": "pause" }, value: a.skippedPause },
      ];
      // Absent from a saved reading written before the reason existed: not measured, not 0.
      if (a.skippedUnmeasured !== undefined)
        points.push({ attributes: { "heapstate.autotrim.reason": "unmeasured" }, value: a.skippedUnmeasured });
      return points;
    },
  },
  {
    otelName: "heapstate.autotrim.released",
    instrument: "counter",
    unit: "By",
    aggregator: "sum",
    help: "RSS the auto-trim's trims released, in all (smaps_rollup right before and after each)",
    points: (s) => one(s.autoTrim?.releasedBytes),
  },
  {
    otelName: "heapstate.autotrim.last_pause",
    instrument: "gauge",
    unit: "s",
    aggregator: "max",
    help: "How long the auto-trim's last trim held the allocator (the trim call's time)",
    points: (s) => one(s.autoTrim?.lastTrim && s.autoTrim.lastTrim.pauseMs / 1000),
  },
  {
    otelName: "heapstate.autotrim.interval",
    instrument: "gauge",
    unit: "s",
    aggregator: "max",
    help: "The auto-trim's interval in force (it doubles while trims release little)",
    points: (s) => one(s.autoTrim && s.autoTrim.intervalMs / 1000),
  },
  {
    otelName: "heapstate.finding",
    instrument: "gauge",
    unit: "{finding}",
    aggregator: "max",
    help: "1 when heapstate's finding is present in the last reading, else 0 (ids and meanings: docs/findings.md)",
    points: (s) => {
      const active = new Set((s.findings ?? []).map((f) => f.id));
      return FINDING_IDS.map((id) => ({
        attributes: { "heapstate.finding.id": snake(id) },
        value: active.has(id) ? 1 : 0,
      }));
    },
  },
  {
    otelName: "heapstate.reading",
    instrument: "gauge",
    unit: "{reading}",
    aggregator: "max",
    help: "1, labelled with the tier of the reading every family of this answer comes from and where its RSS was read (status VmRSS in the fast tier, smaps_rollup Rss above it)",
    points: (s) => {
      const source = keyFigures(s).rssSource;
      return [
        {
          attributes: {
            "heapstate.reading.tier": s.tier,
            ...(source ? { "heapstate.memory.rss.source": source } : {}),
          },
          value: 1,
        },
      ];
    },
  },
  {
    otelName: "heapstate.snapshot.cost",
    instrument: "gauge",
    unit: "s",
    aggregator: "max",
    help: "What reading the snapshot cost (costMicros)",
    points: (s) => one(s.costMicros / 1e6),
  },
];
