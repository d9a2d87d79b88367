#!/usr/bin/env node
// heapstate's benchmarks: its cost against the kernel's floor (bench/floor.c) and against the
// peers, measured side by side in one run, as ratios. `npm run bench` writes bench/results.json and
// bench/results.md; `npm run bench -- --smoke` is a short run that checks everything still works
// (CI), written to .artifacts/.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, release } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getHeapStatistics } from "node:v8";
import { Bench } from "tinybench";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const smoke = process.argv.includes("--smoke");
if (typeof global.gc !== "function") {
  console.error("bench: run with node --expose-gc (npm run bench does)");
  process.exit(2);
}
const h = require(join(root, "dist", "index.js"));
const { prometheusText } = require(join(root, "dist", "prometheus.js"));
const { forEachMapping, SmapsParser } = require(join(root, "dist", "procfs", "smaps.js"));
const { streamProcFile } = require(join(root, "dist", "procfs", "read.js"));
const { RegionAccumulator } = require(join(root, "dist", "regions.js"));
const MiB = 1024 * 1024;

const log = (s) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------
// The floor program.
const buildDir = join(root, "bench", ".build");
mkdirSync(buildDir, { recursive: true });
const floorBin = join(buildDir, "floor");
execFileSync("cc", ["-O2", "-Wall", "-o", floorBin, join(root, "bench", "floor.c"), "-ldl", "-lpthread"], {
  stdio: "inherit",
});
const floor = (args, env = {}) =>
  JSON.parse(execFileSync(floorBin, args.map(String), { encoding: "utf8", env: { ...process.env, ...env } }));

const us = (ns) => ns / 1000;
const round = (n, d = 1) => (n === undefined || !Number.isFinite(n) ? undefined : Math.round(n * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------------------------------------
// In-process measurements with tinybench: median and p99 in µs.
async function measure(tasks, { time = smoke ? 60 : 1000, iterations = smoke ? 20 : 200 } = {}) {
  const bench = new Bench({ time, iterations, warmupTime: smoke ? 20 : 200, warmupIterations: smoke ? 5 : 50 });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  const out = {};
  for (const t of bench.tasks) {
    const l = t.result?.latency;
    out[t.name] = l
      ? { medianUs: round(l.p50 * 1000, 2), p99Us: round(l.p99 * 1000, 2), samples: l.samplesCount }
      : { error: String(t.result?.error ?? t.result?.state) };
  }
  return out;
}

function medianOf(values) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

/** Median wall time of a whole command, in ms. */
function commandMs(cmd, args, runs, options = {}) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: "ignore", ...options });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return round(medianOf(times), 2);
}

// ---------------------------------------------------------------------------------------------
const results = {
  machine: {
    node: process.version,
    v8: process.versions.v8,
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    libc: h.hostInfo().libc,
    date: new Date().toISOString(),
    smoke,
  },
};
log(
  `heapstate bench${smoke ? " (smoke)" : ""}: ${results.machine.cpuModel}, ${results.machine.cpus} CPUs, Node ${process.version}, kernel ${release()}`,
);

// The files heapstate reads, for this process (a first reading opens them).
h.collect({ tier: "deep" });
const cgroupDir = (() => {
  const cg = readFileSync("/proc/self/cgroup", "utf8");
  const v1 = /^\d+:memory:(.*)$/m.exec(cg);
  if (v1) return { v: 1, dir: `/sys/fs/cgroup/memory${v1[1]}` };
  const v2 = /^0::(.*)$/m.exec(cg);
  return v2 ? { v: 2, dir: `/sys/fs/cgroup${v2[1]}` } : undefined;
})();
const cgroupFiles = cgroupDir
  ? cgroupDir.v === 1
    ? ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control"]
    : ["memory.current", "memory.max", "memory.high", "memory.peak", "memory.events"]
  : [];
