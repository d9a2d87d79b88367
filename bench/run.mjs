#!/usr/bin/env node
// heapstate's benchmarks: its cost against the kernel's floor (bench/floor.c) and against the
// peers, measured side by side in one run, as ratios. `npm run bench` writes bench/results.json and
// bench/results.md; `npm run bench -- --smoke` is a short run that checks everything still works
// (CI), written to .artifacts/. Each part measures one thing: in-process.mjs (heapstate beside the
// floor and the peers), scaling.mjs (how costs grow), footprint.mjs (footprint, allocation, load),
// targets.mjs (the targets as ratios), report.mjs (the files written).
import { cpus, release } from "node:os";
import { buildFloor, dist, log, smoke } from "./common.mjs";
import { weightBench } from "./footprint.mjs";
import { inProcessBench } from "./in-process.mjs";
import { writeReport } from "./report.mjs";
import { scalingBench } from "./scaling.mjs";
import { judgeTargets } from "./targets.mjs";

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
