/**
 * heapstate/prometheus: the metrics of lib/metrics.ts in the Prometheus exposition format, as
 * text (no dependency) or registered on a prom-client registry (prom-client is an optional peer).
 * Each scrape reads one snapshot (snapshot({ maxAgeMs }), fast tier), so every family describes
 * the same moment and the breakdown parts add up to heapstate_rss_bytes.
 */
import { assertSnapshot } from "./errors";
import { METRICS, metricFamilies } from "./metrics";
import { PeakConsumer } from "./peaks";
import { snapshot } from "./snapshot";
import type { Snapshot } from "./types";
import * as is from "./validate";

export interface PrometheusOptions {
  /** Metric name prefix (default "heapstate_"). */
  prefix?: string;
  /** Reuse a snapshot younger than this (default 1000 ms), so one scrape reads once. */
  maxAgeMs?: number;
}

export interface RegisterPrometheusOptions extends PrometheusOptions {
  client?: unknown;
  registry?: unknown;
  /**
   * Reset the process's peak RSS (VmHWM) at each scrape, so heapstate_rss_peak_bytes is the peak
   * between scrapes (default false: the reset is process-wide). Without it the peak is since the
   * last reset, or since the process started.
   */
  resetPeak?: boolean;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function prefixOf(where: string, value: unknown): string {
  const prefix = is.text(where, "prefix", value, "heapstate_");
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw is.invalidOption(where, `prefix must match [a-zA-Z_:][a-zA-Z0-9_:]*, ${is.received(prefix)}`);
  }
  return prefix;
}

/**
 * The exposition text of a snapshot (text format 0.0.4), without prom-client.
 * @example
 * res.setHeader("content-type", "text/plain; version=0.0.4"); res.end(prometheusText(collect()));
 */
export function prometheusText(s: Snapshot, options?: PrometheusOptions): string {
  assertSnapshot(s, "prometheusText(snapshot)");
  const o = is.optionsObject("prometheusText(snapshot, options)", options, ["prefix", "maxAgeMs"]);
  const prefix = prefixOf("prometheusText(snapshot, options)", o.prefix);
  const lines: string[] = [];
  for (const f of metricFamilies(s)) {
    const name = prefix + f.name;
    lines.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.counter ? "counter" : "gauge"}`);
    for (const p of f.points) {
      const labels = Object.entries(p.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(",");
      lines.push(`${name}${labels ? `{${labels}}` : ""} ${Number.isFinite(p.value) ? p.value : "NaN"}`);
    }
  }
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
  aggregator: "sum";
  get(): Promise<{
    name: string;
    help: string;
    type: "gauge" | "counter";
    aggregator: "sum";
    values: Array<{ value: number; labels: Record<string, string> }>;
  }>;
  reset(): void;
}

/**
 * Registers heapstate's metrics on a prom-client registry (the default one unless given) and
 * returns them. They are collectors, not prom-client Gauges: a Gauge prints 0 for a value that was
 * never set, and heapstate leaves out what it did not measure (an unlimited cgroup has no
 * heapstate_cgroup_limit_bytes sample). prom-client is an optional peer dependency: pass the
 * module, or it is required.
 * @example
 * const client = require("prom-client");
 * registerPrometheus({ client });
 * app.get("/metrics", async (_, res) => res.type(client.register.contentType).send(await client.register.metrics()));
 */
export function registerPrometheus(options?: RegisterPrometheusOptions): CollectorMetric[] {
  const where = "registerPrometheus(options)";
  const o = is.optionsObject(where, options, ["prefix", "maxAgeMs", "client", "registry", "resetPeak"]);
  const peaks = new PeakConsumer(is.bool(where, "resetPeak", o.resetPeak, false));
  const prefix = prefixOf(where, o.prefix);
  const maxAgeMs = is.maxAgeMs(where, o.maxAgeMs, 1000);
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
  // Every metric of a scrape asks for the same snapshot, cached for maxAgeMs: one reading a scrape.
  const metrics = METRICS.map((spec): CollectorMetric => {
    const name = prefix + spec.name;
    return {
      name,
      help: spec.help,
      type: spec.counter ? "counter" : "gauge",
      aggregator: "sum",
      async get() {
        let s = snapshot({ maxAgeMs });
        if (spec.name === "rss_peak_bytes") {
          // The peak since this registry's previous scrape: on a copy, the cached snapshot is shared.
          s = { ...s, warnings: [...s.warnings] };
          peaks.take(s);
        }
        const values = spec.points(s).map((p) => ({ value: p.value, labels: p.labels }));
        return { name, help: spec.help, type: spec.counter ? "counter" : "gauge", aggregator: "sum", values };
      },
      reset() {},
    };
  });
  try {
    for (const m of metrics) registry.registerMetric(m);
  } catch (error) {
    // prom-client refuses a second metric of the same name (registerPrometheus called twice).
    throw is.invalidOption(
      where,
      `the registry refused heapstate's metrics: ${(error as Error)?.message ?? String(error)}`,
    );
  }
  return metrics;
}
