/**
 * createHandler() against what an attacker or a confused client sends: raw request targets that
 * `new URL()` rejects, fuzzed request lines and headers, Host names of a rebound DNS name, proxy
 * headers naming remote clients, cross-site trims. The server runs in a child process, so an
 * exception escaping the handler ends it and the test sees the process gone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { announced, childEnv, dist, fixtures, requireLib } from "../helpers";

interface Server {
  child: ChildProcess;
  port: number;
  exited: () => boolean;
}

const started: Server[] = [];
afterAll(() => {
  for (const s of started) s.child.kill("SIGKILL");
});

async function startServer(
  options: Record<string, unknown> = {},
  env: Record<string, string | undefined> = {},
): Promise<Server> {
  const child = spawn(process.execPath, [join(fixtures, "children", "handler-server.cjs")], {
    env: childEnv({ HEAPSTATE_TEST_DIST: dist, HEAPSTATE_TEST_OPTIONS: JSON.stringify(options), ...env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const { port } = await announced<{ port: number }>(child, "port");
  const server = { child, port, exited: () => exited };
  started.push(server);
  return server;
}

/** Sends raw bytes, half-closes, and returns everything the server wrote before closing. */
function raw(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of answer within ${timeoutMs} ms for ${JSON.stringify(String(request).slice(0, 200))}`));
    }, timeoutMs);
    socket.on("data", (d) => {
      data += d.toString("utf8");
    });
    socket.on("error", () => {
      // a reset after the answer is written is fine; the data so far is the answer
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.end(request);
  });
}

/** The final (non-1xx) status codes of every answer in a raw response stream. */
function statuses(response: string): number[] {
  return [...response.matchAll(/(?:^|\r\n\r\n|\n)HTTP\/1\.[01] (\d{3}) /g)]
    .map((m) => Number(m[1]))
    .filter((s) => s >= 200);
}

function get(path: string, headers: Record<string, string> = {}, method = "GET"): string {
  const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"];
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === "host") lines[1] = `Host: ${v}`;
    else lines.push(`${k}: ${v}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

async function status(port: number, path: string, headers: Record<string, string> = {}, method = "GET") {
  return statuses(await raw(port, get(path, headers, method)))[0];
}

describe("request targets that do not parse", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer({ trim: true });
  });

  it("`//` and its neighbours get an answer, and the process stays up", async () => {
    // `//` made new URL() throw outside any try, and the uncaught exception ended the process.
    const cases: Array<[string, number]> = [
      ["//", 404], // a path (of the server root), not this handler's
      ["///", 404],
      ["//debug/memory", 404], // new URL() read it as host "debug", path "/memory"
      ["//:", 404],
      ["/debug/memory//", 200],
      ["/debug/memory?format=json&format", 400],
      ["/debug/memory?%zz=1", 200], // an unknown parameter, however encoded, is ignored
      ["/debug/memory?format=%zz", 400], // a known one with a value that is not one
      ["/debug/memory?diff=%zz", 400],
      ["/debug/memory#frag", 200],
      ["http://127.0.0.1/debug/memory", 200],
      ["http://[::1/debug/memory", 400],
      ["*", 400],
      ["debug/memory", 400],
    ];
    for (const [target, expected] of cases) {
      const got = await status(server.port, target);
      expect(got, target).toBe(expected);
    }
    expect(server.exited()).toBe(false);
    expect(await status(server.port, "/debug/memory")).toBe(200);
  });

  it("fuzzed request lines and headers: every answer is 2xx or 4xx, and the process stays up", async () => {
    const interesting = [
      "/debug/memory",
      "/debug/memory/trim",
      "//",
      "/debug/memory?format=html",
      "/debug/memory?tier=deep&top=3",
      "/debug/memory?history=1&format=json",
    ];
    const target = fc.oneof(
      fc.constantFrom(...interesting),
      fc.tuple(fc.constantFrom(...interesting), fc.string({ maxLength: 30 })).map(([a, b]) => a + b),
      fc.string({ maxLength: 60 }),
      fc.webUrl(),
      fc
        .array(fc.constantFrom("/", "?", "&", "=", "%", "#", ".", "..", "format", "tier", "x"), { maxLength: 20 })
        .map((p) => p.join("")),
    );
    const headerName = fc.oneof(
      fc.constantFrom(
        "host",
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "origin",
        "sec-fetch-site",
        "content-type",
        "accept",
        "content-length",
        "transfer-encoding",
        "expect",
      ),
      fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/),
    );
    const headerValue = fc.oneof(
      fc.constantFrom("127.0.0.1", "localhost", "[::1]:80", "evil.example", "application/json", "cross-site", "0", ""),
      fc.string({ maxLength: 60 }).map((v) => v.replace(/[\r\n]/g, " ")),
    );
    const request = fc.record({
      method: fc.constantFrom("GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE", "get", "PATCH"),
      target,
      version: fc.constantFrom("HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.1 junk"),
      headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
      body: fc.string({ maxLength: 40 }),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const head = [`${r.method} ${r.target} ${r.version}`, ...r.headers.map(([k, v]) => `${k}: ${v}`)];
        const response = await raw(server.port, `${head.join("\r\n")}\r\n\r\n${r.body}`);
        for (const s of statuses(response)) {
          expect(s >= 200 && s < 500, `${s} for ${JSON.stringify(head)}`).toBe(true);
        }
        expect(server.exited()).toBe(false);
      }),
      { numRuns: 300 },
    );
    expect(await status(server.port, "/debug/memory")).toBe(200);
  }, 120_000);

  it("fuzzed raw bytes: the process stays up and answers afterwards", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const response = await raw(server.port, Buffer.from(bytes));
        for (const s of statuses(response)) expect(s >= 200 && s < 500).toBe(true);
      }),
      { numRuns: 150 },
    );
    expect(server.exited()).toBe(false);
    expect(await status(server.port, "/debug/memory")).toBe(200);
  }, 120_000);
});

