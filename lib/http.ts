/**
 * createHandler(): `/debug/memory` for node:http (and so Express, Fastify and Koa through their
 * raw request and response). Text by default; JSON, Prometheus or a live HTML page on request.
 * Safe by default: loopback clients only, no addresses, paths or environment values, and the trim
 * action off.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import { describeType, HeapstateError } from "./errors";
import { formatHuman } from "./format";
import { PAGE_CSP, pageHtml } from "./page";
import { prometheusText } from "./prometheus";
import { redact } from "./redact";
import { topMappings } from "./regions";
import { type Sampler, type SamplerOptions, startSampler } from "./sampler";
import { collect, snapshot, trim } from "./snapshot";
import type { Snapshot, Tier } from "./types";

export interface HandlerOptions {
  /** The route (default "/debug/memory"); POST <path>/trim is the trim action. */
  path?: string;
  /** Answer clients that are not on a loopback address (default false: they get 403). */
  allowRemote?: boolean;
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

const formats = ["text", "json", "prometheus", "html"] as const;
type Format = (typeof formats)[number];
const queryKeys = ["format", "tier", "top", "history"];

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (isIP(a) === 4) return a.startsWith("127.");
  return a === "::1";
}

function forwardedFrom(req: IncomingMessage): string[] {
  const out: string[] = [];
  const xff = req.headers["x-forwarded-for"];
  for (const v of Array.isArray(xff) ? xff : xff ? [xff] : []) out.push(...v.split(",").map((x) => x.trim()));
  const fwd = req.headers.forwarded;
  for (const m of (Array.isArray(fwd) ? fwd.join(",") : (fwd ?? "")).matchAll(/for="?\[?([^\]";,]+)/gi))
    out.push(m[1] as string);
  return out.filter(Boolean);
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  head: boolean,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-length": String(Buffer.byteLength(body)),
    ...extra,
  });
  res.end(head ? undefined : body);
}

interface Query {
  format: Format;
  tier: Tier;
  top?: number;
  history: boolean;
}

function parseQuery(url: URL, accept: string | undefined): Query | string {
  for (const key of url.searchParams.keys()) {
    if (!queryKeys.includes(key)) return `unknown query parameter "${key}" (known: ${queryKeys.join(", ")})`;
  }
  const format = url.searchParams.get("format") ?? (accept?.includes("application/json") ? "json" : "text");
  if (!(formats as readonly string[]).includes(format))
    return `format must be one of ${formats.join(", ")}, received "${format}"`;
  const tierParam = url.searchParams.get("tier");
  if (tierParam !== null && !["fast", "standard", "deep"].includes(tierParam)) {
    return `tier must be fast, standard or deep, received "${tierParam}"`;
  }
  const topParam = url.searchParams.get("top");
  let top: number | undefined;
  if (topParam !== null) {
    if (!/^\d{1,4}$/.test(topParam) || Number(topParam) < 1 || Number(topParam) > 1000) {
      return `top must be a whole number from 1 to 1000, received "${topParam}"`;
    }
    top = Number(topParam);
  }
  const historyParam = url.searchParams.get("history");
  if (historyParam !== null && historyParam !== "0" && historyParam !== "1")
    return `history must be 0 or 1, received "${historyParam}"`;
  const tier = (tierParam as Tier | null) ?? (top !== undefined ? "deep" : "standard");
  if (top !== undefined && tier !== "deep") return "top needs the deep tier";
  return { format: format as Format, tier, ...(top !== undefined ? { top } : {}), history: historyParam === "1" };
}

/**
 * The /debug/memory handler.
 * @example
 * http.createServer(createHandler()).listen(9464, "127.0.0.1");
 * app.use(createHandler({ trim: true }));            // Express: other paths go to next()
 */
