/**
 * Why glibc holds free memory, one cause per child process, each read by the standard tier (which
 * confirms glibc's free memory when its bound is large) and the deep tier: each scenario raises its
 * own verdict with its remedy, and none of the others. The per-arena figures behind the verdicts
 * are held against glibc's own malloc_info (parsed here, independently) and the kernel's Rss of
 * [heap], read just before and just after the deep reading.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatBytes } from "../../lib/core/base/units";
import type { ArenaGroup, CpuState, Finding, FindingId, FindingOf } from "../../lib/core/model/types";
import { childEnv, dist, fixtures, inBeforeAll, MiB, printerAddon, requireRoot, runChild, scaled } from "../helpers";

interface Reading {
  tier: string;
  findings: Finding[];
  groups?: { main: ArenaGroup; threads: ArenaGroup };
  limit?: { arenas: number; source: string };
  cpu?: CpuState;
  threads?: number;
  threadNames?: Record<string, number>;
  rss: number;
}
interface Independent {
  mallocInfo: string;
  heapRss: number;
}
interface Out {
  standard: Reading;
  deep: Reading;
  before: Independent;
  after: Independent;
  /** The pages the child's own live blocks touch (printer.livePages()). */
  livePages: number;
}

const CAUSES = [
  "glibc-releasable-now",
  "glibc-main-arena-fragmentation",
  "glibc-arena-pile-up",
  "glibc-thread-arena-high-water",
  "glibc-retains-freed-memory",
  "glibc-free-fragmented",
];

function causes(r: Reading): Finding[] {
  return r.findings.filter((f) => CAUSES.includes(f.id));
}

/** The one glibc verdict of a reading, a warning. */
function verdict<K extends FindingId>(r: Reading, id: K): FindingOf<K> {
  const found = causes(r);
  expect(
    found.map((f) => f.id),
    `${r.tier}: ${found.map((f) => f.message).join(" | ")}`,
  ).toEqual([id]);
  const f = found[0] as FindingOf<K>;
  expect(f.severity).toBe("warn");
  return f;
}

/** malloc_info's main arena (heap nr 0): its system bytes and free bytes, parsed here on its own. */
function mainArena(xml: string): { system: number; free: number } {
  const heap = /<heap nr="0">([\s\S]*?)<\/heap>/.exec(xml)?.[1] ?? "";
  const size = (type: string) =>
    Number(new RegExp(`<total type="${type}" count="\\d+" size="(\\d+)"/>`).exec(heap)?.[1]);
  const system = Number(/<system type="current" size="(\d+)"\/>/.exec(heap)?.[1]);
  return { system, free: size("fast") + size("rest") };
}

function between(ours: number, a: number, b: number, label: string): void {
  const slack = Math.max(2 * MiB, 0.02 * Math.max(a, b));
  expect(ours, label).toBeGreaterThanOrEqual(Math.min(a, b) - slack);
  expect(ours, label).toBeLessThanOrEqual(Math.max(a, b) + slack);
}

function checkMainArena(out: Out): void {
  const g = out.deep.groups?.main as ArenaGroup;
  const [b, a] = [mainArena(out.before.mallocInfo), mainArena(out.after.mallocInfo)];
  between(g.systemBytes, b.system, a.system, "main arena system bytes vs malloc_info");
  between(g.inUseBytes, b.system - b.free, a.system - a.free, "main arena in use vs malloc_info");
  between(g.residentBytes, out.before.heapRss, out.after.heapRss, "[heap] Rss vs smaps");
}

const child = (scenario: string) => inBeforeAll(() => runChild<Out>("glibc-causes.cjs", [scenario]));

