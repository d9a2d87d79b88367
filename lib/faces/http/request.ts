/**
 * A /debug/memory request read into what to answer: the target split by hand (never handed to
 * `new URL()`, which throws on `//` and reads `//x/y` as host x), the format from `?format=` or the
 * Accept header, and the reading's tier and top through the core's one request parser.
 */
import { parseReadRequest, type Tier } from "../../core";

export const FORMATS = ["text", "json", "prometheus", "openmetrics", "html"] as const;
export type Format = (typeof FORMATS)[number];
const queryKeys = ["format", "tier", "top", "sites", "history", "diff"];

/** The request target: its path and query. */
export interface Target {
  pathname: string;
  query: URLSearchParams;
}

/** The request target split into its path and query, or undefined when it is no origin-form or absolute URL. */
export function parseTarget(raw: string): Target | undefined {
  let target = raw;
  if (!target.startsWith("/")) {
    // absolute-form (a proxy's request): the path of the URL, or nothing.
    if (!/^https?:\/\//i.test(target)) return undefined;
    try {
      const u = new URL(target);
      target = u.pathname + u.search;
    } catch {
      return undefined;
    }
  }
  const q = target.indexOf("?");
  const hash = target.indexOf("#");
  const pathEnd = q >= 0 ? q : hash >= 0 ? hash : target.length;
  const pathname = target.slice(0, pathEnd);
  if (/[\s\0]/.test(pathname)) return undefined;
  const search = q >= 0 ? target.slice(q + 1, hash > q ? hash : undefined) : "";
  return { pathname: pathname.replace(/\/+$/, "") || "/", query: new URLSearchParams(search) };
}

export interface Query {
  format: Format;
  tier: Tier;
  top?: number;
  /** The N largest native allocation sites (deep tier). */
  sites?: number;
  history: boolean;
  /** Two sample times (ISO-8601, as the history gives them) to compare. */
  diff?: [string, string];
}

/**
 * The format an Accept header asks for, as a Prometheus client library negotiates: OpenMetrics
 * when asked for, the text exposition format for `text/plain; version=0.0.4` (what a Prometheus
 * server sends, with OpenMetrics first when it may), the page for a browser's `text/html`, JSON for
 * `application/json`; the highest `q` wins, the order breaks ties, and anything else is the text.
 */
export function negotiate(accept: string | undefined): Format {
  if (!accept) return "text";
  let best: { format: Format; q: number } | undefined;
  for (const range of accept.slice(0, 2048).split(",")) {
    const [type = "", ...params] = range.split(";").map((x) => x.trim().toLowerCase());
    let q = 1;
    let version: string | undefined;
    for (const p of params) {
      const [k, v] = p.split("=").map((x) => x.trim());
      if (k === "q") q = Number(v);
      if (k === "version") version = v;
    }
    if (!Number.isFinite(q) || q <= 0) continue;
    const format: Format | undefined =
      type === "application/openmetrics-text"
        ? "openmetrics"
        : type === "text/plain" && version === "0.0.4"
          ? "prometheus"
          : type === "text/html"
            ? "html"
            : type === "application/json"
              ? "json"
              : undefined;
    if (format !== undefined && (best === undefined || q > best.q)) best = { format, q };
  }
  return best?.format ?? "text";
}

export function parseQuery(query: URLSearchParams, accept: string | undefined): Query | string {
  // Unknown parameters are left alone (a cache-buster must not fail a request); a known one given
  // twice is ambiguous.
  for (const key of queryKeys) {
    if (query.getAll(key).length > 1) return `${key} is given more than once`;
  }
  const format = query.get("format") ?? negotiate(accept);
  if (!(FORMATS as readonly string[]).includes(format))
    return `format must be one of ${FORMATS.join(", ")}, received ${JSON.stringify(format.slice(0, 40))}`;
  const request = parseReadRequest({ tier: query.get("tier"), top: query.get("top"), sites: query.get("sites") });
  if ("error" in request) return request.error;
  const historyParam = query.get("history");
  if (historyParam !== null && historyParam !== "0" && historyParam !== "1")
    return `history must be 0 or 1, received ${JSON.stringify(historyParam.slice(0, 40))}`;
  const diffParam = query.get("diff");
  let diff: [string, string] | undefined;
  if (diffParam !== null) {
    const times = diffParam.split(",");
    const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
    if (times.length !== 2 || !times.every((t) => iso.test(t)))
      return `diff must be two sample times from the history, FROM,TO in ISO-8601 UTC, received ${JSON.stringify(diffParam.slice(0, 80))}`;
    if (format !== "json") return "diff is answered as JSON only (format=json)";
    diff = times as [string, string];
  }
  return {
    format: format as Format,
    ...request,
    history: historyParam === "1",
    ...(diff ? { diff } : {}),
  };
}
