/**
 * Madvise-aware page states against the kernel's own accounting (smaps_rollup, status).
 * jemalloc (REFERENCE §1.4): freed pages are dirty (resident, in RssAnon); after dirty_decay_ms
 * they are muzzy (MADV_FREE: out of jemalloc's `resident`, still in RSS as LazyFree); trim()
 * purges them with MADV_DONTNEED into `retained` and RSS falls. glibc: freed-but-pinned memory
 * stays resident until trim().
 */
import { describe, expect, it } from "vitest";
import type { AllocatorState, BreakdownBound, Finding, Warning } from "../../lib/core/model/types";
import { inBeforeAll, MiB, requireLib, runChild } from "../helpers";

interface Kernel {
  rss: number;
  anonymous: number;
  lazyFree: number;
  rssAnon: number;
}
interface Step {
  heap: AllocatorState;
  kernel: Kernel;
  actions?: Array<{ action: string }>;
}

const SIZE = 64 * MiB;
const MOST = 40 * MiB; // jemalloc returns part of a large free run to `retained` at once

describe("jemalloc page states (dirty_decay_ms:1000, muzzy_decay_ms:60000)", () => {
  const out = inBeforeAll(() =>
    runChild<Record<"allocated" | "freed" | "decayed" | "trimmed", Step>>("jemalloc-pages.cjs", [], {
      LD_PRELOAD: requireLib("jemalloc"),
      MALLOC_CONF: "dirty_decay_ms:1000,muzzy_decay_ms:60000",
    }),
  );
  const pages = (s: Step) => s.heap.pages ?? {};

  it("reads the decay times in force", () => {
    expect(out().allocated.heap.config).toMatchObject({ dirtyDecayMs: 1000, muzzyDecayMs: 60000 });
  });

  it("allocated: the blocks are active pages", () => {
    expect(out().allocated.heap.activeBytes).toBeGreaterThanOrEqual(SIZE);
    expect(out().allocated.heap.allocatedBytes).toBeGreaterThanOrEqual(SIZE);
  });

  it("freed: dirty, still resident in the kernel's eyes, not lazily freed", () => {
    expect(pages(out().freed).dirtyBytes).toBeGreaterThanOrEqual(MOST);
    // Decay is gradual over dirty_decay_ms and starts at the free: the reading right after it
    // finds a little decayed (under 1 MiB alone; 3.7 MiB once in CI with two suites on two cores),
    // and what decayed the kernel counts as LazyFree.
    const muzzy = pages(out().freed).muzzyBytes as number;
    expect(muzzy).toBeLessThan(8 * MiB);
    expect(Math.abs(out().freed.kernel.lazyFree - muzzy)).toBeLessThanOrEqual(4 * MiB);
    expect(out().freed.kernel.anonymous).toBeGreaterThanOrEqual(pages(out().freed).dirtyBytes as number);
  });

  it("decayed: muzzy = the kernel's LazyFree; out of jemalloc's resident, still in RSS", () => {
    const muzzy = pages(out().decayed).muzzyBytes as number;
    expect(muzzy).toBeGreaterThanOrEqual(MOST);
    expect(pages(out().decayed).dirtyBytes).toBeLessThan(8 * MiB);
    expect(Math.abs(out().decayed.kernel.lazyFree - muzzy)).toBeLessThanOrEqual(4 * MiB);
    expect(
      (out().freed.heap.residentBytes as number) - (out().decayed.heap.residentBytes as number),
    ).toBeGreaterThanOrEqual(MOST);
    // Lazily freed pages stay in RssAnon (had they left, it would fall by 40 MiB or more); the rest
    // of the process moves it a little over the seconds of decay (5.2 MiB once in CI).
    expect(Math.abs(out().decayed.kernel.rssAnon - out().freed.kernel.rssAnon)).toBeLessThanOrEqual(12 * MiB);
  });

  it("after trim(): purged to retained, and the kernel's RSS falls by as much", () => {
    expect(out().trimmed.actions?.map((a) => a.action)).toContain("arena.4096.purge");
    // Left dirty or muzzy: what the process's other threads freed between the purge and the
    // reading trim() takes after it (1.05 MiB once, under CI's parallel suite on Node 24).
    expect(pages(out().trimmed).muzzyBytes).toBeLessThan(2 * MiB);
    expect(pages(out().trimmed).dirtyBytes).toBeLessThan(2 * MiB);
    const retainedGain = (out().trimmed.heap.retainedBytes as number) - (out().decayed.heap.retainedBytes as number);
    expect(retainedGain).toBeGreaterThanOrEqual(MOST);
    expect(out().trimmed.kernel.lazyFree).toBeLessThan(4 * MiB);
    expect(out().decayed.kernel.rssAnon - out().trimmed.kernel.rssAnon).toBeGreaterThanOrEqual(MOST);
  });
});

interface GlibcTrim {
  blocked?: boolean;
  allocated: Step;
  freed: Step & { warnings: Warning[]; bounds?: BreakdownBound[]; parts?: string[]; brkHeap: number };
  deep?: { heap: AllocatorState; warnings: Warning[]; bounds?: BreakdownBound[]; findings: Finding[] };
  trim: {
    releasedBytes: number;
    promisedBytes?: number;
    actions: Array<{ action: string }>;
    before: { rssBytes: number };
    after: { rssBytes: number };
  };
  beforeTrim: { kernel: Step["kernel"] };
  trimmed: Step & { brkHeap: number };
}
const FREED = 150 * MiB; // 20000 × 8 KiB, every 100th kept