describe("glibc holding free memory, by cause", () => {
  describe("whole free pages in the main arena: releasable now", () => {
    const out = child("releasable");
    it("says what trim() returns now, and nothing else", () => {
      for (const r of [out().standard, out().deep]) {
        const f = verdict(r, "glibc-releasable-now");
        expect(f.message).toMatch(
          /about [\d.]+ MiB of freed memory resident in whole pages.*trim\(\) would give about that much back now/,
        );
        expect(f.evidence.releasableBytes as number).toBeGreaterThanOrEqual(140 * MiB);
      }
      checkMainArena(out());
    });
  });

  describe("pieces smaller than a page in the main arena: fragmentation", () => {
    const out = child("fragmentation");
    it("says how many pages hold live data, and predicts no remedy: not jemalloc, not MALLOC_ARENA_MAX", () => {
      for (const r of [out().standard, out().deep]) {
        const f = verdict(r, "glibc-main-arena-fragmentation");
        expect(f.evidence.mainArenaFragmentedBytes as number).toBeGreaterThanOrEqual(120 * MiB);
        expect(f.message).toMatch(/about \d+ of its \d+ resident pages \(\d+%\) hold live data/);
        expect(f.message).toMatch(/no remedy can be predicted/);
        expect(f.message).not.toMatch(/LD_PRELOAD|MALLOC_ARENA_MAX=|UV_THREADPOOL_SIZE/);
        // The pages that hold live data, against the child's own count of the pages its 100 000
        // survivors touch (a floor: Node's own blocks live in [heap] too).
        const live = f.evidence.mainArenaLivePages as number;
        expect(live).toBeGreaterThanOrEqual(0.95 * out().livePages);
        expect(live).toBeLessThanOrEqual((f.evidence.mainArenaResidentPages as number) + 1);
      }
      checkMainArena(out());
    });
  });

  describe("as many thread arenas as glibc allows, each with free memory: pile-up", () => {
    const out = child("pile-up");
    it("advises MALLOC_ARENA_MAX from the CPUs, and names the limit", () => {
      for (const r of [out().standard, out().deep]) {
        const f = verdict(r, "glibc-arena-pile-up");
        const online = r.cpu?.onlineCpus as number;
        expect(online).toBeGreaterThan(0);
        expect(r.limit?.arenas).toBe(8 * online);
        const n = Math.max(2, 2 * online);
        expect(f.message).toContain(`MALLOC_ARENA_MAX=${n}`);
        expect(f.evidence.recommendedArenaMax).toBe(n);
        expect(f.evidence.threadArenas as number).toBeGreaterThanOrEqual(Math.ceil(0.75 * 8 * online) - 1);
        expect(f.message).not.toMatch(/LD_PRELOAD|UV_THREADPOOL_SIZE/);
      }
    });
  });

  describe("the threadpool's arenas kept at their peaks: high-water", () => {
    const out = child("high-water");
    it("names the threads and UV_THREADPOOL_SIZE, not MALLOC_ARENA_MAX", () => {
      for (const r of [out().standard, out().deep]) {
        const f = verdict(r, "glibc-thread-arena-high-water");
        expect(f.evidence.threadArenasFreeResidentBytes as number).toBeGreaterThanOrEqual(140 * MiB);
        expect(f.message).toContain("UV_THREADPOOL_SIZE");
        expect(f.message).toContain(`${r.threads} threads in all`);
        // Node 22 and later name the threadpool's threads: the four are counted by name.
        if (r.threadNames?.["libuv-worker"] !== undefined) expect(f.message).toMatch(/\b4 libuv threadpool threads\b/);
        expect(f.message).not.toMatch(/MALLOC_ARENA_MAX=|LD_PRELOAD/);
      }
    });

    it("the deep reading says the arenas' top chunks apart from the pieces smaller than a page", () => {
      // Walked, the tops' resident bytes are measured: within malloc_info's own count of the
      // tops' free bytes, and not called pieces.
      const f = verdict(out().deep, "glibc-thread-arena-high-water");
      const top = f.evidence.threadArenasTopResidentBytes as number;
      expect(top).toEqual(expect.any(Number));
      // (Read a moment apart from malloc_info, and Node's own threads use arenas too: within 1 MiB.)
      expect(top).toBeLessThanOrEqual((f.evidence.threadArenasTopBytes as number) + MiB);
      const pieces =
        (f.evidence.threadArenasFreeResidentBytes as number) - (f.evidence.threadArenasReleasableBytes as number) - top;
      expect(f.message).toContain(
        `${formatBytes(top)} in the arenas' top chunks, which malloc_trim does not shrink, ${formatBytes(pieces)} in pieces smaller than a page`,
      );
    });
  });

  describe("pile-up in a cgroup whose CPU quota is half a CPU", () => {
    const cgroup = `/sys/fs/cgroup/cpu/heapstate-test-${process.pid}`;
    it("computes MALLOC_ARENA_MAX from the quota (2), not from the host's CPUs", (ctx) => {
      requireRoot(ctx, "a cgroup with a CPU quota", "it creates a cgroup");
      if (!existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) {
        ctx.skip("this host has no cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu");
      }
      mkdirSync(cgroup);
      try {
        writeFileSync(join(cgroup, "cpu.cfs_quota_us"), "50000");
        const stdout = execFileSync(
          "sh",
          [
            "-c",
            `echo $$ > ${cgroup}/cgroup.procs && exec "$0" "$@"`,
            process.execPath,
            "--expose-gc",
            join(fixtures, "children", "glibc-causes.cjs"),
            "pile-up",
          ],
          {
            env: childEnv({ HEAPSTATE_TEST_DIST: dist, HEAPSTATE_TEST_PRINTER: printerAddon }),
            encoding: "utf8",
            maxBuffer: 64 << 20,
            timeout: scaled(120_000),
          },
        );
        const out = JSON.parse(stdout.trim().split("\n").at(-1) as string) as Out;
        for (const r of [out.standard, out.deep]) {
          expect(r.cpu?.quotaCpus).toBe(0.5);
          const f = verdict(r, "glibc-arena-pile-up");
          expect(f.message).toContain("MALLOC_ARENA_MAX=2");
          expect(f.message).toContain("the cgroup's CPU quota allows 0.5 CPUs");
          expect(f.evidence.cpuQuota).toBe(0.5);
        }
      } finally {
        rmdirSync(cgroup);
      }
    }, 180_000);
  });
});
