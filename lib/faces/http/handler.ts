/**
 * createHandler(): `/debug/memory` for node:http (and so Express, Fastify and Koa through their
 * raw request and response). Text by default; JSON, Prometheus or a live HTML page on request.
 * Safe by default: loopback clients only, loopback Host names only (DNS rebinding), no trim from
 * a page of another site, no addresses, paths or environment values, and the trim action off.
 *
 * Safe by construction: the whole answer runs inside one guard, so nothing a request carries can
 * throw out of the handler; who the client is is decided from the socket and the proxy headers
 * before anything parses the target; the target is split by hand, never handed to `new URL()`
 * (which throws on `//` and reads `//x/y` as host x).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { basename } from "node:path";
import {
  type CollectOptions,
  collectRepeated,
  errorText,
  extend,
  is,
  isHeapstateError,
  PeakConsumer,
  type Snapshot,
  snapshot,
  topMappings,
  trim,
  withViews,
} from "../../core";
import { formatHuman, formatTopMappings } from "../format";
import { diffSamples, findingEpisodes } from "../history";
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, prometheusText } from "../metrics/prometheus";
import { SAMPLER_KEYS, type Sampler, type SamplerOptions, samplerOptions, startSampler } from "../sampler";
import { crossSiteReason, headerValues, hostAllowed, isRemoteClient } from "./guard";
import { PAGE_CSP, pageHtml } from "./page";
import { redact, redactText } from "./redact";
import { parseQuery, parseTarget, type Query, type Target } from "./request";

export interface HandlerOptions {
  /** The route (default "/debug/memory"); POST <path>/trim is the trim action. */
  path?: string;
  /** Answer clients that are not on a loopback address (default false: they get 403). */
  allowRemote?: boolean;
  /**
   * Host names (or `name:port`) besides the loopback ones (`localhost`, 127.0.0.0/8, `[::1]`) that
   * a request's `Host` may carry; any other is refused with 421, so a page whose DNS name was
   * rebound to 127.0.0.1 cannot read the answers. With `allowRemote`, IP addresses are accepted too.
   */
  allowedHosts?: string[];
  /** Region addresses (deep tier, `top`) in the output (default false: they defeat ASLR). */
  includeAddresses?: boolean;
  /** File paths (allocator libraries, cgroup path, paths in warnings) in the output (default false). */
  includePaths?: boolean;
  /** Environment values (LD_PRELOAD in findings) in the output (default false). */
  includeEnvironment?: boolean;
  /** Enable POST <path>/trim (default false). */
  trim?: boolean;
  /** The history behind the chart and `history=1`: a running sampler, options for the one the handler starts on first need (default { intervalMs: 2000, size: 900 }), or false for none. */
  sampler?: Sampler | SamplerOptions | false;
}

type Next = (error?: unknown) => void;
type Handler = (req: IncomingMessage, res: ServerResponse, next?: Next) => void;

const optionKeys = [
  "path",
  "allowRemote",
  "allowedHosts",
  "includeAddresses",
  "includePaths",
  "includeEnvironment",
  "trim",
  "sampler",
] as const;

interface Answer {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

const plain = (status: number, text: string, headers?: Record<string, string>): Answer => ({
  status,
  type: "text/plain; charset=utf-8",
  body: `heapstate: ${text}\n`,
  ...(headers ? { headers } : {}),
});

function send(res: ServerResponse, a: Answer, head: boolean): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  res.writeHead(a.status, {
    "content-type": a.type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    // The answer depends on Accept (and on ?format=), so caches must keep them apart.
    vary: "Accept",
    "content-length": String(Buffer.byteLength(a.body)),
    ...a.headers,
  });
  res.end(head ? undefined : a.body);
}

/** A sampler of the caller's own (an object with samples()), asked inside a guard: its getter may throw. */
function isSampler(where: string, value: unknown): value is Sampler {
  if (value === null || typeof value !== "object") return false;
  try {
    return typeof (value as Sampler).samples === "function";
  } catch (error) {
    throw is.invalidOption(where, `sampler could not be read (${errorText(error)})`);
  }
}

/** createHandler's options, checked: what every request is answered with. */
interface Settings {
  path: string;
  trimPath: string;
  allowRemote: boolean;
  allowedHosts: string[];
  shown: { addresses: boolean; paths: boolean; environment: boolean };
  trimEnabled: boolean;
  /** The sampler behind the chart and history=1 (started on first need), or undefined for none. */
  history: () => Sampler | undefined;
  /** The reading a scrape answers with: snapshot()'s cached fast reading, with the peak between scrapes. */
  scraped: () => Snapshot;
}

