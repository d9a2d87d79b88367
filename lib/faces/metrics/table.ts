/**
 * The metrics heapstate exports, once, for both faces (Prometheus and OpenTelemetry). Each family
 * is defined the OpenTelemetry way (a name, an instrument, a unit, namespaced attributes, as the
 * semantic conventions do for process.memory.usage and v8js.memory.heap.used), and its Prometheus
 * name and labels are derived from that by the standard OpenTelemetry → Prometheus translation:
 * dots become underscores, the unit becomes a suffix (`By` → `_bytes`, `s` → `_seconds`;
 * annotations such as `{arena}` are dropped), and counters end in `_total`. One fleet, one set of
 * names. They complement prom-client's defaults (process_resident_memory_bytes, nodejs_heap_*) and
 * never repeat them: what heapstate adds is the partition of RSS, the allocator's own figures and
 * the findings.
 */

import type { AllocatorState, PageStates, Snapshot } from "../../core";
import { extend, FINDING_IDS, keyFigures } from "../../core";

/** One point: its attributes (OpenTelemetry names and types) and value. */
export interface MetricPoint {
  attributes: Record<string, string | boolean>;
  value: number;
}

/**
 * - `updowncounter`: an amount that adds up (bytes held), which can go down: an OpenTelemetry
 *   ObservableUpDownCounter, a Prometheus gauge.
 * - `gauge`: a value that does not add up across points (a cost, an interval, 0/1).
 * - `counter`: a count that only grows: a Prometheus counter (`_total`).
 */
export type Instrument = "updowncounter" | "gauge" | "counter";

/** How prom-client's cluster AggregatorRegistry combines the workers' points. */
export type Aggregator = "sum" | "max" | "first" | "average";

/** One metric family: named, typed and described once, and how its points are read off a snapshot. */
export interface MetricSpec {
  otelName: string;
  instrument: Instrument;
  /** UCUM, as OpenTelemetry writes it: `By`, `s`, or an annotation such as `{arena}`. */
  unit: "By" | "s" | `{${string}}`;
  help: string;
  /** Per-process figures add up across cluster workers; process-wide or cgroup-wide ones do not. */
  aggregator: Aggregator;
  /** The points of one reading; none for what it did not measure. */
  points(s: Snapshot): MetricPoint[];
}

/** A family with the points of one reading. */
export interface MetricFamily extends Omit<MetricSpec, "points"> {
  points: MetricPoint[];
}

/** The Prometheus name of a family: the standard translation of its OpenTelemetry name and unit. */
export function prometheusName(spec: Pick<MetricSpec, "otelName" | "unit" | "instrument">): string {
  const base = spec.otelName.replace(/[^a-zA-Z0-9_:]/g, "_");
  const suffix = spec.unit === "By" ? "_bytes" : spec.unit === "s" ? "_seconds" : "";
  return `${base}${base.endsWith(suffix) ? "" : suffix}${spec.instrument === "counter" ? "_total" : ""}`;
}

/** The Prometheus label of an attribute: its name with dots as underscores. */
export function prometheusLabel(attribute: string): string {
  return attribute.replace(/[^a-zA-Z0-9_]/g, "_");
}

/** One point without attributes, or none when the figure was not measured (never a 0). */
function one(value: number | undefined): MetricPoint[] {
  return value !== undefined ? [{ attributes: {}, value }] : [];
}

/** Label values of the closed sets (parts, states, finding ids) in one style: snake_case. */
function snake(v: string): string {
  return v.replace(/-/g, "_");
}

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

