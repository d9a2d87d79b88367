#!/usr/bin/env node
// Soak: N standard-tier collect() calls in one process (default 100 000; SOAK_COLLECTS to change).
// Fails when heapstate's own retained memory grows beyond a small bound (malloc's allocated bytes
// and V8's used heap after a full GC, checked at ten points) or when the per-call time drifts
// upward (the median of the last tenth against the first).
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const h = require(join(root, "dist", "index.js"));
const total = Number(process.env.SOAK_COLLECTS ?? 100_000);
const BOUND = 1024 * 1024; // 1 MiB of live memory
const DRIFT = 1.5;

if (typeof global.gc !== "function") {
  console.error("soak: run with node --expose-gc");
  process.exit(2);
}
const live = () => {
  global.gc();
  const s = h.collect({ tier: "fast" });
  return { malloc: s.heap?.allocatedBytes ?? 0, v8: s.v8?.heapUsedBytes ?? 0, rss: s.process?.rssBytes ?? 0 };
};
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

for (let i = 0; i < 2000; i++) h.collect();
const start = live();
const tenth = Math.max(1, Math.floor(total / 10));
const first = [];
const last = [];
const checkpoints = [];
for (let i = 0; i < total; i++) {
  const t = process.hrtime.bigint();
  h.collect();
  const us = Number(process.hrtime.bigint() - t) / 1000;
  if (i < tenth) first.push(us);
  if (i >= total - tenth) last.push(us);
  if ((i + 1) % tenth === 0) checkpoints.push(live());
}
const end = checkpoints.at(-1);
const growth = end.malloc - start.malloc + (end.v8 - start.v8);
const drift = median(last) / median(first);
const report = {
  collects: total,
  tier: "standard",
  liveGrowthKiB: Math.round(growth / 1024),
  mallocGrowthKiB: Math.round((end.malloc - start.malloc) / 1024),
  v8UsedGrowthKiB: Math.round((end.v8 - start.v8) / 1024),
  rssGrowthMiB: Math.round(((end.rss - start.rss) / 1048576) * 10) / 10,
  firstTenthMedianUs: Math.round(median(first)),
  lastTenthMedianUs: Math.round(median(last)),
  drift: Math.round(drift * 100) / 100,
};
console.log(`soak: ${JSON.stringify(report)}`);
const maxGrowth = Math.max(...checkpoints.map((c) => c.malloc - start.malloc + (c.v8 - start.v8)));
if (maxGrowth > BOUND) {
  console.error(`soak: live memory grew by ${Math.round(maxGrowth / 1024)} KiB (bound ${BOUND / 1024} KiB)`);
  process.exit(1);
}
if (drift > DRIFT) {
  console.error(`soak: per-call time drifted up ${report.drift}× (bound ${DRIFT}×)`);
  process.exit(1);
}
