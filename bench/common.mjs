// What every part of the bench shares: the floor program (bench/floor.c, built here), tinybench
// medians, whole-command timings, rounding, and the built package.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const require = createRequire(import.meta.url);
export const smoke = process.argv.includes("--smoke");
export const MiB = 1024 * 1024;
export const log = (s) => process.stderr.write(`${s}\n`);
/** A module of the built package, by its path under dist/. */
export const dist = (...path) => require(join(root, "dist", ...path));

// The floor program.
export const buildDir = join(root, "bench", ".build");
export const floorBin = join(buildDir, "floor");
export function buildFloor() {
  mkdirSync(buildDir, { recursive: true });
  execFileSync("cc", ["-O2", "-Wall", "-o", floorBin, join(root, "bench", "floor.c"), "-ldl", "-lpthread"], {
    stdio: "inherit",
  });
}
export const floor = (args, env = {}) =>
  JSON.parse(execFileSync(floorBin, args.map(String), { encoding: "utf8", env: { ...process.env, ...env } }));

export const us = (ns) => ns / 1000;
export const round = (n, d = 1) =>
  n === undefined || !Number.isFinite(n) ? undefined : Math.round(n * 10 ** d) / 10 ** d;

// In-process measurements with tinybench: median and p99 in µs.
export async function measure(tasks, { time = smoke ? 60 : 1000, iterations = smoke ? 20 : 200 } = {}) {
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

export function medianOf(values) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

/** Median wall time of a whole command, in ms. */
export function commandMs(cmd, args, runs, options = {}) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: "ignore", ...options });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status}`);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return round(medianOf(times), 2);
}
