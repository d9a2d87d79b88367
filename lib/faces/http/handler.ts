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
import { isIP } from "node:net";
import { basename } from "node:path";
import {
  collectRepeated,
  errorText,
  extend,
  is,
  isHeapstateError,
  PeakConsumer,
  parseReadRequest,
  type Snapshot,
  snapshot,
  type Tier,
  topMappings,
  trim,
  withViews,
} from "../../core";
import { formatHuman, formatTopMappings } from "../format";
import { diffSamples, findingEpisodes } from "../history";
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, prometheusText } from "../metrics/prometheus";
import { SAMPLER_KEYS, type Sampler, type SamplerOptions, samplerOptions, startSampler } from "../sampler";
import { PAGE_CSP, pageHtml } from "./page";
import { redact, redactText } from "./redact";

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

const formats = ["text", "json", "prometheus", "openmetrics", "html"] as const;
type Format = (typeof formats)[number];
const queryKeys = ["format", "tier", "top", "history", "diff"];
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

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms, in any spelling. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const kind = isIP(address);
  if (kind === 4) return address.startsWith("127.");
  if (kind !== 6) return false;
  let canonical: string;
  try {
    canonical = new URL(`http://[${address}]/`).hostname;
  } catch {
    return false;
  }
  // The URL parser writes ::1 as [::1] and ::ffff:127.0.0.1 as [::ffff:7f00:1].
  return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/**
 * Headers by which a proxy in front of the service names the client it forwards for. Any of them
 * naming anything but a loopback address makes the request a remote client's.
 */
export const PROXY_HEADERS = [
  "x-forwarded-for",
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "x-client-ip",
  "fastly-client-ip",
] as const;

/** "[2001:db8::1]:4711", "192.0.2.1:80", "\"unknown\"" → the address part. */
function addressOf(token: string): string {
  let t = token.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1).trim();
  if (t.startsWith("[")) {
    const end = t.indexOf("]");
    return end > 0 ? t.slice(1, end) : t;
  }
  const colon = t.indexOf(":");
  if (colon > 0 && colon === t.lastIndexOf(":") && isIP(t.slice(0, colon)) === 4) return t.slice(0, colon);
  return t;
}

/**
 * Every value a header was sent with. Node keeps only the first of a repeated Host or
 * Content-Type in `headers`; `headersDistinct` (Node ≥ 18.3) has them all, so a second Host
 * cannot hide behind a first.
 */
function headerValues(req: IncomingMessage, name: string): string[] {
  const distinct = (req as { headersDistinct?: Record<string, string[] | undefined> }).headersDistinct?.[name];
  if (Array.isArray(distinct)) return distinct;
  const v = req.headers[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [String(v)];
}

/** Every client address the request names: the socket's, then each proxy header's. */
export function clientAddresses(req: IncomingMessage): string[] {
  const out: string[] = [req.socket?.remoteAddress ?? ""];
  for (const name of PROXY_HEADERS) {
    for (const value of headerValues(req, name)) {
      if (name === "forwarded") {
        // for=… anywhere in any element, with any spacing and quoting; by=, host=, proto= ignored.
        for (const element of value.split(/[,;]/)) {
          const eq = element.indexOf("=");
          if (eq > 0 && element.slice(0, eq).trim().toLowerCase() === "for") out.push(addressOf(element.slice(eq + 1)));
        }
      } else {
        for (const item of value.split(",")) if (item.trim() !== "") out.push(addressOf(item));
      }
    }
  }
  return out;
}

/** Whether a request comes from (or is forwarded for) a client that is not on this machine. */
export function isRemoteClient(req: IncomingMessage): boolean {
  return !clientAddresses(req).every(isLoopback);
}

/** "Host: [::1]:9464" → { name: "::1", port: "9464" }; undefined for a value that is no host. */
function parseHost(value: string): { name: string; port?: string } | undefined {
  const v = value.trim().toLowerCase();
  let name: string;
  let rest: string;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    if (end < 0) return undefined;
    name = v.slice(1, end);
    rest = v.slice(end + 1);
  } else {
    const colon = v.indexOf(":");
    name = colon < 0 ? v : v.slice(0, colon);
    rest = colon < 0 ? "" : v.slice(colon);
  }
  if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "") return undefined;
  return rest ? { name, port: rest.slice(1) } : { name };
}

/**
 * Whether the request's Host is one this handler answers: a loopback name or address, one the
 * operator listed, or (with allowRemote) any IP address. A page on another domain that resolves
 * to 127.0.0.1 sends its own name, so DNS rebinding cannot reach the answers. A request without
 * Host (HTTP/1.0 tools) was not sent by a browser.
 */