const pid = process.pid;
log("floor…");
const fileFloor = floor([
  "files",
  smoke ? 200 : 3000,
  `/proc/${pid}/status`,
  `/proc/${pid}/statm`,
  `/proc/${pid}/smaps_rollup`,
  `/proc/${pid}/smaps`,
  ...cgroupFiles.map((f) => `${cgroupDir.dir}/${f}`),
]);
const mi2Floor = floor(["mallinfo2", smoke ? 200 : 3000]).mallinfo2;
const floorUs = (path) => (fileFloor[path] ? us(fileFloor[path].medianNs) : undefined);
const floorP99Us = (path) => (fileFloor[path] ? us(fileFloor[path].p99Ns) : undefined);
results.floor = Object.fromEntries(
  Object.entries(fileFloor).map(([k, v]) => [
    k.replace(String(pid), "<pid>"),
    v && { medianUs: round(us(v.medianNs), 2), p99Us: round(us(v.p99Ns), 2), bytes: v.bytes },
  ]),
);
results.floor.mallinfo2 = {
  medianUs: round(us(mi2Floor.medianNs), 2),
  p99Us: round(us(mi2Floor.p99Ns), 2),
  note: "the floor program's own small heap",
};

log("heapstate and peers…");
const client = require("prom-client");
const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
const { procfs } = require("@stroncium/procfs");
const pidusage = require("pidusage");
const si = require("systeminformation");
const s1 = h.collect();
const s2 = h.collect();
const inProcess = await measure([
  ["heapstate collect fast", () => h.collect({ tier: "fast" })],
  ["heapstate collect standard", () => h.collect({ tier: "standard" })],
  ["heapstate collect deep", () => h.collect({ tier: "deep" })],
  ["heapstate snapshot cached", () => h.snapshot({ maxAgeMs: 3_600_000 })],
  ["heapstate snapshot uncached", () => h.snapshot({ maxAgeMs: 0 })],
  ["heapstate formatHuman", () => h.formatHuman(s1)],
  ["heapstate diff", () => h.diff(s1, s2)],
  ["heapstate prometheusText", () => prometheusText(s1)],
  ["process.memoryUsage()", () => process.memoryUsage()],
  ["process.memoryUsage.rss()", () => process.memoryUsage.rss()],
  ["v8.getHeapStatistics()", () => getHeapStatistics()],
  ["prom-client default metrics (register.metrics())", () => registry.metrics()],
  ["@stroncium/procfs processStatus (status parse)", () => procfs.processStatus(pid)],
  ["pidusage (own pid)", () => pidusage(pid)],
]);
// trim() walks and releases: a few runs only.
Object.assign(
  inProcess,
  await measure([["heapstate trim", () => h.trim()]], { time: smoke ? 20 : 300, iterations: smoke ? 3 : 20 }),
);
Object.assign(
  inProcess,
  await measure([["systeminformation processLoad('node')", () => si.processLoad("node")]], {
    time: smoke ? 50 : 1000,
    iterations: smoke ? 2 : 10,
  }),
);
results.inProcess = inProcess;

results.commands = {
  "node -e 0 (baseline)": commandMs(process.execPath, ["-e", "0"], smoke ? 2 : 10),
  "heapstate show-host --tier fast": commandMs(
    process.execPath,
    [join(root, "bin", "heapstate.js"), "--tier", "fast"],
    smoke ? 2 : 10,
  ),
  "heapstate show-host (standard)": commandMs(process.execPath, [join(root, "bin", "heapstate.js")], smoke ? 2 : 10),
  "pmap -X <this pid>": commandMs("pmap", ["-X", String(pid)], smoke ? 2 : 10),
};

