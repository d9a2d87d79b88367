// How heapstate's costs grow: smaps by mappings, smaps_rollup by RSS, glibc's walk by free chunks
// and by arenas, jemalloc's epoch by arenas; each beside the floor program's bare read.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { commandMs, dist, floor, floorBin, log, MiB, measure, round, smoke, us } from "./common.mjs";

/** Fills results.smapsScaling, rollupScaling, glibcScaling, glibcBackoff, arenaScaling, jemallocScaling; returns the worst walk. */
export async function scalingBench(results) {
  const h = dist("index.js");
  const { forEachMapping, SmapsParser } = dist("core", "procfs", "smaps.js");
  const { streamProcFile } = dist("core", "procfs", "read.js");
  const { RegionAccumulator } = dist("core", "read", "regions.js");
  const pid = process.pid;
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
  results.smapsScalingSkipped = [];
  const maxMapCount = () => Number(readFileSync("/proc/sys/vm/max_map_count", "utf8"));
  const maxMapCountBefore = maxMapCount();
  for (const regions of smoke ? [1000] : [1000, 10000, 50000, 100000]) {
    // The kernel caps a process's mappings at vm.max_map_count (65530 by default): raised for the
    // run where we may (root), else the size is skipped and the table says so.
    if (maxMapCount() < regions + 5000) {
      try {
        writeFileSync("/proc/sys/vm/max_map_count", String(regions + 5000));
      } catch {}
      if (maxMapCount() < regions + 5000) {
        results.smapsScalingSkipped.push({
          regions,
          reason: `vm.max_map_count is ${maxMapCount()} and may not be raised here`,
        });
        continue;
      }
    }
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

  if (maxMapCount() !== maxMapCountBefore) {
    try {
      writeFileSync("/proc/sys/vm/max_map_count", String(maxMapCountBefore));
    } catch {}
  }

  log("scaling: smaps_rollup by RSS…");
  results.rollupScaling = [];
  let held = [];
  for (const mib of smoke ? [0, 64] : [0, 256, 1024, 8192]) {
    held = [];
    for (let i = 0; i < mib / 64; i++) held.push(Buffer.allocUnsafe(64 * MiB).fill(1));
    const f = floor(["files", smoke ? 20 : 200, `/proc/${pid}/smaps_rollup`])[`/proc/${pid}/smaps_rollup`];
    const m = await measure(
      [
        ["fast", () => h.collect({ tier: "fast" })],
        ["standard", () => h.collect({ tier: "standard" })],
        ["deep", () => h.collect({ tier: "deep" })],
      ],
      { time: smoke ? 50 : 500, iterations: smoke ? 3 : 10 },
    );
    results.rollupScaling.push({
      heldMiB: mib,
      rssMiB: round(h.collect({ tier: "fast" }).process.rssBytes / MiB, 0),
      rollupFloorUs: round(us(f.medianNs), 0),
      fastUs: m.fast.medianUs,
      standardUs: m.standard.medianUs,
      deepUs: m.deep.medianUs,
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

  log("scaling: glibc's walk by arenas…");
  results.arenaScaling = [];
  for (const threads of smoke ? [1, 4] : [1, 16, 64, 256]) {
    const r = floor(["glibc-arenas", threads, 2000], { MALLOC_ARENA_MAX: String(threads + 1) });
    results.arenaScaling.push({
      threads,
      arenas: r.arenas,
      freeChunks: (r.arenas * r.chunksPerArena) / 2,
      mallinfo2Ms: round(r.mallinfo2MedianNs / 1e6, 2),
      mallocInfoMs: round(r.mallocInfoMedianNs / 1e6, 2),
    });
  }

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
  return { worstWalk };
}