/** Every family heapstate exports, in the order they are written: the one table both faces read. */
export const METRICS: readonly MetricSpec[] = [
  {
    otelName: "heapstate.memory.rss",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: "Resident set size that heapstate_memory_breakdown_bytes partitions (smaps_rollup Rss, or status VmRSS in the fast tier), same reading",
    points: (s) => one(keyFigures(s).rssBytes),
  },
  {
    otelName: "heapstate.memory.native_heap",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: 'The native heap: the serving allocator\'s allocated bytes, or its committed bytes where it counts no allocated bytes (mimalloc 2.0; heapstate_native_heap_counter says "committed")',
    points: (s) => {
      const heap = keyFigures(s).nativeHeap;
      return heap
        ? [
            {
              attributes: { "heapstate.allocator.name": heap.allocator, "heapstate.native_heap.counter": heap.counter },
              value: heap.bytes,
            },
          ]
        : [];
    },
  },
  {
    otelName: "heapstate.memory.breakdown",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: 'RSS by part (heapstate_memory_type); the parts, "unattributed" (signed) included, add up to heapstate_memory_rss_bytes',
    points: (s) => {
      const b = s.breakdown;
      if (!b) return [];
      const out: MetricPoint[] = b.parts.map((p) => ({
        attributes: {
          "heapstate.memory.type": snake(p.name),
          ...(p.allocator !== undefined ? { "heapstate.allocator.name": p.allocator } : {}),
          ...(p.name.startsWith("other-") && p.library !== undefined
            ? { "heapstate.allocator.library": p.library.slice(p.library.lastIndexOf("/") + 1) }
            : {}),
          ...(p.label !== undefined ? { "heapstate.reporter.name": p.label } : {}),
        },
        value: p.bytes,
      }));
      out.push({ attributes: { "heapstate.memory.type": "unattributed" }, value: b.unattributedBytes });
      return out;
    },
  },
  {
    otelName: "heapstate.memory.breakdown.children",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: "The parts within a part (heapstate_memory_parent): who owns the native heap (native_v8, native_array_buffers, native_reported, native_allocator_slack, native_not_resident (negative: in-use blocks never written), native_unclassified) and V8's heap by space; a parent's children add up to its heapstate_memory_breakdown_bytes point",
    points: (s) =>
      (s.breakdown?.parts ?? []).flatMap((p) =>
        (p.children ?? []).map((c) => ({
          attributes: {
            "heapstate.memory.parent": snake(p.name),
            "heapstate.memory.type": snake(c.name),
            ...(c.label !== undefined
              ? { [c.name === "v8-space" ? "heapstate.v8.space" : "heapstate.reporter.name"]: c.label }
              : {}),
          },
          value: c.bytes,
        })),
      ),
  },
  {
    otelName: "heapstate.memory.rss.peak",
    instrument: "gauge",
    unit: "By",
    aggregator: "sum",
    help: "The peak RSS since the previous scrape (registerPrometheus({ resetPeak: true }) resets VmHWM at each), else since the last reset or the process start",
    points: (s) => {
      // This consumer's window only: a reading that follows no peaks has none to give.
      const k = keyFigures(s);
      return k.peakSince !== undefined && k.peakRssBytes !== undefined
        ? [{ attributes: {}, value: k.peakRssBytes }]
        : [];
    },
  },
  {
    otelName: "heapstate.v8.external",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: "V8's external memory of this isolate (process.memoryUsage().external: Buffers' backing stores and what addons declare)",
    points: (s) => one(keyFigures(s).v8ExternalBytes),
  },
  {
    otelName: "heapstate.v8.array_buffers",
    instrument: "updowncounter",
    unit: "By",
    aggregator: "sum",
    help: "ArrayBuffer and Buffer backing stores of this isolate (process.memoryUsage().arrayBuffers), inside the native heap",
    points: (s) => one(keyFigures(s).arrayBuffersBytes),
  },
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

/** Every family with the points of one reading. */
export function metricFamilies(s: Snapshot): MetricFamily[] {
  // Built whole, not spread: see objects.ts.
  return METRICS.map((spec) => ({
    otelName: spec.otelName,
    instrument: spec.instrument,
    unit: spec.unit,
    help: spec.help,
    aggregator: spec.aggregator,
    points: spec.points(s),
  }));
}

/** A point's Prometheus labels: attribute names translated, booleans as "true"/"false". */
export function prometheusLabels(p: MetricPoint): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.attributes)) out[prometheusLabel(k)] = String(v);
  return out;
}