// ---------------------------------------------------------------------------------------------
log("scaling: smaps by regions…");
async function withMaps(regions, fn) {
  const child = spawn(floorBin, ["maps", String(regions)], { stdio: ["pipe", "pipe", "inherit"] });
  await new Promise((resolve, reject) => {
    child.stdout.once("data", resolve);
    child.once("exit", (code) => reject(new Error(`floor maps ${regions} exited with ${code} before it was ready`)));
  });
  try {
    return await fn(child.pid);
  } finally {
    child.stdin.end();
    await new Promise((r) => child.once("exit", r));
  }
}
results.smapsScaling = [];
for (const regions of smoke ? [1000] : [1000, 10000, 50000]) {
  const row = await withMaps(regions, async (child) => {
    const path = `/proc/${child}/smaps`;
    const f = floor(["files", smoke ? 3 : 20, path])[path];
    const text = readFileSync(path, "utf8");
    // The deep tier's own path: smaps streamed by 64 KiB chunks into the region sums.
    const stream = () => {
      const acc = new RegionAccumulator(false);
      const parser = new SmapsParser((x) => acc.push(x));
      streamProcFile("/proc", child, "smaps", (c) => parser.write(c));
      parser.end();
      return acc.finish();
    };
    const parsed = await measure(
      [
        ["read", () => readFileSync(path, "utf8")],
        [
          "parse",
          () => {
            const acc = new RegionAccumulator(false);
            forEachMapping(text, (x) => acc.push(x));
            return acc.finish();
          },
        ],
        ["read+parse", stream],
      ],
      { time: smoke ? 50 : 500, iterations: smoke ? 3 : 10 },
    );
    // What a streamed read keeps: the JS heap after it, against before it (both after a full GC).
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const regionsOut = stream();
    global.gc?.();
    const heapKept = process.memoryUsage().heapUsed - heapBefore;
    return {
      regions,
      mappingsSeen: regionsOut.reduce((n, r) => n + r.count, 0),
      smapsBytes: text.length,
      readFloorUs: round(us(f.medianNs), 0),
      readUs: parsed.read.medianUs,
      parseUs: parsed.parse.medianUs,
      readParseUs: parsed["read+parse"].medianUs,
      parseMBs: round(text.length / parsed.parse.medianUs, 0),
      readParseOverFloor: round(parsed["read+parse"].medianUs / us(f.medianNs), 2),
      pmapMs: commandMs("pmap", ["-X", String(child)], smoke ? 1 : 3),
      heapKeptKiB: round(heapKept / 1024, 0),
    };
  });
  row.pmapOverHeapstate = round((row.pmapMs * 1000) / row.readParseUs, 1);
  results.smapsScaling.push(row);
}

log("scaling: smaps_rollup by RSS…");
results.rollupScaling = [];
let held = [];
for (const mib of smoke ? [0, 64] : [0, 256, 1024]) {
  held = [];
  for (let i = 0; i < mib / 64; i++) held.push(Buffer.allocUnsafe(64 * MiB).fill(1));
  const f = floor(["files", smoke ? 20 : 200, `/proc/${pid}/smaps_rollup`])[`/proc/${pid}/smaps_rollup`];
  const m = await measure(
    [
      ["fast", () => h.collect({ tier: "fast" })],
      ["standard", () => h.collect({ tier: "standard" })],
    ],
    { time: smoke ? 50 : 500, iterations: smoke ? 5 : 30 },
  );
  results.rollupScaling.push({
    heldMiB: mib,
    rssMiB: round(h.collect({ tier: "fast" }).process.rssBytes / MiB, 0),
    rollupFloorUs: round(us(f.medianNs), 0),
    fastUs: m.fast.medianUs,
    standardUs: m.standard.medianUs,
    standardOverFloorPlusFast: round(m.standard.medianUs / (us(f.medianNs) + m.fast.medianUs), 2),
  });
}
held = [];
const big = results.rollupScaling.at(-1);
const small = results.rollupScaling[0];
results.rollupMsPerGiB = round(
  (big.rollupFloorUs - small.rollupFloorUs) / 1000 / ((big.rssMiB - small.rssMiB) / 1024),
  2,
);

log("scaling: glibc's walk by free chunks…");
results.glibcScaling = [];
for (const chunks of smoke ? [10000] : [10000, 100000, 1000000]) {
  const own = floor(["glibc-stall", chunks]);
  const shared = floor(["glibc-stall", chunks], { MALLOC_ARENA_MAX: "1" });
  results.glibcScaling.push({
    freeChunks: own.chunks / 2,
    mallinfo2Ms: round(own.mallinfo2MedianNs / 1e6, 2),
    worstStallOtherArenaUs: round(own.worstOtherThreadNs / 1000, 0),
    worstStallSharedArenaUs: round(shared.worstOtherThreadNs / 1000, 0),
  });
}
const worstWalk = results.glibcScaling.at(-1);
// The back-off: a walk of ≥ 1 ms is repeated at most every max(10 s, cost ÷ 1%).
const intervalMs = Math.max(10_000, worstWalk.mallinfo2Ms / 0.01);
results.glibcBackoff = {
  walkMs: worstWalk.mallinfo2Ms,
  repeatedEveryMs: intervalMs,
  samplerAt1HzShareOfCorePercent: round((worstWalk.mallinfo2Ms / intervalMs) * 100, 3),
};

