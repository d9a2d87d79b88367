/**
 * Madvise-aware page states against the kernel's own accounting (smaps_rollup, status).
 * jemalloc (REFERENCE §1.4): freed pages are dirty (resident, in RssAnon); after dirty_decay_ms
 * they are muzzy (MADV_FREE: out of jemalloc's `resident`, still in RSS as LazyFree); trim()
 * purges them with MADV_DONTNEED into `retained` and RSS falls. glibc: freed-but-pinned memory
 * stays resident until trim().
 */
import { describe, expect, it } from "vitest";
import type { AllocatorState } from "../../lib/types";
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
    expect(pages(out().allocated).activeBytes).toBeGreaterThanOrEqual(SIZE);
    expect(out().allocated.heap.allocatedBytes).toBeGreaterThanOrEqual(SIZE);
  });

  it("freed: dirty, still resident in the kernel's eyes, not lazily freed", () => {
    expect(pages(out().freed).dirtyBytes).toBeGreaterThanOrEqual(MOST);
    expect(pages(out().freed).muzzyBytes).toBeLessThan(1 * MiB); // other threads may have decayed a page or two
    expect(out().freed.kernel.lazyFree).toBeLessThan(4 * MiB);
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
    expect(Math.abs(out().decayed.kernel.rssAnon - out().freed.kernel.rssAnon)).toBeLessThanOrEqual(4 * MiB);
  });

  it("after trim(): purged to retained, and the kernel's RSS falls by as much", () => {
    expect(out().trimmed.actions?.map((a) => a.action)).toContain("arena.4096.purge");
    // Left dirty or muzzy: what the process's other threads freed between the purge and the
    // reading trim() takes after it (1.05 MiB once, under CI's parallel suite on Node 24).
    expect(pages(out().trimmed).muzzyBytes).toBeLessThan(2 * MiB);
    expect(pages(out().trimmed).dirtyBytes).toBeLessThan(2 * MiB);
    const retainedGain =
      (pages(out().trimmed).retainedBytes as number) - (pages(out().decayed).retainedBytes as number);
    expect(retainedGain).toBeGreaterThanOrEqual(MOST);
    expect(out().trimmed.kernel.lazyFree).toBeLessThan(4 * MiB);
    expect(out().decayed.kernel.rssAnon - out().trimmed.kernel.rssAnon).toBeGreaterThanOrEqual(MOST);
  });
});

describe("glibc keeps fragmented free memory until trim()", () => {
  const out = inBeforeAll(() =>
    runChild<{
      allocated: Step;
      freed: Step;
      trimmed: Step;
      trim: {
        releasedBytes: number;
        actions: Array<{ action: string }>;
        before: { rssBytes: number };
        after: { rssBytes: number };
      };
    }>("glibc-trim.cjs"),
  );
  const FREED = 150 * MiB; // 20000 × 8 KiB, every 100th kept

  it("after free: glibc reports the free memory and the kernel still counts it", () => {
    expect(out().freed.heap.allocator).toBe("glibc");
    expect(out().freed.heap.pages?.freeBytes).toBeGreaterThanOrEqual(FREED);
    expect(out().allocated.kernel.anonymous - out().freed.kernel.anonymous).toBeLessThan(8 * MiB);
  });

  it("trim() lowers RSS, reports what it released, and the kernel agrees", () => {
    const seen = JSON.stringify({ trim: out().trim, freed: out().freed.kernel, trimmed: out().trimmed.kernel });
    expect(
      out().trim.actions.map((a) => a.action),
      seen,
    ).toEqual(["malloc_trim"]);
    expect(out().trim.releasedBytes, seen).toBeGreaterThanOrEqual(FREED - 16 * MiB);
    const kernelDrop = out().freed.kernel.rss - out().trimmed.kernel.rss;
    expect(Math.abs(kernelDrop - out().trim.releasedBytes), seen).toBeLessThanOrEqual(8 * MiB);
    // The top chunk went back too.
    expect(out().trimmed.heap.pages?.topReleasableBytes, seen).toBeLessThan(
      out().freed.heap.pages?.topReleasableBytes as number,
    );
  });
});
