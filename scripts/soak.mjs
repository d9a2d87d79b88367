#!/usr/bin/env node
// Soak: N standard-tier collect() calls in one process (default 100 000; SOAK_COLLECTS to change).
// Fails when heapstate's own retained memory grows beyond a small bound (malloc's allocated bytes
// and V8's used heap after a full GC, checked at ten points) or when the per-call time drifts
// upward against the kernel's own cost: the median reading of the last tenth over the median bare
// read of the same procfs files (status and smaps_rollup) in that tenth, against the same ratio of
// the first tenth. The kernel's cost alone grows with RSS (smaps_rollup walks the page tables:
// 405 → 517 µs here while V8's young generation grew RSS by 16 MiB), so an absolute drift judges
// the machine, not heapstate.
// The growth judged is the lowest of the last three checkpoints against the lowest of the first
// three, not the highest checkpoint against the start. V8's own work (code, feedback, compiling)
// moves both figures: one checkpoint alone has read 1.7 MiB high here (and 1.1 MiB once in CI,
// back to 0.35 MiB at the end), and the start, after 2 000 readings, has read up to 0.9 MiB above
// every checkpoint, which would hide a leak. Leak-free runs judge 7–65 KiB; a leak of 8 bytes per
// reading, injected, judges about 870 KiB (at least 50 000 readings lie between the two lows).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { getHeapSpaceStatistics } from "node:v8";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const h = require(join(root, "dist", "index.js"));
const total = Number(process.env.SOAK_COLLECTS ?? 100_000);
const BOUND = 512 * 1024; // of live memory
const DRIFT = 1.5;

if (typeof global.gc !== "function") {
  console.error("soak: run with node --expose-gc");
  process.exit(2);
}
const live = () => {
  global.gc();
  const s = h.collect({ tier: "fast" });
  // V8's young generation: its size is what a loop of readings can grow without leaking.
  const young = getHeapSpaceStatistics().find((x) => x.space_name === "new_space")?.space_size ?? 0;
  return { malloc: s.heap?.allocatedBytes ?? 0, v8: s.v8?.heapUsedBytes ?? 0, rss: s.process?.rssBytes ?? 0, young };
};
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const tenth = Math.max(1, Math.floor(total / 10));
// The timings' own storage is allocated before the first reading (typed arrays: off V8's heap).
const first = new Float64Array(tenth);
const last = new Float64Array(tenth);
// The floor, every FLOOR_EVERY-th reading: the same kernel files read bare.
const FLOOR_EVERY = 10;
const firstFloor = new Float64Array(Math.ceil(tenth / FLOOR_EVERY));
const lastFloor = new Float64Array(Math.ceil(tenth / FLOOR_EVERY));
const floor = () => {
  const t = process.hrtime.bigint();
  readFileSync("/proc/self/status");
  readFileSync("/proc/self/smaps_rollup");
  return Number(process.hrtime.bigint() - t) / 1000;
};
const checkpoints = [];
for (let i = 0; i < 2000; i++) h.collect();
const start = live();
for (let i = 0; i < total; i++) {
  const t = process.hrtime.bigint();
  h.collect();
  const us = Number(process.hrtime.bigint() - t) / 1000;
  if (i < tenth) first[i] = us;
  if (i >= total - tenth) last[i - (total - tenth)] = us;
  if (i % FLOOR_EVERY === 0) {
    if (i < tenth) firstFloor[i / FLOOR_EVERY] = floor();
    else if (i >= total - tenth) lastFloor[(i - (total - tenth)) / FLOOR_EVERY] = floor();
  }
  if ((i + 1) % tenth === 0) checkpoints.push(live());
}
const end = checkpoints.at(-1);
const grown = (c) => c.malloc - start.malloc + (c.v8 - start.v8);
const growth = grown(end);
const judged = Math.min(...checkpoints.slice(-3).map(grown)) - Math.min(...checkpoints.slice(0, 3).map(grown));
const drift = median(last) / median(lastFloor) / (median(first) / median(firstFloor));
const report = {
  collects: total,
  tier: "standard",
  liveGrowthKiB: Math.round(growth / 1024),
  judgedGrowthKiB: Math.round(judged / 1024),
  checkpointsGrowthKiB: checkpoints.map((c) => Math.round(grown(c) / 1024)),
  mallocGrowthKiB: Math.round((end.malloc - start.malloc) / 1024),
  v8UsedGrowthKiB: Math.round((end.v8 - start.v8) / 1024),
  rssGrowthMiB: Math.round(((end.rss - start.rss) / 1048576) * 10) / 10,
  youngGenerationMiB: [start.young, end.young].map((b) => Math.round((b / 1048576) * 10) / 10),
  firstTenthMedianUs: Math.round(median(first)),
  lastTenthMedianUs: Math.round(median(last)),
  firstTenthFloorUs: Math.round(median(firstFloor)),
  lastTenthFloorUs: Math.round(median(lastFloor)),
  drift: Math.round(drift * 100) / 100,
};
console.log(`soak: ${JSON.stringify(report)}`);
if (judged > BOUND) {
  console.error(
    `soak: live memory grew by ${report.judgedGrowthKiB} KiB between the first and the last checkpoints (bound ${BOUND / 1024} KiB)`,
  );
  process.exit(1);
}
if (drift > DRIFT) {
  console.error(`soak: per-call time against the kernel's own cost drifted up ${report.drift}× (bound ${DRIFT}×)`);
  process.exit(1);
}