log("scaling: jemalloc epoch by arenas…");
results.jemallocScaling = [];
const jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
for (const threads of smoke ? [1] : [1, 8, 64]) {
  try {
    const r = floor(["je-epoch", threads, smoke ? 100 : 2000], { LD_PRELOAD: jemalloc });
    results.jemallocScaling.push({
      threads,
      narenas: r.narenas,
      epochAnd6ReadsUs: round(us(r.medianNs), 1),
      p99Us: round(us(r.p99Ns), 1),
    });
  } catch (error) {
    results.jemallocScaling.push({ threads, error: String(error.message).split("\n")[0] });
  }
}

log("footprint…");
const footprintScript = `
const { readFileSync } = require("node:fs");
const kb = (k) => Number(readFileSync("/proc/self/status", "utf8").split("\\n").find((l) => l.startsWith(k + ":")).split(/ +|\\t/).filter(Boolean)[1]) * 1024;
global.gc(); const rss0 = kb("VmRSS"), anon0 = kb("RssAnon");
const h = require(${JSON.stringify(join(root, "dist", "index.js"))});
h.collect(); h.collect({ tier: "deep" });
global.gc(); const rss1 = kb("VmRSS"), anon1 = kb("RssAnon");
for (let i = 0; i < ${smoke ? 2000 : 20000}; i++) h.collect({ tier: "fast" });
const live = () => { global.gc(); const s = h.collect({ tier: "fast" }); return { rss: s.process.rssBytes, malloc: s.heap.allocatedBytes, v8: s.v8.heapUsedBytes }; };
const a = live();
for (let i = 0; i < ${smoke ? 5000 : 100000}; i++) h.collect({ tier: "fast" });
const b = live();
console.log(JSON.stringify({ loadMiB: (rss1 - rss0) / 1048576, loadAnonMiB: (anon1 - anon0) / 1048576, collects: ${smoke ? 5000 : 100000},
  rssGrowthMiB: (b.rss - a.rss) / 1048576, mallocGrowthKiB: (b.malloc - a.malloc) / 1024, v8UsedGrowthKiB: (b.v8 - a.v8) / 1024 }));`;
results.footprint = JSON.parse(
  execFileSync(process.execPath, ["--expose-gc", "-e", footprintScript], { encoding: "utf8" }),
);
for (const k of Object.keys(results.footprint)) results.footprint[k] = round(results.footprint[k], 2);

// ---------------------------------------------------------------------------------------------
// Targets, as ratios of figures from this run.
const ip = results.inProcess;
const cgFloor = cgroupFiles.reduce((s, f) => s + (floorUs(`${cgroupDir.dir}/${f}`) ?? 0), 0);
const cgFloorP99 = cgroupFiles.reduce((s, f) => s + (floorP99Us(`${cgroupDir.dir}/${f}`) ?? 0), 0);
const fastFloor =
  floorUs(`/proc/${pid}/status`) + cgFloor + us(mi2Floor.medianNs) + ip["v8.getHeapStatistics()"].medianUs;
const fastFloorP99 =
  floorP99Us(`/proc/${pid}/status`) + cgFloorP99 + us(mi2Floor.p99Ns) + ip["v8.getHeapStatistics()"].p99Us;