function hostAllowed(req: IncomingMessage, allowed: readonly string[], allowRemote: boolean): boolean {
  const values = headerValues(req, "host");
  if (values.length === 0) return true;
  if (values.length > 1) return false;
  const host = parseHost(values[0] as string);
  if (!host) return false;
  if (host.name === "localhost" || isLoopback(host.name)) return true;
  if (allowRemote && isIP(host.name) !== 0) return true;
  const full = host.port ? `${host.name}:${host.port}` : host.name;
  return allowed.some((a) => a === host.name || a === full);
}

/**
 * Why a POST to the trim action must be refused as possibly sent by a page of another site, or
 * undefined. A browser sends `Content-Type: application/json` to another origin only after a
 * CORS preflight, which this handler never grants; forms and `no-cors` fetches can only send
 * text/plain, urlencoded or multipart bodies. `Sec-Fetch-Site` and `Origin` are checked too.
 */
function crossSiteReason(req: IncomingMessage): string | undefined {
  for (const site of headerValues(req, "sec-fetch-site")) {
    if (site !== "same-origin" && site !== "none") return `Sec-Fetch-Site is ${site.slice(0, 40)}`;
  }
  const hosts = headerValues(req, "host");
  for (const origin of headerValues(req, "origin")) {
    const host = hosts.length === 1 ? hosts[0] : undefined;
    if (host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`)) {
      return `Origin ${origin.slice(0, 100)} is another site`;
    }
  }
  const types = headerValues(req, "content-type");
  const type = types.length === 1 ? types[0]?.split(";")[0]?.trim().toLowerCase() : undefined;
  if (type !== "application/json") return "the trim action needs Content-Type: application/json";
  return undefined;
}

/** The request target split into its path and query, or undefined when it is no origin-form or absolute URL. */
interface Target {
  pathname: string;
  query: URLSearchParams;
}

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

interface Query {
  format: Format;
  tier: Tier;
  top?: number;
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

function parseQuery(query: URLSearchParams, accept: string | undefined): Query | string {
  // Unknown parameters are left alone (a cache-buster must not fail a request); a known one given
  // twice is ambiguous.
  for (const key of queryKeys) {
    if (query.getAll(key).length > 1) return `${key} is given more than once`;
  }
  const format = query.get("format") ?? negotiate(accept);
  if (!(formats as readonly string[]).includes(format))
    return `format must be one of ${formats.join(", ")}, received ${JSON.stringify(format.slice(0, 40))}`;
  const request = parseReadRequest({ tier: query.get("tier"), top: query.get("top") });
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

/** A sampler of the caller's own (an object with samples()), asked inside a guard: its getter may throw. */
function isSampler(where: string, value: unknown): value is Sampler {
  if (value === null || typeof value !== "object") return false;
  try {
    return typeof (value as Sampler).samples === "function";
  } catch (error) {
    throw is.invalidOption(where, `sampler could not be read (${errorText(error)})`);
  }
}

/**
 * The /debug/memory handler. Options are checked here, at construction: a wrong type or an
 * unknown key throws HeapstateError ("INVALID_OPTION") naming it.
 * @example
 * http.createServer(createHandler()).listen(9464, "127.0.0.1");
 * app.use(createHandler({ trim: true }));            // Express: other paths go to next()
 */
export function createHandler(options?: HandlerOptions): Handler {
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
  const trimPath = `${path === "/" ? "" : path}/trim`;
  const allowRemote = is.bool(where, "allowRemote", o.allowRemote, false);
  const allowedHosts = is.textList(where, "allowedHosts", o.allowedHosts).map((h) => h.toLowerCase());
  const shown = {
    addresses: is.bool(where, "includeAddresses", o.includeAddresses, false),
    paths: is.bool(where, "includePaths", o.includePaths, false),
    environment: is.bool(where, "includeEnvironment", o.includeEnvironment, false),
  };
  const trimEnabled = is.bool(where, "trim", o.trim, false);
  let given: Sampler | undefined;
  let samplerSettings: SamplerOptions | undefined;
  if (o.sampler === false) {
    given = undefined;
  } else if (isSampler(where, o.sampler)) {
    given = o.sampler;
  } else {
    samplerSettings = samplerOptions(
      {
        intervalMs: 2000,
        size: 900,
        ...is.optionsObject(`${where}: sampler`, o.sampler, SAMPLER_KEYS),
      },
      `${where}: sampler`,
    );
  }
  let started: Sampler | undefined;
  const history = (): Sampler | undefined => {
    if (given) return given;
    if (!samplerSettings) return undefined;
    started ??= startSampler(samplerSettings);
    return started;
  };
  const show = (s: Snapshot) => redact(s, shown);
  // Scrapes follow the peak RSS between them (never resetting it: that is registerPrometheus's
  // option); on a copy, since snapshot()'s cached reading is shared.
  const peaks = new PeakConsumer(false);
  const scraped = (): Snapshot => {
    const s = snapshot({ maxAgeMs: 1000 });
    const copy = withViews(extend(s, { warnings: [...s.warnings] }));
    peaks.take(copy);
    return copy;
  };

  const answer = (req: IncomingMessage, remote: boolean, target: Target): Answer | "next" => {
    const isTrim = target.pathname === trimPath;
    if (target.pathname !== path && !isTrim) return "next";
    if (remote && !allowRemote) {
      return plain(403, "only loopback clients are answered (createHandler({ allowRemote: true }) to change that)");
    }
    if (!hostAllowed(req, allowedHosts, allowRemote)) {
      return plain(
        421,
        "this Host is not answered (loopback names only; list others in createHandler({ allowedHosts }))",
      );
    }
    if (isTrim) {
      if (!trimEnabled) return plain(404, "the trim action is not enabled (createHandler({ trim: true }))");
      if (req.method !== "POST") return plain(405, "trim is a POST", { allow: "POST" });
      const refused = crossSiteReason(req);
      if (refused) return plain(403, `trim refused: ${refused}`);
      const t = trim();
      const body = {
        before: show(t.before),
        after: show(t.after),
        ...(t.promisedBytes !== undefined ? { promisedBytes: t.promisedBytes } : {}),
        ...(t.releasedBytes !== undefined ? { releasedBytes: t.releasedBytes } : {}),
        ...(t.rssGrewBytes !== undefined ? { rssGrewBytes: t.rssGrewBytes } : {}),
        actions: shown.paths ? t.actions : t.actions.map((a) => ({ ...a, library: basename(a.library) })),
      };
      return { status: 200, type: "application/json; charset=utf-8", body: `${JSON.stringify(body, null, 2)}\n` };
    }
    if (req.method !== "GET" && req.method !== "HEAD") return plain(405, "GET or HEAD", { allow: "GET, HEAD" });
    const q = parseQuery(target.query, headerValues(req, "accept").join(","));
    if (typeof q === "string") return plain(400, q);
    switch (q.format) {
      case "prometheus":
      case "openmetrics":
        return {
          status: 200,
          type: q.format === "openmetrics" ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE,
          body: prometheusText(scraped(), { format: q.format === "openmetrics" ? "openmetrics" : "text" }),
        };
      case "html":
        return {
          status: 200,
          type: "text/html; charset=utf-8",
          body: pageHtml(history()?.intervalMs ?? 5000),
          headers: { "content-security-policy": PAGE_CSP },
        };
      case "json": {
        if (q.diff) {
          const ring = history();
          if (!ring) return plain(404, "no history to compare: this handler was created with sampler: false");
          const samples = ring.samples();
          const [a, b] = q.diff.map((t) => samples.find((x) => x.time === t));
          if (!a || !b)
            return plain(
              404,
              `no sample at ${a ? q.diff[1] : q.diff[0]} in the history (it keeps the last ${samples.length} samples)`,
            );
          return {
            status: 200,
            type: "application/json; charset=utf-8",
            body: `${JSON.stringify(diffSamples(a, b), null, 2)}\n`,
          };
        }
        const read = collectRepeated({ tier: q.tier, includeAddresses: q.top !== undefined });
        const top = q.top !== undefined ? topMappings(read.regions, q.top, shown.addresses) : undefined;
        const s = top ? extend(show(read), { topRegions: top }) : show(read);
        const samples = q.history ? (history()?.samples() ?? []) : [];
        const body = q.history ? { snapshot: s, history: samples, findingsHistory: findingEpisodes(samples) } : s;
        return { status: 200, type: "application/json; charset=utf-8", body: `${JSON.stringify(body, null, 2)}\n` };
      }
      default: {
        const read = collectRepeated({ tier: q.tier, includeAddresses: q.top !== undefined });
        const lines = [formatHuman(show(read))];
        if (q.top !== undefined)
          lines.push(...formatTopMappings(topMappings(read.regions, q.top, shown.addresses), q.top));
        return { status: 200, type: "text/plain; charset=utf-8", body: `${lines.join("\n")}\n` };
      }
    }
  };

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
      const a = target ? answer(req, remote, target) : plain(400, "the request target is not a path");
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

/** What a fetch-style runtime can say of the connection a Request came on. */
export interface FetchInfo {
  /**
   * The client's address (Bun: `server.requestIP(req)?.address`; Deno: `info.remoteAddr.hostname`;
   * Hono on node: `c.env.incoming.socket.remoteAddress`). Unknown means remote: refused unless
   * `allowRemote`.
   */
  remoteAddress?: string;
}

/**
 * The same handler for fetch-style runtimes (Hono, Bun, Deno, Next.js route handlers, workers):
 * `Request → Response`, under the same rules (loopback clients only, the Host check against DNS
 * rebinding, trim only from the same origin). A request for another path gets 404.
 * @example
 * const handle = createFetchHandler();
 * app.all("/debug/memory/*", (c) => handle(c.req.raw, { remoteAddress: c.env.incoming.socket.remoteAddress }));
 */
export function createFetchHandler(
  options?: HandlerOptions,
): (request: Request, info?: FetchInfo) => Promise<Response> {
  const node = createHandler(options);
  return async (request, info) => {
    // A Request is the caller's object: its getters (url, method, headers) and the info's may
    // throw. Whatever they do, the promise resolves to a Response: 400 for a request that cannot
    // be read, 500 for anything else.
    let req: IncomingMessage;
    let method: string;
    try {
      const read = fetchRequest(request, info);
      if (typeof read === "string") return new Response(`heapstate: ${read}\n`, { status: 400 });
      ({ req, method } = read);
    } catch (error) {
      return new Response(`heapstate: the request could not be read (${redactText(errorText(error, 200))})\n`, {
        status: 400,
      });
    }
    try {
      return answerFetch(node, req, method);
    } catch (error) {
      return new Response(`heapstate: internal error: ${redactText(errorText(error, 200))}\n`, { status: 500 });
    }
  };
}

/** The parts of a fetch Request the Node handler reads, or why it cannot be read (a 400). */
function fetchRequest(
  request: Request,
  info: FetchInfo | undefined,
): { req: IncomingMessage; method: string } | string {
  if (request === null || typeof request !== "object") return "the request is not a Request";
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return "the request URL is not a URL";
  }
  const method = request.method;
  if (typeof method !== "string") return "the request has no method";
  const headers: Record<string, string> = {};
  const distinct: Record<string, string[]> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
    // fetch joins repeated headers with ", ": one value each (the proxy headers are split on commas anyway).
    distinct[name] = [value];
  });
  // Host is the URL's own where the runtime does not pass the header through.
  headers.host ??= url.host;
  distinct.host ??= [url.host];
  const remote = info?.remoteAddress;
  const req = {
    method,
    url: `${url.pathname}${url.search}`,
    headers,
    headersDistinct: distinct,
    socket: { remoteAddress: typeof remote === "string" ? remote : "" },
  } as unknown as IncomingMessage;
  return { req, method };
}

/** Runs the Node handler on a request read from a fetch Request, and turns its answer into a Response. */
function answerFetch(
  node: (req: IncomingMessage, res: ServerResponse, next?: () => void) => void,
  req: IncomingMessage,
  method: string,
): Response {
  const answer = {
    status: 404,
    headers: { "content-type": "text/plain; charset=utf-8" } as Record<string, string>,
    body: "heapstate: not found\n" as string | undefined,
    sent: false,
  };
  const res = {
    get headersSent() {
      return answer.sent;
    },
    get writableEnded() {
      return answer.sent;
    },
    destroyed: false,
    writeHead(code: number, h: Record<string, string>) {
      answer.status = code;
      answer.headers = h;
    },
    end(text?: string) {
      answer.body = text;
      answer.sent = true;
    },
    destroy() {
      answer.status = 500;
      answer.body = "heapstate: internal error\n";
      answer.sent = true;
    },
  } as unknown as ServerResponse;
  node(req, res, () => {
    // Not this handler's path: the fetch-style caller has no next(); 404.
  });
  const headersOut = new Headers();
  for (const [k, v] of Object.entries(answer.headers)) if (k !== "content-length") headersOut.set(k, v);
  return new Response(method === "HEAD" ? null : (answer.body ?? null), {
    status: answer.status,
    headers: headersOut,
  });
}