export function createHandler(options: HandlerOptions = {}): Handler {
  if (options === null || typeof options !== "object") {
    throw new HeapstateError(
      "INVALID_OPTION",
      `createHandler(options): expected an object, received ${describeType(options)}`,
    );
  }
  const known = ["path", "allowRemote", "includeAddresses", "includePaths", "includeEnvironment", "trim", "sampler"];
  for (const k of Object.keys(options)) {
    if (!known.includes(k))
      throw new HeapstateError(
        "INVALID_OPTION",
        `createHandler(options): unknown option "${k}" (known: ${known.join(", ")})`,
      );
  }
  const path = (options.path ?? "/debug/memory").replace(/\/+$/, "") || "/";
  let sampler: Sampler | undefined;
  const history = (): Sampler | undefined => {
    if (options.sampler === false) return undefined;
    if (options.sampler && "samples" in options.sampler) return options.sampler;
    sampler ??= startSampler({ intervalMs: 2000, size: 900, ...(options.sampler as SamplerOptions | undefined) });
    return sampler;
  };
  const show = (s: Snapshot) =>
    redact(s, {
      addresses: options.includeAddresses,
      paths: options.includePaths,
      environment: options.includeEnvironment,
    });

  return (req, res, next) => {
    const raw = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    const url = new URL(raw, "http://localhost");
    const pathname = url.pathname.replace(/\/+$/, "") || "/";
    const isTrim = pathname === `${path === "/" ? "" : path}/trim`;
    if (pathname !== path && !isTrim) {
      if (next) next();
      else send(res, 404, "text/plain; charset=utf-8", "not found\n", req.method === "HEAD");
      return;
    }
    const head = req.method === "HEAD";
    if (!options.allowRemote) {
      const from = [req.socket?.remoteAddress, ...forwardedFrom(req)];
      if (!from.every((a) => isLoopback(a))) {
        send(
          res,
          403,
          "text/plain; charset=utf-8",
          "heapstate: only loopback clients are answered (createHandler({ allowRemote: true }) to change that)\n",
          head,
        );
        return;
      }
    }
    try {
      if (isTrim) {
        if (!options.trim) {
          send(
            res,
            404,
            "text/plain; charset=utf-8",
            "heapstate: the trim action is not enabled (createHandler({ trim: true }))\n",
            head,
          );
          return;
        }
        if (req.method !== "POST") {
          send(res, 405, "text/plain; charset=utf-8", "heapstate: trim is a POST\n", head, { allow: "POST" });
          return;
        }
        const t = trim();
        const body = {
          before: show(t.before),
          after: show(t.after),
          ...(t.releasedBytes !== undefined ? { releasedBytes: t.releasedBytes } : {}),
          actions: t.actions,
        };
        send(res, 200, "application/json; charset=utf-8", `${JSON.stringify(body, null, 2)}\n`, false);
        return;
      }
      if (req.method !== "GET" && !head) {
        send(res, 405, "text/plain; charset=utf-8", "heapstate: GET or HEAD\n", false, { allow: "GET, HEAD" });
        return;
      }
      const q = parseQuery(url, req.headers.accept);
      if (typeof q === "string") {
        send(res, 400, "text/plain; charset=utf-8", `heapstate: ${q}\n`, head);
        return;
      }
      switch (q.format) {
        case "prometheus":
          send(
            res,
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            prometheusText(snapshot({ maxAgeMs: 1000 })),
            head,
          );
          return;
        case "html": {
          const h = history();
          send(res, 200, "text/html; charset=utf-8", pageHtml(h?.intervalMs ?? 5000), head, {
            "content-security-policy": PAGE_CSP,
          });
          return;
        }
        case "json": {
          const read = collect({ tier: q.tier, includeAddresses: q.top !== undefined });
          const top =
            q.top !== undefined ? topMappings(read.regions, q.top, options.includeAddresses === true) : undefined;
          const s = { ...show(read), ...(top ? { topRegions: top } : {}) };
          const body = q.history ? { snapshot: s, history: history()?.samples() ?? [] } : s;
          send(res, 200, "application/json; charset=utf-8", `${JSON.stringify(body, null, 2)}\n`, head);
          return;
        }
        default:
          send(res, 200, "text/plain; charset=utf-8", `${formatHuman(show(collect({ tier: q.tier })))}\n`, head);
      }
    } catch (error) {
      const message = error instanceof HeapstateError ? error.message : `internal error: ${(error as Error).message}`;
      send(res, 500, "text/plain; charset=utf-8", `heapstate: ${message}\n`, head);
    }
  };
}
