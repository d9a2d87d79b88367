// The observer's own weight: what loading heapstate and its faces adds to a process (each row a
// fresh process, the median of several), what one reading allocates on V8's heap, and what a
// service answering HTTP load pays when Prometheus-style scrapes and the sampler run beside it.
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (n, d = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : undefined);

// A child that measures VmRSS and RssAnon (after a full GC) before and after each step.
// "service": before measuring, the process serves and fetches 200 requests and works JSON, as a
// running service has: Node's own code it touches is then resident already, as it is in production.
const footprintChild = (root) => `
const { readFileSync } = require("node:fs");
const kib = (k) => Number(new RegExp("^" + k + ":\\\\s+(\\\\d+)", "m").exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN);
const [context, ...steps] = JSON.parse(process.argv[1]);
const dist = ${JSON.stringify(join(root, "dist"))};
const run = async () => {
  if (context === "service") {
    const http = require("node:http");
    const server = http.createServer((req, res) => res.end(JSON.stringify({ ok: true, url: req.url, at: Date.now() })));
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const url = "http://127.0.0.1:" + server.address().port + "/";
    for (let i = 0; i < 200; i++) JSON.parse(await (await fetch(url + i)).text());
    server.close();
  }
  if (context === "prom-client") require("prom-client");
  // Settle first: V8 gives back the pages of what the context left behind over several
  // collections; measured before that, a step would be credited with the context's shrinking.
  for (let i = 0, last = -1; i < 20; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 50));
    const now = kib("VmRSS");
    if (Math.abs(now - last) < 64) break;
    last = now;
  }
  let h;
  const out = [];
  for (const step of steps) {
    global.gc();
    const before = { rss: kib("VmRSS"), anon: kib("RssAnon") };
    if (step === "require") h = require(dist + "/index.js");
    else if (step === "fast") h.collect({ tier: "fast" });
    else if (step === "standard") h.collect({ tier: "standard" });
    else if (step === "handler") h.createHandler({ sampler: false });
    else if (step === "sampler") h.startSampler({ intervalMs: 3600000, tier: "fast" }).stop();
    else if (step === "prometheus") {
      const client = require("prom-client");
      require(dist + "/faces/metrics/prometheus.js").registerPrometheus({ registry: new client.Registry() });
    } else if (step === "prom-client") require("prom-client");
    global.gc();
    out.push({ step, rssKiB: kib("VmRSS") - before.rss, anonKiB: kib("RssAnon") - before.anon });
  }
  const loaded = Object.keys(require.cache).filter((f) => f.startsWith(dist)).length;
  const addon = readFileSync("/proc/self/maps", "utf8").includes("heapstate.node");
  console.log(JSON.stringify({ steps: out, distModules: loaded, addonLoaded: addon }));
};
run().then(() => process.exit(0));
`;

/** Each step's RSS and anonymous growth in MiB, the median over `runs` fresh processes. */
export function footprint(root, context, steps, runs) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const text = execFileSync(
      process.execPath,
      ["--expose-gc", "-e", footprintChild(root), JSON.stringify([context, ...steps])],
      {
        encoding: "utf8",
        cwd: root,
      },
    );
    results.push(JSON.parse(text));
  }
  return {
    context,
    steps: steps.map((step, k) => ({
      step,
      rssMiB: round(median(results.map((r) => r.steps[k].rssKiB)) / 1024),
      anonMiB: round(median(results.map((r) => r.steps[k].anonKiB)) / 1024),
    })),
    distModules: results[0].distModules,
    addonLoaded: results[0].addonLoaded,
  };
}

// V8 bytes allocated per reading: used_heap_size before and after N readings with a young
// generation large enough that no collection runs between them (checked: a run with a GC is
// reported as invalid rather than as a smaller number).
const allocationChild = (root) => `
const v8 = require("node:v8");
const { PerformanceObserver } = require("node:perf_hooks");
const h = require(${JSON.stringify(join(root, "dist", "index.js"))});
const [tier, n] = JSON.parse(process.argv[1]);
for (let i = 0; i < 300; i++) h.collect({ tier });
global.gc();
let gcs = 0;
const obs = new PerformanceObserver((l) => { gcs += l.getEntries().length; });
obs.observe({ entryTypes: ["gc"] });
const a = v8.getHeapStatistics().used_heap_size;
for (let i = 0; i < n; i++) h.collect({ tier });
const b = v8.getHeapStatistics().used_heap_size;
setTimeout(() => {
  // The collections during the readings are delivered by now; the ones below are not counted.
  obs.disconnect();
  const gcsDuring = gcs;
  // What a reading itself holds once built: 1000 of them kept, after a full collection.
  global.gc();
  const c = v8.getHeapStatistics().used_heap_size;
  const kept = [];
  for (let i = 0; i < 1000; i++) kept.push(h.collect({ tier }));
  global.gc();
  const keptBytesPerReading = (v8.getHeapStatistics().used_heap_size - c) / kept.length;
  console.log(JSON.stringify({ bytesPerReading: (b - a) / n, keptBytesPerReading, gcs: gcsDuring }));
}, 50);
`;

