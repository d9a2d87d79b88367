/**
 * heapstate/prometheus: the metrics of lib/metrics.ts in the Prometheus exposition format, as
 * text (no dependency) or registered on a prom-client registry (prom-client is an optional peer).
 * Each scrape reads one snapshot (snapshot({ maxAgeMs }), fast tier), so every family describes
 * the same moment and the breakdown parts add up to heapstate_memory_rss_bytes.
 */

import type { Snapshot } from "../../core";
import { assertSnapshot, errorText, extend, is, isHeapstateError, PeakConsumer, snapshot } from "../../core";
import { type Aggregator, METRICS, type MetricSpec, metricFamilies, prometheusLabels, prometheusName } from "./table";

export interface PrometheusOptions {
  /** Replaces the names' leading "heapstate_" (default "heapstate_"). */
  prefix?: string;
  /** Reuse a snapshot younger than this (default 1000 ms), so one scrape reads once. */
  maxAgeMs?: number;
  /** Labels added to every sample, as prom-client's collectDefaultMetrics({ labels }) does. */
  labels?: Record<string, string>;
  /** "text" (0.0.4, default) or "openmetrics" (OpenMetrics 1.0: counters' families without _total, units, # EOF). */
  format?: "text" | "openmetrics";
}

export interface RegisterPrometheusOptions extends Omit<PrometheusOptions, "format"> {
  client?: unknown;
  registry?: unknown;
  /**
   * Reset the process's peak RSS (VmHWM) at each scrape, so heapstate_memory_rss_peak_bytes is the
   * peak between scrapes (default false: the reset is process-wide). Without it the peak is since
   * the last reset, or since the process started.
   */
  resetPeak?: boolean;
}

/** The content types of the two exposition formats. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string, openMetrics: boolean): string {
  const t = v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
  return openMetrics ? t.replace(/"/g, '\\"') : t;
}

function prefixOf(where: string, value: unknown): string {
  const prefix = is.text(where, "prefix", value, "heapstate_");
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw is.invalidOption(where, `prefix must match [a-zA-Z_:][a-zA-Z0-9_:]*, ${is.received(prefix)}`);
  }
  return prefix;
}

/** Static labels: names that Prometheus accepts and heapstate does not use, string values. */
function labelsOf(where: string, value: unknown): Record<string, string> {
  let entries: Array<[string, unknown]>;
  try {
    // Inside the guard: Array.isArray throws on a revoked proxy, Object.entries on a throwing getter.
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw is.invalidOption(where, `labels must be an object of label names to strings, ${is.received(value)}`);
    }
    entries = Object.entries(value);
  } catch (error) {
    if (isHeapstateError(error)) throw error;
    throw is.invalidOption(where, `labels could not be read: ${errorText(error)}`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (
      !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k) ||
      k.startsWith("__") ||
      k.startsWith("heapstate_") ||
      k === "le" ||
      k === "quantile"
    ) {
      throw is.invalidOption(
        where,
        `labels: ${JSON.stringify(k.slice(0, 60))} is not a label name heapstate can add (a Prometheus label name, not heapstate_*)`,
      );
    }
    if (typeof v !== "string") throw is.invalidOption(where, `labels.${k} must be a string, ${is.received(v)}`);
    out[k] = v;
  }
  return out;
}

/** A family's Prometheus name under a prefix. */
function nameOf(spec: Pick<MetricSpec, "otelName" | "unit" | "instrument">, prefix: string): string {
  return prefix + prometheusName(spec).replace(/^heapstate_/, "");
}

function labelText(labels: Record<string, string>): string {
  const text = Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",");
  return text ? `{${text}}` : "";
}

function valueText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/**
 * The exposition text of a snapshot, without prom-client: text format 0.0.4 (default), or
 * OpenMetrics 1.0 (`format: "openmetrics"`).
 * @example
 * res.setHeader("content-type", PROMETHEUS_CONTENT_TYPE); res.end(prometheusText(collect()));
 */
export function prometheusText(s: Snapshot, options?: PrometheusOptions): string {
  assertSnapshot(s, "prometheusText(snapshot)");
  const where = "prometheusText(snapshot, options)";
  const o = is.optionsObject(where, options, ["prefix", "maxAgeMs", "labels", "format"]);
  const prefix = prefixOf(where, o.prefix);
  const extra = o.labels === undefined ? {} : labelsOf(where, o.labels);
  const om = is.oneOf(where, "format", o.format, "text", ["text", "openmetrics"] as const) === "openmetrics";
  const lines: string[] = [];
  for (const f of metricFamilies(s)) {
    const name = nameOf(f, prefix);
    const counter = f.instrument === "counter";
    // OpenMetrics names a counter's family without _total and its samples with it.
    const family = om && counter ? name.replace(/_total$/, "") : name;
    lines.push(`# HELP ${family} ${escapeHelp(f.help, om)}`, `# TYPE ${family} ${counter ? "counter" : "gauge"}`);
    if (om && (f.unit === "By" || f.unit === "s"))
      lines.push(`# UNIT ${family} ${f.unit === "By" ? "bytes" : "seconds"}`);
    for (const p of f.points) {
      lines.push(`${name}${labelText(extend(prometheusLabels(p), extra))} ${valueText(p.value)}`);
    }
  }
  if (om) lines.push("# EOF");
  return `${lines.join("\n")}\n`;
}