describe("who the client is", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer();
  });

  it("any proxy header naming a non-loopback client makes it remote: 403", async () => {
    const remote: Array<[string, string]> = [
      ["X-Forwarded-For", "198.51.100.7"],
      ["X-Forwarded-For", "127.0.0.1, 198.51.100.7"],
      ["X-Forwarded-For", "198.51.100.7:4711"],
      ["X-Forwarded-For", "unknown"],
      ["Forwarded", "for=198.51.100.7"],
      ["Forwarded", "For = 198.51.100.7"],
      ["Forwarded", 'for="[2001:db8::1]:4711"'],
      ["Forwarded", "proto=http;by=127.0.0.1;for=198.51.100.7"],
      ["Forwarded", "for=127.0.0.1, for=198.51.100.7"],
      ["Forwarded", "for=_hidden"],
      ["X-Real-IP", "198.51.100.7"],
      ["True-Client-IP", "198.51.100.7"],
      ["CF-Connecting-IP", "2001:db8::1"],
      ["X-Client-IP", "10.0.0.1"],
      ["Fastly-Client-IP", "198.51.100.7"],
    ];
    for (const [name, value] of remote) {
      expect(await status(server.port, "/debug/memory", { [name]: value }), `${name}: ${value}`).toBe(403);
    }
    const local: Array<[string, string]> = [
      ["X-Forwarded-For", "127.0.0.1"],
      ["X-Forwarded-For", "127.8.9.10, ::1"],
      ["Forwarded", 'for="[::1]:80";proto=http'],
      ["X-Real-IP", "0:0:0:0:0:0:0:1"],
      ["True-Client-IP", "::ffff:127.0.0.1"],
    ];
    for (const [name, value] of local) {
      expect(await status(server.port, "/debug/memory", { [name]: value }), `${name}: ${value}`).toBe(200);
    }
  });

  it("a Host that is not a loopback name is refused with 421 (DNS rebinding); allowedHosts admits one", async () => {
    for (const host of ["localhost", "localhost:9464", "127.0.0.1:1", "[::1]:8080", "LOCALHOST.", "127.1.2.3"]) {
      expect(await status(server.port, "/debug/memory", { Host: host }), host).toBe(200);
    }
    for (const host of [
      "evil.example",
      "evil.example:9464",
      "localhost.evil.example",
      "127.0.0.1.nip.io",
      "[::1",
      "a b",
    ]) {
      expect(await status(server.port, "/debug/memory", { Host: host }), host).toBe(421);
    }
    const listed = await startServer({ allowedHosts: ["metrics.internal"] });
    expect(await status(listed.port, "/debug/memory", { Host: "metrics.internal:9464" })).toBe(200);
    expect(await status(listed.port, "/debug/memory", { Host: "evil.example" })).toBe(421);
  });
});