export function allocationPerReading(root, tier, n) {
  const r = JSON.parse(
    execFileSync(
      process.execPath,
      [
        "--expose-gc",
        "--min-semi-space-size=512",
        "--max-semi-space-size=512",
        "-e",
        allocationChild(root),
        JSON.stringify([tier, n]),
      ],
      { encoding: "utf8", cwd: root },
    ),
  );
  return {
    tier,
    readings: n,
    bytesPerReading: r.gcs === 0 ? Math.round(r.bytesPerReading) : undefined,
    keptBytesPerReading: Math.round(r.keptBytesPerReading),
    gcsDuring: r.gcs,
  };
}

// ---------------------------------------------------------------------------------------------
// A service under HTTP load: a child serving small JSON answers (with heapstate's handler on
// /debug/memory when asked), a keep-alive load generator here, and with heapstate one scrape per
// second of ?format=prometheus while a sampler reads every 2 s. The service's CPU (its own
// process.cpuUsage) and the requests' p99 latency are compared with and without.
const serviceChild = (root) => `
const http = require("node:http");
const withHeapstate = process.argv[1] === "1";
let handler;
if (withHeapstate) {
  const h = require(${JSON.stringify(join(root, "dist", "index.js"))});
  handler = h.createHandler({ sampler: { intervalMs: 2000 } });
}
const server = http.createServer((req, res) => {
  if (handler && req.url.startsWith("/debug/memory")) return handler(req, res);
  const body = JSON.stringify({ id: req.url.length, items: Array.from({ length: 20 }, (_, i) => ({ i, name: "item" + i })) });
  res.writeHead(200, { "content-type": "application/json" }).end(body);
});
server.listen(0, "127.0.0.1", () => process.stdout.write(JSON.stringify({ port: server.address().port }) + "\\n"));
let asked = 0;
process.stdin.on("data", () => {
  const u = process.cpuUsage();
  const rssBytes = process.memoryUsage.rss();
  // Under heapstate's glibc sampler, at the window's end: its tables' resident bytes, as it counts
  // them (mincore), read after the RSS (loading the addon to ask is not in any RSS figure).
  let samplerBytes;
  if (++asked === 2 && (process.env.LD_PRELOAD ?? "").includes("heapstate-sampler")) {
    const tables = require(${JSON.stringify(join(root, "dist", "core", "addon", "native.js"))}).native()?.samplerStats?.()?.[4];
    // Its code's resident pages, from smaps (the file's mappings).
    let code = 0, ours = false;
    for (const line of require("node:fs").readFileSync("/proc/self/smaps", "utf8").split("\\n")) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) ours = line.includes("libheapstate-sampler");
      else if (ours && line.startsWith("Rss:")) code += Number(line.split(/\\s+/)[1]) * 1024;
    }
    if (tables !== undefined) samplerBytes = tables + code;
  }
  process.stdout.write(JSON.stringify({ cpuUs: u.user + u.system, rssBytes, samplerBytes }) + "\\n");
});
process.stdin.on("end", () => process.exit(0));
`;

async function lines(stream) {
  const it = stream[Symbol.asyncIterator]();
  let buffer = "";
  return async () => {
    for (;;) {
      const nl = buffer.indexOf("\n");
      if (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        return JSON.parse(line);
      }
      const { value, done } = await it.next();
      if (done) throw new Error("the service ended");
      buffer += value;
    }
  };
}

function get(agent, port, path) {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end();
  });
}

