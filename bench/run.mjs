#!/usr/bin/env node
// heapstate's benchmarks: its cost against the kernel's floor (bench/floor.c) and against the
// peers, measured side by side in one run, as ratios. `npm run bench` writes bench/results.json and
// bench/results.md; `npm run bench -- --smoke` is a short run that checks everything still works
// (CI), written to .artifacts/. Each part measures one thing: in-process.mjs (heapstate beside the
// floor and the peers), scaling.mjs (how costs grow), footprint.mjs (footprint, allocation, load),
// targets.mjs (the targets as ratios), report.mjs (the files written).
import { readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { buildFloor, dist, log, root, smoke } from "./common.mjs";
import { weightBench } from "./footprint.mjs";
import { inProcessBench } from "./in-process.mjs";
import { writeReport } from "./report.mjs";
import { scalingBench } from "./scaling.mjs";
import { judgeTargets } from "./targets.mjs";

// `--report`: the targets judged again and the files written again from bench/results.json,
// without measuring (after a change to how a target or a reason is stated).
if (process.argv.includes("--report")) {
  const results = JSON.parse(readFileSync(join(root, "bench", "results.json"), "utf8"));
  const floor = results.floor;
  const path = (p) => p.replace(/^\/proc\/<pid>\//, "/proc/<pid>/");
  const floorUs = (p) => floor[path(p)]?.medianUs;
  const floorP99Us = (p) => floor[path(p)]?.p99Us;
  const cgroupKeys = Object.keys(floor).filter((k) => k.startsWith("/sys/fs/cgroup/"));
  const dir = cgroupKeys[0]?.slice(0, cgroupKeys[0].lastIndexOf("/"));
  writeReport(
    results,
    judgeTargets(results, {
      cgroupDir: dir === undefined ? undefined : { dir },
      cgroupFiles: cgroupKeys.map((k) => k.slice(k.lastIndexOf("/") + 1)),
      floorUs,
      floorP99Us,
      mi2Floor: { medianNs: floor.mallinfo2.medianUs * 1000, p99Ns: floor.mallinfo2.p99Us * 1000 },
      pid: "<pid>",
      worstWalk: results.glibcScaling.at(-1),
    }),
  );
  process.exit(0);
}
if (typeof global.gc !== "function") {
  console.error("bench: run with node --expose-gc (npm run bench does)");
  process.exit(2);
}
const h = dist("index.js");
buildFloor();
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

const floorOf = await inProcessBench(results);
const { worstWalk } = await scalingBench(results);
await weightBench(results);
writeReport(results, judgeTargets(results, { ...floorOf, worstWalk }));
process.exit(0);
