// The kernel files a reading reads ahead in one call into the addon (status, smaps_rollup, the
// cgroup's files, through descriptors it keeps) give the reading JavaScript's own reads give:
// exactly on captured cgroup v1 and v2 trees, field by field and within what moves between two
// readings on a live process under each allocator. And the addon's kept descriptors survive what a
// cgroup does: removed and made again, its files are read again.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CgroupState, ProcessState } from "../../lib/core/model/types";
import { fixtures, inBeforeAll, MiB, type PreloadName, requireLib, requireRoot, runChild } from "../helpers";

interface Picked {
  process?: ProcessState;
  cgroup?: CgroupState;
  warnings: string[];
}
interface Out {
  addon: boolean;
  tiers: Record<"fast" | "standard", Array<{ native: Picked; js: Picked }>>;
  directRead: { asked: number; read: number };
  crossings: Record<"fast" | "standard", Array<Record<string, number>>>;
}

describe("kernel files read ahead by the addon, on captured trees (own pid): exactly JavaScript's reading", () => {
  for (const tree of ["v1-hybrid", "v2", "v2-namespaced"]) {
    const out = inBeforeAll(() => runChild<Out>("kernel-files.cjs", [join(fixtures, "procfs", tree)]));
    it(`${tree}: process and cgroup, field by field, fast and standard`, () => {
      expect(out().addon).toBe(true);
      for (const tier of ["fast", "standard"] as const) {
        for (const { native, js } of out().tiers[tier]) {
          expect(native.process, tier).toEqual(js.process);
          expect(native.cgroup, tier).toEqual(js.cgroup);
          expect(native.warnings, tier).toEqual(js.warnings);
        }
        // The tree was read: its status and its cgroup's figures, not this machine's.
        expect(out().tiers[tier][0]?.native.process?.rssAnonBytes).toBeGreaterThan(0);
        expect(out().tiers[tier][0]?.native.cgroup?.usageBytes).toBeGreaterThan(0);
      }
      expect(out().directRead).toEqual({ asked: 2, read: 2 });
    });
  }
});

describe("kernel files read ahead by the addon, on the live process under each allocator", () => {
  for (const name of ["glibc", "jemalloc", "tcmalloc", "mimalloc"] as const) {
    const out = inBeforeAll(() =>
      runChild<Out>("kernel-files.cjs", [""], name === "glibc" ? {} : { LD_PRELOAD: requireLib(name as PreloadName) }),
    );
    it(`${name}: the same fields, the counters within what moves between two readings`, () => {
      expect(out().addon).toBe(true);
      for (const tier of ["fast", "standard"] as const) {
        for (const { native, js } of out().tiers[tier]) {
          expect(Object.keys(native.process ?? {}).sort(), tier).toEqual(Object.keys(js.process ?? {}).sort());
          expect(native.process?.rssSource).toBe(js.process?.rssSource);
          expect(native.process?.threads).toBe(js.process?.threads);
          for (const k of ["rssBytes", "rssAnonBytes", "peakRssBytes"] as const)
            expect(Math.abs((native.process?.[k] ?? -1) - (js.process?.[k] ?? -2)), `${tier} ${k}`).toBeLessThan(
              8 * MiB,
            );
          expect(native.cgroup === undefined, tier).toBe(js.cgroup === undefined);
          if (native.cgroup && js.cgroup) {
            expect(Object.keys(native.cgroup).sort()).toEqual(Object.keys(js.cgroup).sort());
            expect(native.cgroup.path).toBe(js.cgroup.path);
            expect(native.cgroup.limitBytes).toBe(js.cgroup.limitBytes);
          }
          expect(native.warnings, tier).toEqual(js.warnings);
        }
      }
      expect(out().directRead).toEqual({ asked: 2, read: 2 });
      // One crossing for what the fast tier asks of the kernel and the allocators. The standard
      // tier reads its files (smaps_rollup among them) in a call of their own: the allocators'
      // call is timed for glibc's back-off, and smaps_rollup would pass for the walk's cost.
      // Under glibc its walk is timed by the wall clock while it is cheap; the thread's CPU clock
      // (two calls, no read) only after a wall time that may have been descheduling.
      const fast = out().crossings.fast;
      expect(fast).toHaveLength(20);
      for (const { threadCpuMicros, ...reads } of fast) {
        expect(reads).toEqual({ "readNumbers+files": 1 });
        expect([0, name === "glibc" ? 2 : 0]).toContain(threadCpuMicros ?? 0);
      }
      const clocked = fast.filter((c) => (c.threadCpuMicros ?? 0) > 0).length;
      expect(clocked, "readings that asked the CPU clock").toBeLessThanOrEqual(5);
      for (const standard of out().crossings.standard) {
        expect(standard.readFiles).toBe(1);
        expect(standard["readNumbers+files"]).toBeUndefined();
      }
    });
  }
});

describe("the addon's kept descriptors when a cgroup goes and comes back", () => {
  const base = "/sys/fs/cgroup/memory";
  it("a removed cgroup's file reads as gone (ENOENT or ENODEV), and is read again once the cgroup is made again", (ctx) => {
    requireRoot(ctx, "making and removing a cgroup", "it writes to /sys/fs/cgroup");
    const script = `
        const b = require(${JSON.stringify(join(__dirname, "..", "..", "build", "Release", "heapstate.node"))});
        const { mkdirSync, rmdirSync, existsSync } = require("node:fs");
        const base = existsSync(${JSON.stringify(base)}) ? ${JSON.stringify(base)} : "/sys/fs/cgroup";
        const dir = base + "/heapstate-kf-" + process.pid;
        const file = dir + (base.endsWith("/memory") ? "/memory.usage_in_bytes" : "/memory.current");
        mkdirSync(dir);
        const g = b.keepFiles([file]);
        const out = new Uint8Array(4096), len = new Int32Array(1);
        const at = () => { const n = b.readFiles(out, len, g); return { n, len: len[0], text: Buffer.from(out.buffer, 0, Math.max(0, len[0])).toString().trim() }; };
        const first = at();
        rmdirSync(dir);
        const gone = at();
        mkdirSync(dir);
        const back = at();
        rmdirSync(dir);
        console.log(JSON.stringify({ first, gone, back }));`;
    const r = JSON.parse(execFileSync(process.execPath, ["-e", script], { encoding: "utf8" }).trim()) as Record<
      "first" | "gone" | "back",
      { n: number; len: number; text: string }
    >;
    expect(r.first.len).toBeGreaterThan(0);
    expect(r.first.text).toMatch(/^\d+$/);
    expect([-2, -19]).toContain(r.gone.len); // ENOENT (2) or ENODEV (19)
    expect(r.back.len).toBeGreaterThan(0);
    expect(r.back.text).toMatch(/^\d+$/);
  });
});