const fast = ip["heapstate collect fast"];
const smaps1k = results.smapsScaling[0];
const smapsLast = results.smapsScaling.at(-1);
const rollupRow = results.rollupScaling.at(-1);
const target = (name, value, limit, ok, unit = "") => ({ name, value: round(value, 2), limit, unit, met: Boolean(ok) });
results.targets = [
  target(
    "fast collect ÷ Σ floors of what it reads (status, cgroup values, mallinfo2, V8 statistics)",
    fast.medianUs / fastFloor,
    "≤ 1.5",
    fast.medianUs / fastFloor <= 1.5,
    "×",
  ),
  target("fast collect p99 ÷ Σ floors' p99", fast.p99Us / fastFloorP99, "≤ 4", fast.p99Us / fastFloorP99 <= 4, "×"),
  target(
    "fast collect ÷ prom-client default metrics",
    fast.medianUs / ip["prom-client default metrics (register.metrics())"].medianUs,
    "≤ 0.25",
    fast.medianUs / ip["prom-client default metrics (register.metrics())"].medianUs <= 0.25,
    "×",
  ),
  target(
    "fast collect ÷ @stroncium/procfs status parse",
    fast.medianUs / ip["@stroncium/procfs processStatus (status parse)"].medianUs,
    "≤ 1",
    fast.medianUs / ip["@stroncium/procfs processStatus (status parse)"].medianUs <= 1,
    "×",
  ),
  target(
    "cached snapshot()",
    ip["heapstate snapshot cached"].medianUs,
    "≤ 1",
    ip["heapstate snapshot cached"].medianUs <= 1,
    "µs",
  ),
  target(
    `standard ÷ (smaps_rollup floor + fast) at ${rollupRow.rssMiB} MiB RSS`,
    rollupRow.standardOverFloorPlusFast,
    "≤ 1.2",
    rollupRow.standardOverFloorPlusFast <= 1.2,
    "×",
  ),
  target("smaps parse speed", smapsLast.parseMBs, "≥ 500", smapsLast.parseMBs >= 500, "MB/s"),
  target(
    `smaps read+parse ÷ read floor (${smapsLast.regions} regions)`,
    smapsLast.readParseOverFloor,
    "≤ 2.5",
    smapsLast.readParseOverFloor <= 2.5,
    "×",
  ),
  target(
    `pmap -X ÷ heapstate smaps read+parse (${smaps1k.regions} regions)`,
    smaps1k.pmapOverHeapstate,
    "≥ 10",
    smaps1k.pmapOverHeapstate >= 10,
    "×",
  ),
  target(
    `pmap -X ÷ heapstate smaps read+parse (${smapsLast.regions} regions)`,
    smapsLast.pmapOverHeapstate,
    "≥ 10",
    smapsLast.pmapOverHeapstate >= 10,
    "×",
  ),
  target(
    `glibc walk (${worstWalk.freeChunks} free chunks) share of one core, sampler at 1 Hz`,
    results.glibcBackoff.samplerAt1HzShareOfCorePercent,
    "≤ 1",
    results.glibcBackoff.samplerAt1HzShareOfCorePercent <= 1,
    "%",
  ),
  target(
    "RSS added by loading heapstate (and two collects)",
    results.footprint.loadMiB,
    "≤ 2",
    results.footprint.loadMiB <= 2,
    "MiB",
  ),
  target(
    "… of which anonymous (not code or files)",
    results.footprint.loadAnonMiB,
    "≤ 2",
    results.footprint.loadAnonMiB <= 2,
    "MiB",
  ),
  target(
    `live memory growth over ${results.footprint.collects} collects (malloc allocated + V8 used)`,
    (results.footprint.mallocGrowthKiB + results.footprint.v8UsedGrowthKiB) / 1024,
    "< 1",
    (results.footprint.mallocGrowthKiB + results.footprint.v8UsedGrowthKiB) / 1024 < 1,
    "MiB",
  ),
  target(
    `RSS growth over ${results.footprint.collects} collects`,
    results.footprint.rssGrowthMiB,
    "< 1",
    results.footprint.rssGrowthMiB < 1,
    "MiB",
  ),
];

// ---------------------------------------------------------------------------------------------
const md = [];
const m = results.machine;
md.push(
  `Measured ${m.date.slice(0, 10)} on ${m.cpuModel} (${m.cpus} CPUs), kernel ${m.kernel}, Node ${m.node}, ${m.libc?.family ?? ""} ${m.libc?.version ?? ""}${smoke ? " — SMOKE RUN, not for judging speed" : ""}.`,
);
md.push("", "| target | measured | goal | |", "|---|---|---|---|");
for (const t of results.targets)
  md.push(`| ${t.name} | ${t.value} ${t.unit} | ${t.limit} ${t.unit} | ${t.met ? "met" : "**missed**"} |`);