function handlerSettings(options: unknown): Settings {
  const where = "createHandler(options)";
  const o = is.optionsObject(where, options, optionKeys);
  const pathOption = is.text(where, "path", o.path, "/debug/memory");
  if (!pathOption.startsWith("/") || /[?#\s\0]/.test(pathOption)) {
    throw is.invalidOption(
      where,
      `path must start with "/" and hold no "?", "#" or spaces, ${is.received(pathOption)}`,
    );
  }
  const path = pathOption.replace(/\/+$/, "") || "/";
  const allowRemote = is.bool(where, "allowRemote", o.allowRemote, false);
  const settings = {
    path,
    trimPath: `${path === "/" ? "" : path}/trim`,
    allowRemote,
    allowedHosts: is.textList(where, "allowedHosts", o.allowedHosts).map((h) => h.toLowerCase()),
    shown: {
      addresses: is.bool(where, "includeAddresses", o.includeAddresses, false),
      paths: is.bool(where, "includePaths", o.includePaths, false),
      environment: is.bool(where, "includeEnvironment", o.includeEnvironment, false),
    },
    trimEnabled: is.bool(where, "trim", o.trim, false),
  };
  return { ...settings, history: historyOption(where, o.sampler), scraped: scrapedReading() };
}

/** The history the sampler option asks for: the caller's sampler, one started on first need, or none. */
function historyOption(where: string, option: unknown): () => Sampler | undefined {
  if (option === false) return () => undefined;
  if (isSampler(where, option)) return () => option;
  const settings = samplerOptions(
    { intervalMs: 2000, size: 900, ...is.optionsObject(`${where}: sampler`, option, SAMPLER_KEYS) },
    `${where}: sampler`,
  );
  let started: Sampler | undefined;
  return () => {
    started ??= startSampler(settings);
    return started;
  };
}

/**
 * Scrapes follow the peak RSS between them (never resetting it: that is registerPrometheus's
 * option); on a copy, since snapshot()'s cached reading is shared.
 */
function scrapedReading(): () => Snapshot {
  const peaks = new PeakConsumer(false);
  return () => {
    const s = snapshot({ maxAgeMs: 1000 });
    const copy = withViews(extend(s, { warnings: [...s.warnings] }));
    peaks.take(copy);
    return copy;
  };
}

const json = (body: unknown): Answer => ({
  status: 200,
  type: "application/json; charset=utf-8",
  body: `${JSON.stringify(body, null, 2)}\n`,
});

/** POST <path>/trim: refused unless enabled, a POST, and from this site; else the trim's before and after. */
function answerTrim(req: IncomingMessage, settings: Settings): Answer {
  if (!settings.trimEnabled) return plain(404, "the trim action is not enabled (createHandler({ trim: true }))");
  if (req.method !== "POST") return plain(405, "trim is a POST", { allow: "POST" });
  const refused = crossSiteReason(req);
  if (refused) return plain(403, `trim refused: ${refused}`);
  const t = trim();
  const show = (s: Snapshot) => redact(s, settings.shown);
  return json({
    before: show(t.before),
    after: show(t.after),
    ...(t.promisedBytes !== undefined ? { promisedBytes: t.promisedBytes } : {}),
    ...(t.releasedBytes !== undefined ? { releasedBytes: t.releasedBytes } : {}),
    ...(t.rssGrewBytes !== undefined ? { rssGrewBytes: t.rssGrewBytes } : {}),
    actions: settings.shown.paths ? t.actions : t.actions.map((a) => ({ ...a, library: basename(a.library) })),
  });
}

/** GET <path> in the format asked for. Each answer is of one reading, whose tier it names. */
function answerRead(q: Query, settings: Settings): Answer {
  const show = (s: Snapshot) => redact(s, settings.shown);
  switch (q.format) {
    case "prometheus":
    case "openmetrics":
      return {
        status: 200,
        type: q.format === "openmetrics" ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE,
        body: prometheusText(settings.scraped(), { format: q.format === "openmetrics" ? "openmetrics" : "text" }),
      };
    case "html":
      return {
        status: 200,
        type: "text/html; charset=utf-8",
        body: pageHtml(settings.history()?.intervalMs ?? 5000),
        headers: { "content-security-policy": PAGE_CSP },
      };
    case "json": {
      if (q.diff) return answerDiff(q.diff, settings.history());
      const read = collectRepeated(readOptions(q));
      const top = q.top !== undefined ? topMappings(read.regions, q.top, settings.shown.addresses) : undefined;
      const s = top ? extend(show(read), { topRegions: top }) : show(read);
      const samples = q.history ? (settings.history()?.samples() ?? []) : [];
      return json(q.history ? { snapshot: s, history: samples, findingsHistory: findingEpisodes(samples) } : s);
    }
    default: {
      const read = collectRepeated(readOptions(q));
      const lines = [formatHuman(show(read))];
      if (q.top !== undefined)
        lines.push(...formatTopMappings(topMappings(read.regions, q.top, settings.shown.addresses), q.top));
      return { status: 200, type: "text/plain; charset=utf-8", body: `${lines.join("\n")}\n` };
    }
  }
}

/** What a JSON or text answer reads: its tier, addresses for top, and native sites when asked. */
function readOptions(q: Query): CollectOptions {
  return {
    tier: q.tier,
    includeAddresses: q.top !== undefined,
    ...(q.sites !== undefined ? { nativeSites: { top: q.sites } } : {}),
  };
}

/** diff=FROM,TO: two samples of the history compared. */
function answerDiff(times: [string, string], ring: Sampler | undefined): Answer {
  if (!ring) return plain(404, "no history to compare: this handler was created with sampler: false");
  const samples = ring.samples();
  const [a, b] = times.map((t) => samples.find((x) => x.time === t));
  if (!a || !b)
    return plain(
      404,
      `no sample at ${a ? times[1] : times[0]} in the history (it keeps the last ${samples.length} samples)`,
    );
  return json(diffSamples(a, b));
}

/** Who asks, then what: the client and Host checks come before the target's path is acted on. */
function answer(req: IncomingMessage, remote: boolean, target: Target, settings: Settings): Answer | "next" {
  const isTrim = target.pathname === settings.trimPath;
  if (target.pathname !== settings.path && !isTrim) return "next";
  if (remote && !settings.allowRemote) {
    return plain(403, "only loopback clients are answered (createHandler({ allowRemote: true }) to change that)");
  }
  if (!hostAllowed(req, settings.allowedHosts, settings.allowRemote)) {
    return plain(
      421,
      "this Host is not answered (loopback names only; list others in createHandler({ allowedHosts }))",
    );
  }
  if (isTrim) return answerTrim(req, settings);
  if (req.method !== "GET" && req.method !== "HEAD") return plain(405, "GET or HEAD", { allow: "GET, HEAD" });
  const q = parseQuery(target.query, headerValues(req, "accept").join(","));
  return typeof q === "string" ? plain(400, q) : answerRead(q, settings);
}

/**
 * The /debug/memory handler. Options are checked here, at construction: a wrong type or an
 * unknown key throws HeapstateError ("INVALID_OPTION") naming it.
 * @example
 * http.createServer(createHandler()).listen(9464, "127.0.0.1");
 * app.use(createHandler({ trim: true }));            // Express: other paths go to next()
 */
export function createHandler(options?: HandlerOptions): Handler {
  const settings = handlerSettings(options);
  return (req, res, next) => {
    let pass = false;
    let head = false;
    try {
      head = req.method === "HEAD";
      // Who asks, first: from the socket and the proxy headers, before the target is looked at.
      const remote = isRemoteClient(req);
      // req.url: under a mount point (Express's app.use("/admin", handler)) it is the part below it.
      const raw = req.url ?? "/";
      const target = typeof raw === "string" ? parseTarget(raw) : undefined;
      const a = target ? answer(req, remote, target, settings) : plain(400, "the request target is not a path");
      if (a === "next") {
        if (next) pass = true;
        else send(res, plain(404, "not found"), head);
      } else {
        send(res, a, head);
      }
    } catch (error) {
      const message = isHeapstateError(error) ? error.message : `internal error: ${errorText(error)}`;
      try {
        send(res, plain(500, redactText(message)), head);
      } catch {
        res.destroy();
      }
    }
    // Outside the guard: what the rest of the application does with the request is its own.
    if (pass) next?.();
  };
}