/** One run: `seconds` of `rate` requests per second over `concurrency` connections, with or without heapstate. */
async function serviceRun(root, withHeapstate, seconds, concurrency, rate, env = {}) {
  const child = spawn(process.execPath, ["-e", serviceChild(root), withHeapstate ? "1" : "0"], {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  child.stdout.setEncoding("utf8");
  const next = await lines(child.stdout);
  const { port } = await next();
  const { Agent } = await import("node:http");
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  // Warm-up, then the measured window.
  for (let i = 0; i < 200; i++) await get(agent, port, "/warm");
  // A running service has been scraped before: the first scrape's loading is not in the window.
  if (withHeapstate) for (let i = 0; i < 3; i++) await get(new Agent(), port, "/debug/memory?format=prometheus");
  child.stdin.write("x\n");
  const cpuStart = (await next()).cpuUs;
  const latencies = [];
  const end = Date.now() + seconds * 1000;
  let scrapes = 0;
  const scraper = withHeapstate
    ? setInterval(() => {
        scrapes++;
        get(new Agent(), port, "/debug/memory?format=prometheus").catch(() => {});
      }, 1000)
    : undefined;
  // A fixed rate (open loop, as traffic arrives), so that the CPU of the two runs compares and the
  // latency is each request's own, not a queue the generator builds.
  const gapMs = (concurrency * 1000) / rate;
  const worker = async (k) => {
    let due = Date.now() + (k * gapMs) / concurrency;
    while (due < end) {
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = process.hrtime.bigint();
      await get(agent, port, "/api");
      latencies.push(Number(process.hrtime.bigint() - t) / 1000);
      due += gapMs;
    }
  };
  const wallStart = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, (_, k) => worker(k)));
  const wallUs = Number(process.hrtime.bigint() - wallStart) / 1000;
  if (scraper) clearInterval(scraper);
  child.stdin.write("x\n");
  const { cpuUs: cpuEnd, rssBytes, samplerBytes } = await next();
  child.stdin.end();
  await once(child, "exit");
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    p50Us: Math.round(latencies[Math.floor(latencies.length * 0.5)]),
    p99Us: Math.round(latencies[Math.floor(latencies.length * 0.99)]),
    cpuPercentOfCore: round(((cpuEnd - cpuStart) / wallUs) * 100),
    rssMiB: round(rssBytes / 1024 / 1024, 1),
    ...(samplerBytes !== undefined ? { samplerKiB: round(samplerBytes / 1024, 1) } : {}),
    scrapes,
  };
}

/**
 * What leaving the allocator's sampling on costs the same service (no heapstate in it): jemalloc
 * preloaded as is, against jemalloc with its profile sampling one allocation per 512 KiB
 * (MALLOC_CONF=prof:true,lg_prof_sample:19), alternating, the median of each side; CPU as a share
 * of one core and RSS at the end of the window.
 */