describe("glibc keeps fragmented free memory until trim()", () => {
  const out = inBeforeAll(() => runChild<GlibcTrim>("glibc-trim.cjs"));

  it("after free: glibc reports the free memory and the kernel still counts it", () => {
    expect(out().freed.heap.allocator).toBe("glibc");
    expect(out().freed.heap.pages?.freeBytes).toBeGreaterThanOrEqual(FREED);
    expect(out().allocated.kernel.anonymous - out().freed.kernel.anonymous).toBeLessThan(8 * MiB);
  });

  it("trim() lowers RSS, reports what it released, and the kernel agrees", () => {
    const seen = JSON.stringify({ trim: out().trim, before: out().beforeTrim.kernel, trimmed: out().trimmed.kernel });
    expect(
      out().trim.actions.map((a) => a.action),
      seen,
    ).toEqual(["malloc_trim"]);
    expect(out().trim.releasedBytes, seen).toBeGreaterThanOrEqual(FREED - 16 * MiB);
    // The kernel's anonymous resident memory, read right before trim() and right after it: trim()'s
    // own readings page code in (RssFile) and grow V8's heap by a MiB or two, which is not the trim.
    const kernelDrop = out().beforeTrim.kernel.rssAnon - out().trimmed.kernel.rssAnon;
    expect(Math.abs(kernelDrop - out().trim.releasedBytes), seen).toBeLessThanOrEqual(8 * MiB);
  });

  it("the top chunk goes back with the break: [heap] shrinks and so does glibc's keepcost", () => {
    // The child ran with the blocks under the program break (it runs again when ASLR put a mapping
    // just above the break; that case is the next block's).
    const seen = JSON.stringify({ freed: out().freed.brkHeap, trimmed: out().trimmed.brkHeap });
    expect(out().freed.brkHeap, seen).toBeGreaterThanOrEqual(FREED);
    expect(out().trimmed.brkHeap, seen).toBeLessThan(out().freed.brkHeap);
    expect(out().trimmed.heap.pages?.topReleasableBytes, seen).toBeLessThan(
      out().freed.heap.pages?.topReleasableBytes as number,
    );
  });
});

describe("glibc's main arena outside [heap] (the program break blocked by a mapping)", () => {
  const out = inBeforeAll(() => runChild<GlibcTrim>("glibc-trim.cjs", ["blocked"]));
  const warning = (ws: Warning[]) => ws.find((w) => w.code === "GLIBC_ARENA_OUTSIDE_HEAP");

  it("the kernel shows the blocks outside [heap]", () => {
    expect(out().blocked).toBe(true);
    expect(out().freed.brkHeap).toBeLessThan(16 * MiB);
    // Still resident: freed, not trimmed.
    expect(out().allocated.kernel.anonymous - out().freed.kernel.anonymous).toBeLessThan(8 * MiB);
  });

  it("the standard and deep tiers say glibc's free memory cannot be measured, with how much lies outside", () => {
    for (const r of [out().freed, out().deep]) {
      const w = warning(r?.warnings ?? []);
      expect(w?.source).toBe("glibc");
      const mib = Number(/took ([\d.]+) MiB/.exec(w?.message ?? "")?.[1]);
      expect(mib * MiB).toBeGreaterThanOrEqual(FREED);
      expect(mib * MiB).toBeLessThanOrEqual(FREED + 32 * MiB);
    }
  });

  it("claims no resident, released or releasable figure, and keeps the upper bound", () => {
    for (const r of [out().freed, out().deep]) {
      const pages = r?.heap.pages ?? {};
      expect(pages.freeBytes).toBeGreaterThanOrEqual(FREED);
      expect(pages.dirtyBytes).toBeUndefined();
      expect(pages.releasedBytes).toBeUndefined();
      expect(pages.releasableBytes).toBeUndefined();
      expect(r?.heap.arenaGroups).toBeUndefined();
      const bound = r?.bounds?.find((b) => b.name === "native-free");
      expect(bound?.atMostBytes).toBeGreaterThanOrEqual(FREED - 16 * MiB);
      expect(bound?.confirm).toMatch(/no tier can measure it/);
    }
    expect(out().freed.parts).not.toContain("native-free-releasable");
    expect(out().deep?.findings.map((f) => f.id)).not.toContain("glibc-releasable-now");
  });

  it("trim() promises nothing and still releases the memory, as the kernel sees", () => {
    const seen = JSON.stringify({ trim: out().trim, before: out().beforeTrim.kernel, trimmed: out().trimmed.kernel });
    expect(out().trim.promisedBytes).toBeUndefined();
    expect(out().trim.releasedBytes, seen).toBeGreaterThanOrEqual(FREED - 16 * MiB);
    // The kernel's anonymous resident memory, read right before trim() and right after it: trim()'s
    // own readings page code in (RssFile) and grow V8's heap by a MiB or two, which is not the trim.
    const kernelDrop = out().beforeTrim.kernel.rssAnon - out().trimmed.kernel.rssAnon;
    expect(Math.abs(kernelDrop - out().trim.releasedBytes), seen).toBeLessThanOrEqual(8 * MiB);
  });
});
