/** What a metric family is, and how its OpenTelemetry name and attributes become Prometheus's. */
import type { Snapshot } from "../../core";

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
export function one(value: number | undefined): MetricPoint[] {
  return value !== undefined ? [{ attributes: {}, value }] : [];
}

/** Label values of the closed sets (parts, states, finding ids) in one style: snake_case. */
export function snake(v: string): string {
  return v.replace(/-/g, "_");
}

/** A point's Prometheus labels: attribute names translated, booleans as "true"/"false". */
export function prometheusLabels(p: MetricPoint): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.attributes)) out[prometheusLabel(k)] = String(v);
  return out;
}
