/**
 * heapstate/otel: the metrics of lib/metrics.ts as OpenTelemetry observable gauges (and counters, for the totals) on a Meter
 * from @opentelemetry/api (an optional peer dependency). One batch callback reads one snapshot per
 * collection, so every instrument describes the same moment.
 */
import { METRICS, metricFamilies } from "./metrics";
import { snapshot } from "./snapshot";
import * as is from "./validate";

/** The part of @opentelemetry/api's Meter used here. */
interface MeterLike {
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): unknown;
  createObservableCounter?(name: string, options?: { description?: string; unit?: string }): unknown;
  addBatchObservableCallback(
    callback: (observer: {
      observe(instrument: unknown, value: number, attributes?: Record<string, string>): void;
    }) => void,
    instruments: unknown[],
  ): void;
  removeBatchObservableCallback(callback: unknown, instruments: unknown[]): void;
}

/** Attribute names in the OTel style: heapstate.part, heapstate.allocator, … */
function attributes(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[`heapstate.${k}`] = v;
  return out;
}

/**
 * Registers heapstate's observable gauges on `meter`. Returns a function that unregisters them.
 * @example
 * const { metrics } = require("@opentelemetry/api");
 * const stop = registerOtel(metrics.getMeter("my-service"));
 */
export function registerOtel(meter: unknown, options?: { maxAgeMs?: number }): () => void {
  const o = is.optionsObject("registerOtel(meter, options)", options, ["maxAgeMs"]);
  const maxAgeMs = is.maxAgeMs("registerOtel(meter, options)", o.maxAgeMs, 1000);
  const m = meter as MeterLike;
  let isMeter: boolean;
  try {
    isMeter =
      m !== null &&
      typeof m === "object" &&
      typeof m.createObservableGauge === "function" &&
      typeof m.addBatchObservableCallback === "function";
  } catch {
    isMeter = false;
  }
  if (!isMeter) {
    throw is.invalidOption(
      "registerOtel(meter, options)",
      `meter must be an OpenTelemetry Meter, ${is.received(meter)}`,
    );
  }
  const instruments = new Map<string, unknown>();
  for (const f of METRICS) {
    const spec = { description: f.help, unit: f.unit };
    instruments.set(
      f.name,
      f.counter && typeof m.createObservableCounter === "function"
        ? m.createObservableCounter(f.otelName, spec)
        : m.createObservableGauge(f.otelName, spec),
    );
  }
  const callback = (observer: {
    observe(instrument: unknown, value: number, attributes?: Record<string, string>): void;
  }) => {
    for (const f of metricFamilies(snapshot({ maxAgeMs }))) {
      const instrument = instruments.get(f.name);
      if (!instrument) continue;
      for (const p of f.points) observer.observe(instrument, p.value, attributes(p.labels));
    }
  };
  const list = [...instruments.values()];
  m.addBatchObservableCallback(callback, list);
  return () => m.removeBatchObservableCallback(callback, list);
}