md.push("", "| in process | median µs | p99 µs |", "|---|---|---|");
md.push(
  `| floor: status + cgroup values + mallinfo2 + V8 statistics (C, kept descriptors) | ${round(fastFloor, 2)} | ${round(fastFloorP99, 2)} |`,
);
for (const [name, r] of Object.entries(ip)) md.push(`| ${name} | ${r.medianUs ?? r.error} | ${r.p99Us ?? ""} |`);
md.push("", "| floor (C, one pread of a kept descriptor) | median µs | p99 µs | bytes |", "|---|---|---|---|");
for (const [name, r] of Object.entries(results.floor))
  if (r) md.push(`| ${name} | ${r.medianUs} | ${r.p99Us} | ${r.bytes ?? ""} |`);
md.push("", "| whole command | median ms |", "|---|---|");
for (const [name, v] of Object.entries(results.commands)) md.push(`| ${name} | ${v} |`);
md.push(
  "",
  "| smaps: regions | bytes | read floor µs | read µs | parse µs | parse MB/s | read+parse ÷ floor | pmap -X ms | pmap ÷ heapstate | JS heap kept KiB |",
  "|---|---|---|---|---|---|---|---|---|---|",
);
for (const r of results.smapsScaling)
  md.push(
    `| ${r.regions} | ${r.smapsBytes} | ${r.readFloorUs} | ${r.readUs} | ${r.parseUs} | ${r.parseMBs} | ${r.readParseOverFloor} | ${r.pmapMs} | ${r.pmapOverHeapstate} | ${r.heapKeptKiB} |`,
  );
md.push(
  "",
  `| smaps_rollup: RSS MiB | rollup floor µs | fast µs | standard µs | standard ÷ (floor + fast) |`,
  "|---|---|---|---|---|",
);
for (const r of results.rollupScaling)
  md.push(`| ${r.rssMiB} | ${r.rollupFloorUs} | ${r.fastUs} | ${r.standardUs} | ${r.standardOverFloorPlusFast} |`);
md.push("", `smaps_rollup costs about ${results.rollupMsPerGiB} ms per GiB of RSS here.`);
md.push(
  "",
  "| glibc: free chunks | mallinfo2 ms | worst malloc stall, other thread, own arena µs | same, MALLOC_ARENA_MAX=1 µs |",
  "|---|---|---|---|",
);
for (const r of results.glibcScaling)
  md.push(`| ${r.freeChunks} | ${r.mallinfo2Ms} | ${r.worstStallOtherArenaUs} | ${r.worstStallSharedArenaUs} |`);
md.push("", "| jemalloc: threads | arenas | epoch + 6 reads µs | p99 µs |", "|---|---|---|---|");
for (const r of results.jemallocScaling)
  md.push(`| ${r.threads} | ${r.narenas ?? ""} | ${r.epochAnd6ReadsUs ?? r.error} | ${r.p99Us ?? ""} |`);
md.push(
  "",
  `Footprint: loading heapstate and collecting twice added ${results.footprint.loadMiB} MiB of RSS (${results.footprint.loadAnonMiB} MiB anonymous; the rest is code and files). After a warm-up, ${results.footprint.collects} more fast collects changed malloc's allocated bytes by ${results.footprint.mallocGrowthKiB} KiB, V8's used heap by ${results.footprint.v8UsedGrowthKiB} KiB, and RSS by ${results.footprint.rssGrowthMiB} MiB (V8 keeps pages committed for the garbage each reading makes).`,
);

const outDir = smoke ? join(root, ".artifacts") : join(root, "bench");
mkdirSync(outDir, { recursive: true });
const base = smoke ? "bench-smoke" : "results";
writeFileSync(join(outDir, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(outDir, `${base}.md`), `${md.join("\n")}\n`);
console.log(md.join("\n"));
log(`written: ${join(outDir, `${base}.json`)} and .md`);
process.exit(0);