describe("POST trim only from the same origin", () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer({ trim: true });
  });
  const json = { "Content-Type": "application/json", "Content-Length": "0" };

  it("what a form or a no-cors fetch of another site can send is refused; a JSON POST is answered", async () => {
    const refused: Array<Record<string, string>> = [
      { "Content-Length": "0" },
      { "Content-Type": "text/plain", "Content-Length": "0" },
      { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "0" },
      { "Content-Type": "multipart/form-data; boundary=x", "Content-Length": "0" },
      { ...json, Origin: "http://evil.example" },
      { ...json, Origin: "null" },
      { ...json, "Sec-Fetch-Site": "cross-site" },
      { ...json, "Sec-Fetch-Site": "same-site" },
    ];
    for (const headers of refused) {
      expect(await status(server.port, "/debug/memory/trim", headers, "POST"), JSON.stringify(headers)).toBe(403);
    }
    expect(await status(server.port, "/debug/memory/trim", json, "POST")).toBe(200);
    expect(await status(server.port, "/debug/memory/trim", { ...json, Origin: "http://127.0.0.1" }, "POST")).toBe(200);
    expect(await status(server.port, "/debug/memory/trim", { ...json, "Sec-Fetch-Site": "same-origin" }, "POST")).toBe(
      200,
    );
  });
});

