/**
 * heapstate/otel: the metrics of lib/metrics.ts as OpenTelemetry instruments, the way the semantic
 * conventions shape process.memory.usage and v8js.memory.heap.used: amounts that add up are
 * observable up-down counters in `By`, counts that only grow observable counters, the rest
 * observable gauges; attributes are namespaced (`heapstate.memory.type`,
 * `heapstate.allocator.name`, `heapstate.allocator.page.state`) and booleans are booleans. The
 * meter is the library's own (scope "heapstate", the package's version), from the MeterProvider
 * given or the global one. One batch callback reads one snapshot per collection, so every
 * instrument describes the same moment. @opentelemetry/api is an optional peer dependency.
 */
import { errorText, is, packageVersion, snapshot } from "../../core";
import { METRICS, metricFamilies } from "./table";

type Observer = {
  observe(instrument: unknown, value: number, attributes?: Record<string, string | boolean>): void;
};

/** The part of @opentelemetry/api's Meter used here. */
export interface MeterLike {
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): unknown;
  createObservableCounter?(name: string, options?: { description?: string; unit?: string }): unknown;
  createObservableUpDownCounter?(name: string, options?: { description?: string; unit?: string }): unknown;
  addBatchObservableCallback(callback: (observer: Observer) => void, instruments: unknown[]): void;
  removeBatchObservableCallback(callback: unknown, instruments: unknown[]): void;
}

export interface ProviderLike {
  getMeter(name: string, version?: string): unknown;
}

function isMeter(m: unknown): m is MeterLike {
  try {
    const x = m as MeterLike;
    return (
      x !== null &&
      typeof x === "object" &&
      typeof x.createObservableGauge === "function" &&
      typeof x.addBatchObservableCallback === "function"
    );
  } catch {
    return false;
  }
}

function isProvider(p: unknown): p is ProviderLike {
  try {
    return p !== null && typeof p === "object" && typeof (p as ProviderLike).getMeter === "function";
  } catch {
    return false;
  }
}

/** The global MeterProvider of @opentelemetry/api, if it is installed. */
function globalProvider(where: string): ProviderLike {
  try {
    const api = require("@opentelemetry/api") as { metrics?: { getMeterProvider(): ProviderLike } };
    const provider = api.metrics?.getMeterProvider();
    if (isProvider(provider)) return provider;
  } catch {
    // not installed: said below
  }
  throw is.invalidOption(
    where,
    "@opentelemetry/api is not installed (npm install @opentelemetry/api); or pass a MeterProvider or a Meter",
  );
}

/** The options form: `registerOtel({ meterProvider })`, as OpenTelemetry's instrumentations take it. */
export interface OtelOptions {
  /** The MeterProvider to take heapstate's meter from (default: the global one). */
  meterProvider?: ProviderLike;
  /** A Meter to register on, instead of one from a provider. */
  meter?: MeterLike;
  /** How old a cached reading a collection may use (default 1000 ms). */
  maxAgeMs?: number;
}

/** A plain options object (not a provider or a meter, which are objects too). */
function isOptionsForm(x: unknown): boolean {
  if (x === null || typeof x !== "object" || isMeter(x) || isProvider(x)) return false;
  try {
    return Object.keys(x).every((k) => k === "meterProvider" || k === "meter" || k === "maxAgeMs");
  } catch {
    return false;
  }
}

/**
 * Registers heapstate's instruments on a meter named "heapstate" from a MeterProvider (the global
 * one when none is given), or on the Meter given. Two forms: `registerOtel(provider, { maxAgeMs })`
 * and `registerOtel({ meterProvider, meter, maxAgeMs })`. Returns a function that unregisters them.
 * @example
 * const { metrics } = require("@opentelemetry/api");
 * const stop = registerOtel({ meterProvider: metrics.getMeterProvider() });
 */
export function registerOtel(options?: OtelOptions): () => void;
export function registerOtel(provider: ProviderLike | MeterLike, options?: { maxAgeMs?: number }): () => void;
export function registerOtel(first?: unknown, second?: { maxAgeMs?: number }): () => void {
  let provider: unknown = first;
  let options: unknown = second;
  if (isOptionsForm(first)) {
    if (second !== undefined)
      throw is.invalidOption(
        "registerOtel(options)",
        "give the options in one object ({ meterProvider, maxAgeMs }), not a second argument",
      );
    const o = first as OtelOptions;
    if (o.meter !== undefined && o.meterProvider !== undefined)
      throw is.invalidOption("registerOtel(options)", "meter and meterProvider: give one of them");
    provider = o.meter ?? o.meterProvider;
    options = o.maxAgeMs === undefined ? undefined : { maxAgeMs: o.maxAgeMs };
  }
  return register(provider, options);
}

function register(provider: unknown, options: unknown): () => void {
  const where = "registerOtel(provider, options)";
  const o = is.optionsObject(where, options, ["maxAgeMs"]);
  const maxAgeMs = is.maxAgeMs(where, o.maxAgeMs, 1000);
  // The provider and its meter are the caller's objects: whatever their methods throw is said as
  // INVALID_OPTION, and nothing stays registered half-way.
  const fail = (what: string, error: unknown) =>
    is.invalidOption(where, `the ${what} failed: ${errorText(error, 200)}`);
  let meter: unknown;
  if (provider === undefined) {
    const global = globalProvider(where);
    try {
      meter = global.getMeter("heapstate", packageVersion());
    } catch (error) {
      throw fail("global MeterProvider's getMeter()", error);
    }
  } else if (isMeter(provider)) meter = provider;
  else if (isProvider(provider)) {
    try {
      meter = provider.getMeter("heapstate", packageVersion());
    } catch (error) {
      throw fail("MeterProvider's getMeter()", error);
    }
  }
  if (!isMeter(meter)) {
    throw is.invalidOption(where, `provider must be an OpenTelemetry MeterProvider or Meter, ${is.received(provider)}`);
  }
  const m = meter;
  const instruments = new Map<string, unknown>();
  try {
    for (const f of METRICS) {
      const spec = { description: f.help, unit: f.unit };
      const counter = f.instrument === "counter" && typeof m.createObservableCounter === "function";
      const upDown = f.instrument === "updowncounter" && typeof m.createObservableUpDownCounter === "function";
      instruments.set(
        f.otelName,
        counter
          ? m.createObservableCounter?.(f.otelName, spec)
          : upDown
            ? m.createObservableUpDownCounter?.(f.otelName, spec)
            : m.createObservableGauge(f.otelName, spec),
      );
    }
  } catch (error) {
    throw fail("meter's creation of an instrument", error);
  }
  const callback = (observer: Observer) => {
    for (const f of metricFamilies(snapshot({ maxAgeMs }))) {
      const instrument = instruments.get(f.otelName);
      if (!instrument) continue;
      for (const p of f.points) observer.observe(instrument, p.value, p.attributes);
    }
  };
  const list = [...instruments.values()];
  try {
    m.addBatchObservableCallback(callback, list);
  } catch (error) {
    throw fail("meter's addBatchObservableCallback()", error);
  }
  return () => {
    try {
      m.removeBatchObservableCallback(callback, list);
    } catch {
      // The meter's own failure to unregister: nothing of heapstate's is left to stop.
    }
  };
}
