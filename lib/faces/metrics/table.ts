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

import type { Snapshot } from "../../core";
import { MEMORY_METRICS } from "./families-memory";
import { PROCESS_METRICS } from "./families-process";
import type { MetricFamily, MetricSpec } from "./spec";

export * from "./spec";

/** Every family heapstate exports, in the order they are written: the one table both faces read. */
export const METRICS: readonly MetricSpec[] = [...MEMORY_METRICS, ...PROCESS_METRICS];

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