describe("redaction on every face", () => {
  const secretDir = "/nonexistent-s3cretdir";
  /** Everything a default handler answers, of every face, from a child set up to leak. */
  async function everyAnswer(port: number): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    const json = { "Content-Type": "application/json", "Content-Length": "0" };
    for (const path of [
      "/debug/memory",
      "/debug/memory?tier=deep",
      "/debug/memory?tier=fast",
      "/debug/memory?format=json",
      "/debug/memory?format=json&tier=deep&top=50",
      "/debug/memory?format=json&history=1",
      "/debug/memory?format=prometheus",
      "/debug/memory?format=html",
      "/log",
      "/debug/memory/trim",
    ]) {
      const isTrim = path.endsWith("/trim");
      const answer = await raw(port, get(path, isTrim ? json : {}, isTrim ? "POST" : "GET"));
      expect(statuses(answer), path).toEqual([200]);
      out.push([path, answer]);
    }
    return out;
  }

  function expectNothingLeaks(answers: Array<[string, string]>, cgroupPath: string | undefined): void {
    const absolute =
      /(?<![\w.…])\/(?:usr|lib|lib64|proc|sys|etc|home|root|tmp|work|opt|var|dev|run|bin|sbin|srv|mnt|nix|snap|app)\b/;
    for (const [path, answer] of answers) {
      expect(answer, path).not.toMatch(absolute);
      expect(answer, path).not.toContain(secretDir.slice(1));
      expect(answer, path).not.toMatch(/0x[0-9a-f]{6,}|\b[0-9a-f]{8,16}-[0-9a-f]{8,16}\b/i);
      expect(answer, path).not.toContain(process.execPath);
      if (cgroupPath && cgroupPath !== "/") {
        expect(answer, path).not.toContain(cgroupPath);
        for (const part of cgroupPath.split("/").filter((p) => p.length >= 8)) expect(answer, path).not.toContain(part);
      }
    }
  }

  function memoryCgroup(pid: number): string | undefined {
    const text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    return (/^\d+:memory:(.*)$/m.exec(text) ?? /^0::(.*)$/m.exec(text))?.[1];
  }

  it("jemalloc preloaded, the sampler running: no path, address, environment value or cgroup path", async () => {
    const server = await startServer(
      { trim: true, sampler: { intervalMs: 100, size: 10 } },
      { LD_PRELOAD: requireLib("jemalloc") },
    );
    // The sampler has read a few times (it starts on the first request that needs it).
    await vi.waitFor(
      async () => {
        const answer = await raw(server.port, get("/debug/memory?format=json&history=1"));
        const history = (JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { history: unknown[] }).history;
        expect(history.length).toBeGreaterThanOrEqual(3);
      },
      { timeout: 20_000, interval: 100 },
    );
    const answers = await everyAnswer(server.port);
    expect(answers.find(([p]) => p === "/debug/memory/trim")?.[1]).toContain('"library": "libjemalloc.so.2"');
    expectNothingLeaks(answers, memoryCgroup(server.child.pid as number));
  });

  it("a preload that failed and an addon that is missing: the warnings and findings name no path", async () => {
    const server = await startServer(
      { trim: true },
      { LD_PRELOAD: `${secretDir}/libjemalloc.so.2`, HEAPSTATE_BINDING: `${secretDir}/heapstate.node` },
    );
    const answers = await everyAnswer(server.port);
    const text = answers[0]?.[1] ?? "";
    expect(text).toContain("preload-not-serving-malloc");
    expect(text).toContain("…/heapstate.node");
    expectNothingLeaks(answers, memoryCgroup(server.child.pid as number));
  });

  it("with includePaths and includeEnvironment, the same answers do name them (the scan can fail)", async () => {
    const server = await startServer(
      { trim: true, includePaths: true, includeEnvironment: true },
      { LD_PRELOAD: `${secretDir}/libjemalloc.so.2` },
    );
    const answer = await raw(server.port, get("/debug/memory?format=json"));
    expect(answer).toContain(secretDir);
    expect(answer).toMatch(/"library": "\/.*libc\.so\.6"/);
  });
});

describe("native allocation sites over HTTP (?sites=N)", () => {
  it("a deep reading with the N largest sites, unnamed frames' addresses hidden; a bad count or tier is a 400", async () => {
    const s = await startServer({}, { LD_PRELOAD: requireLib("jemalloc"), MALLOC_CONF: "prof:true,lg_prof_sample:19" });
    const base = `http://127.0.0.1:${s.port}/debug/memory`;
    const r = await fetch(`${base}?sites=2&format=json`);
    expect(r.status).toBe(200);
    const snap = (await r.json()) as {
      tier: string;
      nativeSites?: { sites: Array<{ frames: Array<{ symbol?: string; address?: string }> }> };
    };
    expect(snap.tier).toBe("deep");
    expect(snap.nativeSites?.sites.length).toBeGreaterThan(0);
    expect(snap.nativeSites?.sites.length).toBeLessThanOrEqual(2);
    for (const site of snap.nativeSites?.sites ?? [])
      for (const f of site.frames) if (f.address !== undefined) expect(f.address).toBe("(hidden)");
    const text = await (await fetch(`${base}?sites`)).text();
    expect(text).toMatch(/native heap by allocation site \(jemalloc prof\.dump/);
    for (const [q, why] of [
      ["sites=0", /sites must be a whole number from 1 to 1000/],
      ["sites=x", /sites must be a whole number/],
      ["sites=3&tier=fast", /sites needs the deep tier/],
    ] as const) {
      const bad = await fetch(`${base}?${q}`);
      expect(bad.status, q).toBe(400);
      expect(await bad.text(), q).toMatch(why);
    }
  });
});
