/** createHandler() on a real node:http server on 127.0.0.1. */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLoopback } from "../../lib/faces/http/guard";
import {
  createHandler,
  type HandlerOptions,
  parseSnapshot,
  type Sample,
  type SampleDiff,
  startSampler,
} from "../../lib/index";
import { pythonParse } from "../oracles";

const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** A server whose handler sees the remote address `pretend` when given (to simulate a remote client). */
async function serve(options: HandlerOptions = {}, pretend?: string): Promise<string> {
  const handler = createHandler({ sampler: false, ...options });
  const server = createServer((req: IncomingMessage, res) => {
    if (pretend) Object.defineProperty(req.socket, "remoteAddress", { value: pretend, configurable: true });
    handler(req, res, () => {
      res.writeHead(418).end("next\n");
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("formats", () => {
  let base: string;
  beforeAll(async () => {
    base = await serve();
  });

  it("text by default", async () => {
    const r = await fetch(`${base}/debug/memory`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(r.headers.get("cache-control")).toBe("no-store");
    expect(await r.text()).toMatch(/^heapstate {2}pid \d+/);
  });

  it("JSON with ?format=json or Accept: application/json; no paths, addresses or environment by default", async () => {
    const inits: Array<{ url: string; headers: Record<string, string> }> = [
      { url: "?format=json", headers: {} },
      { url: "", headers: { accept: "application/json" } },
    ];
    for (const init of inits) {
      const r = await fetch(`${base}/debug/memory${init.url}`, { headers: init.headers });
      expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
      const text = await r.text();
      const s = parseSnapshot(text);
      expect(s.heap?.library).toBe("libc.so.6");
      expect(s.cgroup?.path ?? "(hidden)").toBe("(hidden)");
      expect(text).not.toMatch(/"\/(usr|lib|proc|sys)\//);
    }
    const deep = await (await fetch(`${base}/debug/memory?format=json&tier=deep&top=3`)).text();
    expect(deep).not.toMatch(/0x[0-9a-f]{6,}/);
    expect((JSON.parse(deep) as { topRegions: unknown[] }).topRegions).toHaveLength(3);
  });

  it("Prometheus exposition with ?format=prometheus", async () => {
    const r = await fetch(`${base}/debug/memory?format=prometheus`);
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const fs = pythonParse(await r.text());
    const rss = fs.find((f) => f.name === "heapstate_memory_rss_bytes")?.samples[0]?.value;
    const parts = fs.find((f) => f.name === "heapstate_memory_breakdown_bytes")?.samples ?? [];
    expect(parts.reduce((n, p) => n + p.value, 0)).toBe(rss);
  });

  it("negotiates by Accept as a Prometheus client library does; ?format= wins; Vary: Accept always", async () => {
    const prometheusAccept =
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    const cases: Array<[Record<string, string>, string, string, RegExp]> = [
      [{ accept: prometheusAccept }, "", "application/openmetrics-text; version=1.0.0; charset=utf-8", /# EOF\n$/],
      [
        { accept: "text/plain;version=0.0.4;q=0.5,*/*;q=0.1" },
        "",
        "text/plain; version=0.0.4; charset=utf-8",
        /^# HELP /,
      ],
      [
        { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" },
        "",
        "text/html; charset=utf-8",
        /<canvas/,
      ],
      [{ accept: "application/json" }, "", "application/json; charset=utf-8", /"schema"/],
      [{ accept: "*/*" }, "", "text/plain; charset=utf-8", /^heapstate {2}pid/],
      [{ accept: "text/plain" }, "", "text/plain; charset=utf-8", /^heapstate {2}pid/],
      [{ accept: prometheusAccept }, "?format=json", "application/json; charset=utf-8", /"schema"/],
      [
        { accept: "application/json" },
        "?format=openmetrics",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        /# EOF\n$/,
      ],
      [{}, "?format=text&_=1733070000000&cachebust", "text/plain; charset=utf-8", /^heapstate {2}pid/],
    ];
    for (const [headers, query, type, body] of cases) {
      const r = await fetch(`${base}/debug/memory${query}`, { headers });
      const label = `${JSON.stringify(headers)} ${query}`;
      expect(r.status, label).toBe(200);
      expect(r.headers.get("content-type"), label).toBe(type);
      expect(r.headers.get("vary"), label).toBe("Accept");
      expect(await r.text(), label).toMatch(body);
    }
    for (const bad of ["?format=xml", "?tier=full"]) {
      const r = await fetch(`${base}/debug/memory${bad}`);
      expect(r.status).toBe(400);
      expect(r.headers.get("vary")).toBe("Accept");
    }
  });

  it("?top=N in the text format too", async () => {
    const text = await (await fetch(`${base}/debug/memory?tier=deep&top=3`)).text();
    const lines = text.split("\n");
    const at = lines.indexOf("top 3 mappings by RSS");
    expect(at, text).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 4).every((l) => /^ {2}\S+ [r-][w-][x-][ps] +size /.test(l))).toBe(true);
    expect(text).not.toMatch(/0x[0-9a-f]{6,}|\/usr\//);
  });

  it("HTML with ?format=html, self-contained, with a CSP that allows its own origin only", async () => {
    const r = await fetch(`${base}/debug/memory?format=html`);
    expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(r.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(r.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await r.text();
    expect(html).toContain("<canvas");
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("history=1 adds the sampler's samples (none here: the sampler is off)", async () => {
    const body = (await (await fetch(`${base}/debug/memory?format=json&history=1`)).json()) as {
      snapshot: object;
      history: unknown[];
    };
    expect(body.history).toEqual([]);
    expect(parseSnapshot(body.snapshot).schema).toBe("heapstate/3");
  });

  it("HEAD answers headers only", async () => {
    const r = await fetch(`${base}/debug/memory`, { method: "HEAD" });
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("");
  });

  it("bad options get a 400 with a one-line reason", async () => {
    const cases: Array<[string, RegExp]> = [
      ["format=xml", /^heapstate: format must be one of text, json, prometheus, openmetrics, html, received "xml"\n$/],
      ["tier=full", /^heapstate: tier must be fast, standard or deep, received "full"\n$/],
      ["top=0", /^heapstate: top must be a whole number from 1 to 1000, received "0"\n$/],
      ["top=-3", /top must be a whole number/],
      ["top=3&tier=fast", /^heapstate: top needs the deep tier\n$/],
      ["history=yes", /history must be 0 or 1/],
      ["tier=deep&tier=fast", /^heapstate: tier is given more than once\n$/],
      ["format=json&diff=yesterday,today", /^heapstate: diff must be two sample times from the history/],
      ["format=json&diff=2026-01-01T00:00:00.000Z", /diff must be two sample times/],
      ["diff=2026-01-01T00:00:00.000Z,2026-01-01T00:00:01.000Z", /^heapstate: diff is answered as JSON only/],
    ];
    for (const [q, reason] of cases) {
      const r = await fetch(`${base}/debug/memory?${q}`);
      expect(r.status, q).toBe(400);
      expect(await r.text(), q).toMatch(reason);
    }
  });

  it("other paths go to next(); other methods get 405", async () => {
    expect((await fetch(`${base}/other`)).status).toBe(418);
    const r = await fetch(`${base}/debug/memory`, { method: "PUT" });
    expect(r.status).toBe(405);
    expect(r.headers.get("allow")).toBe("GET, HEAD");
  });

  it("the trim action is off by default: 404", async () => {
    expect((await fetch(`${base}/debug/memory/trim`, { method: "POST" })).status).toBe(404);
  });
});

describe("the history and two moments compared", () => {
  it("history=1 has the findings' episodes; diff=A,B compares two samples the history holds, 404 for one it does not", async () => {
    const sampler = startSampler({ intervalMs: 100, size: 50, tier: "fast" });
    try {
      const base = await serve({ sampler });
      const keep: Buffer[] = [];
      while (sampler.samples().length < 3) {
        keep.push(Buffer.alloc(2 << 20, 1));
        await new Promise((r) => setTimeout(r, 100));
      }
      const body = (await (await fetch(`${base}/debug/memory?format=json&history=1`)).json()) as {
        history: Sample[];
        findingsHistory: unknown[];
      };
      expect(Array.isArray(body.findingsHistory)).toBe(true);
      const [a, , b] = body.history as [Sample, Sample, Sample];
      const r = await fetch(`${base}/debug/memory?format=json&diff=${a.time},${b.time}`);
      expect(r.status).toBe(200);
      const d = (await r.json()) as SampleDiff;
      expect(d.from.time).toBe(a.time);
      expect(d.to.time).toBe(b.time);
      expect(d.elapsedMs).toBe(Date.parse(b.time) - Date.parse(a.time));
      const rss = d.changes.find((c) => c.path === "rssBytes");
      expect(rss).toEqual({
        path: "rssBytes",
        before: a.rssBytes,
        after: b.rssBytes,
        delta: (b.rssBytes ?? 0) - (a.rssBytes ?? 0),
      });
      for (const name of Object.keys(a.parts))
        expect(d.changes.find((c) => c.path === `parts.${name}`)?.before).toBe(a.parts[name]);
      const gone = await fetch(`${base}/debug/memory?format=json&diff=2000-01-01T00:00:00.000Z,${b.time}`);
      expect(gone.status).toBe(404);
      expect(await gone.text()).toMatch(/no sample at 2000-01-01T00:00:00\.000Z in the history/);
      keep.length = 0;
    } finally {
      sampler.stop();
    }
    const off = await serve({ sampler: false });
    const none = await fetch(`${off}/debug/memory?format=json&diff=2026-01-01T00:00:00.000Z,2026-01-01T00:00:01.000Z`);
    expect(none.status).toBe(404);
    expect(await none.text()).toMatch(/sampler: false/);
  });
});

describe("safe by default", () => {
  it("a non-loopback client gets 403; allowRemote answers it", async () => {
    const remote = await serve({}, "203.0.113.9");
    const r = await fetch(`${remote}/debug/memory`);
    expect(r.status).toBe(403);
    expect(await r.text()).toMatch(/only loopback clients/);
    const allowed = await serve({ allowRemote: true }, "203.0.113.9");
    expect((await fetch(`${allowed}/debug/memory`)).status).toBe(200);
  });

  it("a request forwarded for a remote client by a local proxy gets 403 too", async () => {
    const base = await serve();
    expect((await fetch(`${base}/debug/memory`, { headers: { "x-forwarded-for": "198.51.100.7" } })).status).toBe(403);
    expect((await fetch(`${base}/debug/memory`, { headers: { forwarded: 'for="[2001:db8::1]"' } })).status).toBe(403);
    expect((await fetch(`${base}/debug/memory`, { headers: { "x-forwarded-for": "127.0.0.1" } })).status).toBe(200);
  });

  it("isLoopback", () => {
    for (const a of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) expect(isLoopback(a), a).toBe(true);
    for (const a of ["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "", undefined, "localhost"])
      expect(isLoopback(a), String(a)).toBe(false);
  });

  it("paths and environment values only when opted in", async () => {
    const base = await serve({ includePaths: true });
    const s = parseSnapshot(await (await fetch(`${base}/debug/memory?format=json`)).text());
    expect(s.heap?.library).toMatch(/^\/.*libc\.so\.6$/);
  });
});

describe("POST trim, when enabled", () => {
  it("returns before and after in the snapshot shape and what left RSS; GET gets 405", async () => {
    const base = await serve({ trim: true });
    const r = await fetch(`${base}/debug/memory/trim`, {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      before: object;
      after: object;
      releasedBytes: number;
      actions: Array<{ action: string }>;
    };
    expect(parseSnapshot(body.before).schema).toBe("heapstate/3");
    expect(parseSnapshot(body.after).schema).toBe("heapstate/3");
    expect(body.releasedBytes).toEqual(expect.any(Number));
    expect(body.actions.map((a) => a.action)).toEqual(["malloc_trim"]);
    const get = await fetch(`${base}/debug/memory/trim`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
  });
});