export async function samplingCost(
  root,
  { runs, seconds, concurrency, rate },
  // jemalloc with and without its sampled profile by default; the glibc sampler passes its own.
  plainEnv = { LD_PRELOAD: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2" },
  sampledEnv = { LD_PRELOAD: "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", MALLOC_CONF: "prof:true,lg_prof_sample:19" },
) {
  const plain = [];
  const sampled = [];
  for (let i = 0; i < runs; i++) {
    plain.push(await serviceRun(root, false, seconds, concurrency, rate, plainEnv));
    sampled.push(await serviceRun(root, false, seconds, concurrency, rate, sampledEnv));
  }
  const m = (rows, k) => median(rows.map((r) => r[k]));
  return {
    seconds,
    concurrency,
    rate,
    runs,
    plain: { cpuPercentOfCore: m(plain, "cpuPercentOfCore"), rssMiB: m(plain, "rssMiB"), p99Us: m(plain, "p99Us") },
    sampled: {
      cpuPercentOfCore: m(sampled, "cpuPercentOfCore"),
      rssMiB: m(sampled, "rssMiB"),
      p99Us: m(sampled, "p99Us"),
      // The glibc sampler's own tables (it counts them) and code (smaps), resident at the end: what
      // it adds to RSS, without the runs' noise.
      ...(sampled.every((r) => r.samplerKiB !== undefined) ? { samplerKiB: m(sampled, "samplerKiB") } : {}),
    },
    addedCpuPercentOfCore: round(m(sampled, "cpuPercentOfCore") - m(plain, "cpuPercentOfCore")),
    addedRssPercent: round(((m(sampled, "rssMiB") - m(plain, "rssMiB")) / m(plain, "rssMiB")) * 100),
    rssSpreadPlainMiB: round(Math.max(...plain.map((r) => r.rssMiB)) - Math.min(...plain.map((r) => r.rssMiB)), 1),
    cpuSpreadPlain: round(
      Math.max(...plain.map((r) => r.cpuPercentOfCore)) - Math.min(...plain.map((r) => r.cpuPercentOfCore)),
    ),
  };
}

/**
 * Alternating runs without and with heapstate (so drift in the machine falls on both), the median
 * of each side; the added CPU is the service's CPU with heapstate less without, as a share of one
 * core, and the p99 change is reported with the spread of the runs without (what "no measurable
 * change" is measured against).
 */
export async function underLoad(root, { runs, seconds, concurrency, rate }) {
  const without = [];
  const withIt = [];
  for (let i = 0; i < runs; i++) {
    without.push(await serviceRun(root, false, seconds, concurrency, rate));
    withIt.push(await serviceRun(root, true, seconds, concurrency, rate));
  }
  const m = (rows, k) => median(rows.map((r) => r[k]));
  const p99s = without.map((r) => r.p99Us);
  return {
    seconds,
    concurrency,
    rate,
    runs,
    without: {
      p99Us: m(without, "p99Us"),
      p50Us: m(without, "p50Us"),
      cpuPercentOfCore: m(without, "cpuPercentOfCore"),
      requests: m(without, "requests"),
    },
    with: {
      p99Us: m(withIt, "p99Us"),
      p50Us: m(withIt, "p50Us"),
      cpuPercentOfCore: m(withIt, "cpuPercentOfCore"),
      requests: m(withIt, "requests"),
      scrapes: m(withIt, "scrapes"),
    },
    addedCpuPercentOfCore: round(m(withIt, "cpuPercentOfCore") - m(without, "cpuPercentOfCore")),
    p99ChangeUs: m(withIt, "p99Us") - m(without, "p99Us"),
    p99SpreadWithoutUs: Math.max(...p99s) - Math.min(...p99s),
    // What "no measurable change" in CPU is measured against, as for the p99.
    cpuSpreadWithout: round(
      Math.max(...without.map((r) => r.cpuPercentOfCore)) - Math.min(...without.map((r) => r.cpuPercentOfCore)),
    ),
  };
}

/**
 * The glibc sampler's own instructions per malloc/free pair, counted by callgrind (deterministic,
 * where a wall-clock difference of a few nanoseconds is noise): a C loop of `pairs` malloc(64) and
 * free pairs, run without the sampler and with it preloaded at its default rate; the difference in
 * instructions, per pair. valgrind serves malloc itself beneath both (nouserintercepts keeps the
 * sampler's functions running under it).
 */
export function samplerInstructions(root, pairs = 1_000_000) {
  const dir = mkdtempSync(join(tmpdir(), "heapstate-sampler-ir-"));
  try {
    const src = join(dir, "pairs.c");
    writeFileSync(
      src,
      `#include <stdlib.h>
int main(int argc, char** argv) {
  long n = atol(argv[1]);
  for (long i = 0; i < n; i++) { void* volatile p = malloc(64); free(p); }
  return 0;
}
`,
    );
    const exe = join(dir, "pairs");
    execFileSync("cc", ["-O2", "-fno-builtin", "-o", exe, src]);
    const sampler = join(root, "build", "Release", "libheapstate-sampler.so");
    const count = (preload, n) => {
      const out = join(dir, `cg.${preload ? "s" : "p"}.${n}`);
      execFileSync(
        "valgrind",
        [
          "--tool=callgrind",
          `--callgrind-out-file=${out}`,
          "--soname-synonyms=somalloc=nouserintercepts",
          exe,
          String(n),
        ],
        { env: { ...process.env, ...(preload ? { LD_PRELOAD: sampler } : {}) }, stdio: "ignore" },
      );
      return Number(/^summary:\s+(\d+)/m.exec(readFileSync(out, "utf8"))?.[1]);
    };
    // Two loop lengths each way: the start-up's instructions fall out of the difference.
    const per = (preload) => (count(preload, pairs) - count(preload, pairs / 10)) / (pairs - pairs / 10);
    const plain = per(false);
    const sampled = per(true);
    return {
      pairs,
      plainPerPair: round(plain, 1),
      sampledPerPair: round(sampled, 1),
      addedPerPair: round(sampled - plain, 1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
