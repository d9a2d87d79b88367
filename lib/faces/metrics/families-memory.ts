/** The memory families: RSS, the native heap, the breakdown and its children, the peak, V8's external memory. */
import { keyFigures } from "../../core";
import { type MetricPoint, type MetricSpec, one, snake } from "./spec";

export const MEMORY_METRICS: readonly MetricSpec[] = [
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
];
