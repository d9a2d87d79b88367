// What heapstate weighs in a process: its footprint per face in fresh processes, what a reading
// allocates, a soak of readings, a service under HTTP load with and without it.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { log, root, round, smoke } from "./common.mjs";
import { allocationPerReading, footprint, samplerInstructions, samplingCost, underLoad } from "./weight.mjs";

/** Fills results.footprintRows, allocation, soak, underLoad and footprint. */
export async function weightBench(results) {
  log("footprint, per face, each in fresh processes…");
  const runs = smoke ? 1 : 5;
  results.footprintRows = [
    footprint(root, "empty", ["require", "fast", "standard"], runs),
    footprint(root, "service", ["require", "fast", "standard"], runs),
    footprint(root, "empty", ["require", "handler"], runs),
    footprint(root, "empty", ["require", "sampler"], runs),
    footprint(root, "prom-client", ["require", "prometheus"], runs),
    footprint(root, "empty", ["prom-client"], runs),
  ];
  log("allocation per reading…");
  results.allocation = [
    allocationPerReading(root, "fast", smoke ? 1000 : 10000),
    // Over 10 000 readings of each tier, as the target is set: over fewer, what V8's compilers
    // allocate while the reading's code warms up weighs on the average (4 000 standard readings
    // read 17.1 KiB each where 10 000 read 15.4).
    allocationPerReading(root, "standard", smoke ? 200 : 10000),
  ];
  log(`soak (${smoke ? 2000 : 100000} standard readings)…`);
  {
    const out = execFileSync(process.execPath, ["--expose-gc", join(root, "scripts", "soak.mjs")], {
      encoding: "utf8",
      env: { ...process.env, SOAK_COLLECTS: String(smoke ? 2000 : 100000) },
    });
    results.soak = JSON.parse(/^soak: (.*)$/m.exec(out)[1]);
  }
  log("a service under HTTP load, with and without heapstate…");
  results.underLoad = await underLoad(root, {
    runs: smoke ? 1 : 5,
    seconds: smoke ? 2 : 15,
    concurrency: 8,
    rate: 400,
  });

  log("the same service with jemalloc's sampling on and off…");
  results.samplingCost = await samplingCost(root, {
    runs: smoke ? 1 : 5,
    seconds: smoke ? 2 : 15,
    concurrency: 8,
    rate: 400,
  });

  log("the same service with heapstate's glibc sampler preloaded and not…");
  results.glibcSamplerCost = await samplingCost(
    root,
    { runs: smoke ? 1 : 5, seconds: smoke ? 2 : 15, concurrency: 8, rate: 400 },
    {},
    { LD_PRELOAD: join(root, "build", "Release", "libheapstate-sampler.so") },
  );
  log("the glibc sampler's instructions per malloc/free pair (callgrind)…");
  results.samplerInstructions = samplerInstructions(root, smoke ? 100_000 : 1_000_000);

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
}