/** prom-client, an optional peer dependency, required when neither a client nor a registry is given. */
function promClient(where: string): { register?: unknown } {
  try {
    return require("prom-client") as { register?: unknown };
  } catch {
    throw is.invalidOption(
      where,
      "prom-client is not installed (npm install prom-client); or pass it as { client } or a registry as { registry }",
    );
  }
}

/** The part of prom-client's Registry used here (14.x and 15.x). */
interface RegistryLike {
  registerMetric(metric: unknown): void;
}

/** A metric as prom-client's registry reads it: get() gives the values of one scrape. */
interface CollectorMetric {
  name: string;
  help: string;
  type: "gauge" | "counter";
  aggregator: Aggregator;
  get(): Promise<{
    name: string;
    help: string;
    type: "gauge" | "counter";
    aggregator: Aggregator;
    values: Array<{ value: number; labels: Record<string, string> }>;
  }>;
  reset(): void;
}

/**
 * Registers heapstate's metrics on a prom-client registry (the default one unless given) and
 * returns them. They are collectors, not prom-client Gauges: a Gauge prints 0 for a value that was
 * never set, and heapstate leaves out what it did not measure (an unlimited cgroup has no
 * heapstate_cgroup_limit_bytes sample). Each family names the aggregator prom-client's cluster
 * AggregatorRegistry uses: `sum` for per-process figures, `max` for cgroup-wide ones and the
 * findings (summed, a cgroup shared by four workers would read four times its usage). prom-client
 * is an optional peer dependency: pass the module, or it is required.
 * @example
 * const client = require("prom-client");
 * registerPrometheus({ client, labels: { service: "api" } });
 * app.get("/metrics", async (_, res) => res.type(client.register.contentType).send(await client.register.metrics()));
 */
export function registerPrometheus(options?: RegisterPrometheusOptions): CollectorMetric[] {
  const where = "registerPrometheus(options)";
  const o = is.optionsObject(where, options, ["prefix", "maxAgeMs", "client", "registry", "resetPeak", "labels"]);
  const prefix = prefixOf(where, o.prefix);
  const extra = o.labels === undefined ? {} : labelsOf(where, o.labels);
  const maxAgeMs = is.maxAgeMs(where, o.maxAgeMs, 1000);
  const resetPeak = is.bool(where, "resetPeak", o.resetPeak, false);
  const client = o.registry === undefined ? (o.client ?? promClient(where)) : undefined;
  let registry: RegistryLike | undefined;
  try {
    registry = (o.registry ?? (client as { register?: unknown }).register) as RegistryLike | undefined;
    if (!registry || typeof registry.registerMetric !== "function") registry = undefined;
  } catch {
    registry = undefined;
  }
  if (registry === undefined) {
    throw is.invalidOption(
      where,
      `${o.registry !== undefined ? "registry" : "client"} must be a prom-client ${o.registry !== undefined ? "Registry" : "module"}, ${is.received(o.registry ?? o.client)}`,
    );
  }
  const peaks = new PeakConsumer(resetPeak);
  // Every metric of a scrape asks for the same snapshot, cached for maxAgeMs: one reading a scrape.
  const metrics = METRICS.map((spec): CollectorMetric => {
    const name = nameOf(spec, prefix);
    const type = spec.instrument === "counter" ? "counter" : "gauge";
    return {
      name,
      help: spec.help,
      type,
      aggregator: spec.aggregator,
      async get() {
        let s = snapshot({ maxAgeMs });
        if (spec.otelName === "heapstate.memory.rss.peak") {
          // The peak since this registry's previous scrape: on a copy, the cached snapshot is shared.
          s = extend(s, { warnings: [...s.warnings] });
          peaks.take(s);
        }
        const values = spec.points(s).map((p) => ({ value: p.value, labels: extend(prometheusLabels(p), extra) }));
        return { name, help: spec.help, type, aggregator: spec.aggregator, values };
      },
      reset() {},
    };
  });
  try {
    for (const m of metrics) registry.registerMetric(m);
  } catch (error) {
    peaks.close();
    // prom-client refuses a second metric of the same name (registerPrometheus called twice).
    throw is.invalidOption(where, `the registry refused heapstate's metrics: ${errorText(error)}`);
  }
  return metrics;
}
