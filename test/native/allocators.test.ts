/**
 * Each allocator for real: a child `node` with the Debian library preloaded (or none, for glibc)
 * makes a known allocation. heapstate must name the allocator and its library, move
 * allocatedBytes by that amount within size-class rounding, move it back on free, and agree with
 * the allocator's own stats printer.
 */
import { describe, expect, it } from "vitest";
import type { AllocatorName, AllocatorState, Snapshot } from "../../lib/core/model/types";
import { glibcTotals, inBeforeAll, MiB, mimallocCommitted, type PreloadName, requireLib, runChild } from "../helpers";

interface AllocateOutput {
  baseline: Snapshot;
  held: Snapshot;
  heldStatsBefore: string;
  heldStats: string;
  freed: Snapshot;
  trim: { releasedBytes?: number; actions: Array<{ allocator: string; action: string }>; after: Snapshot };
}

const BIG = 64 * MiB;
const SMALL_COUNT = 10_000;
const SMALL = 256;
const EXPECTED = BIG + SMALL_COUNT * SMALL;
// Size-class rounding plus Node's per-Buffer bookkeeping (a BackingStore object and its control
// block, also malloc'd): well under 512 bytes for each small Buffer.
const ROUNDING = SMALL_COUNT * 512;
// What the rest of the process (V8's zones, libuv) may allocate or free between two readings.
const NOISE = 2 * MiB;

function heapOf(s: Snapshot): AllocatorState {
  expect(s.heap, JSON.stringify(s.warnings)).toBeDefined();
  return s.heap as AllocatorState;
}

function run(preload: PreloadName | undefined, which: AllocatorName): AllocateOutput {
  const env = preload ? { LD_PRELOAD: requireLib(preload) } : {};
  return runChild<AllocateOutput>("allocate.cjs", [which], env);
}

/** "MALLOC:   67186712 (   64.1 MiB) Bytes in use by application" → 67186712. */
function tcmallocStat(text: string, label: string): number {
  const m = new RegExp(`MALLOC:[\\s+=]*(\\d+) \\([^)]*\\) ${label}`).exec(text);
  if (!m) throw new Error(`"${label}" not in tcmalloc's stats:\n${text}`);
  return Number(m[1]);
}

/** heapstate's figure lies between the printer's two readings (taken just before and after it). */
function expectBetween(ours: number | undefined, label: string, before: number, after: number): void {
  expect(ours, label).toEqual(expect.any(Number));
  expect(ours as number, label).toBeGreaterThanOrEqual(Math.min(before, after) - NOISE);
  expect(ours as number, label).toBeLessThanOrEqual(Math.max(before, after) + NOISE);
}

function expectAllocationTracked(out: AllocateOutput): void {
  const base = heapOf(out.baseline).allocatedBytes as number;
  const held = heapOf(out.held).allocatedBytes as number;
  const freed = heapOf(out.freed).allocatedBytes as number;
  expect(base).toBeGreaterThan(0);
  expect(held - base).toBeGreaterThanOrEqual(EXPECTED - NOISE);
  expect(held - base).toBeLessThanOrEqual(EXPECTED + ROUNDING + NOISE);
  expect(Math.abs(freed - base)).toBeLessThanOrEqual(4 * MiB);
}

describe("glibc (no preload)", () => {
  const out = inBeforeAll(() => run(undefined, "glibc"));

  it("names glibc in libc.so.6 as the heap", () => {
    const heap = heapOf(out().held);
    expect(heap.allocator).toBe("glibc");
    expect(heap.library).toMatch(/\/libc\.so\.6$/);
    expect(heap.servesMalloc).toBe(true);
    expect(heap.version).toMatch(/^2\.\d+/);
    expect(out().held.allocators[0]).toEqual(heap);
  });

  it("moves allocatedBytes by the allocation and back", () => expectAllocationTracked(out()));

  it("agrees with glibc's own malloc_stats()", () => {
    const [before, after] = [glibcTotals(out().heldStatsBefore), glibcTotals(out().heldStats)];
    const heap = heapOf(out().held);
    expectBetween(heap.allocatedBytes, "in use bytes", before.inUse, after.inUse);
    expectBetween(heap.mappedBytes, "system bytes", before.system, after.system);
  });

  it("trims with malloc_trim", () => {
    expect(out().trim.actions.map((a) => `${a.allocator}:${a.action}`)).toEqual(["glibc:malloc_trim"]);
    expect(out().trim.releasedBytes).toEqual(expect.any(Number));
  });
});

describe("jemalloc (LD_PRELOAD libjemalloc.so.2)", () => {
  const out = inBeforeAll(() => run("jemalloc", "jemalloc"));

  it("names the preloaded jemalloc as the heap and leaves glibc out", () => {
    const heap = heapOf(out().held);
    expect(heap.allocator).toBe("jemalloc");
    expect(heap.library).toBe(requireLib("jemalloc"));
    expect(heap.version).toMatch(/^5\./);
    expect(out().held.allocators.map((a) => a.allocator)).toEqual(["jemalloc"]);
  });

  it("moves allocatedBytes by the allocation and back", () => expectAllocationTracked(out()));

  it("agrees with jemalloc's own malloc_stats_print", () => {
    const parse = (t: string) => (JSON.parse(t) as { jemalloc: { stats: Record<string, number> } }).jemalloc.stats;
    const [before, after] = [parse(out().heldStatsBefore), parse(out().heldStats)];
    const heap = heapOf(out().held);
    const pairs: Array<[keyof AllocatorState, string]> = [
      ["allocatedBytes", "allocated"],
      ["activeBytes", "active"],
      ["residentBytes", "resident"],
      ["mappedBytes", "mapped"],
      ["metadataBytes", "metadata"],
      ["retainedBytes", "retained"],
    ];
    for (const [ours, theirs] of pairs) {
      expectBetween(
        heap[ours] as number,
        `${ours} vs stats.${theirs}`,
        before[theirs] as number,
        after[theirs] as number,
      );
    }
  });

  it("reports the tunables in force", () => {
    const config = heapOf(out().held).config ?? {};
    expect(config.dirtyDecayMs).toEqual(expect.any(Number));
    expect(config.muzzyDecayMs).toEqual(expect.any(Number));
    expect(config.retain).toEqual(expect.any(Boolean));
    expect(config.statsEnabled).toBe(true);
  });

  it("trims with a tcache flush and a purge of every arena", () => {
    expect(out().trim.actions.map((a) => a.action)).toEqual(["thread.tcache.flush", "arena.4096.purge"]);
  });
});

describe("tcmalloc (LD_PRELOAD libtcmalloc_minimal.so.4)", () => {
  const out = inBeforeAll(() => run("tcmalloc", "tcmalloc"));

  it("names the preloaded tcmalloc as the heap", () => {
    const heap = heapOf(out().held);
    expect(heap.allocator).toBe("tcmalloc");
    expect(heap.library).toBe(requireLib("tcmalloc"));
    expect(heap.version).toMatch(/^2\./);
    expect(out().held.allocators.map((a) => a.allocator)).toEqual(["tcmalloc"]);
  });

  it("moves allocatedBytes by the allocation and back", () => expectAllocationTracked(out()));

  it("agrees with tcmalloc's own MallocExtension::GetStats", () => {
    const heap = heapOf(out().held);
    const check = (ours: number | undefined, label: string) =>
      expectBetween(ours, label, tcmallocStat(out().heldStatsBefore, label), tcmallocStat(out().heldStats, label));
    check(heap.allocatedBytes, "Bytes in use by application");
    check(heap.pages?.dirtyBytes, "Bytes in page heap freelist");
    check(heap.pages?.releasedBytes, "Bytes released to OS");
    // tcmalloc's "Actual memory used" is total_physical_bytes: the page heap's resident pages plus
    // its metadata, which heapstate keeps apart so that resident ≤ mapped (both the page heap).
    check(
      heap.residentBytes === undefined || heap.metadataBytes === undefined
        ? undefined
        : heap.residentBytes + heap.metadataBytes,
      "Actual memory used",
    );
    expect(heap.residentBytes).toBeLessThanOrEqual(heap.mappedBytes ?? 0);
  });

  it("releases free memory and RSS falls", () => {
    expect(out().trim.actions.map((a) => a.action)).toEqual(["MallocExtension_ReleaseFreeMemory"]);
    // The freed 64 MiB sat in tcmalloc's page heap until the release.
    expect(out().trim.releasedBytes).toBeGreaterThan(48 * MiB);
    expect(heapOf(out().trim.after).pages?.releasedBytes).toBeGreaterThan(48 * MiB);
  });
});

describe("mimalloc (LD_PRELOAD libmimalloc.so.2)", () => {
  const out = inBeforeAll(() => run("mimalloc", "mimalloc"));

  it("names the preloaded mimalloc as the heap", () => {
    const heap = heapOf(out().held);
    expect(heap.allocator).toBe("mimalloc");
    expect(heap.library).toBe(requireLib("mimalloc"));
    expect(heap.version).toMatch(/^2\.\d\.\d$/);
  });

  it("leaves allocatedBytes absent: mimalloc 2.0 has no such counter", () => {
    expect("allocatedBytes" in heapOf(out().held)).toBe(false);
  });

  it("moves committedBytes with the allocation, as mimalloc's own printer says", () => {
    const base = heapOf(out().baseline).committedBytes as number;
    const held = heapOf(out().held).committedBytes as number;
    // mimalloc reuses free committed pages first, so commit grows by less than asked, by what it
    // had free: 16.06 MiB once in CI (the exact figure is the printer's, checked below).
    expect(held - base).toBeGreaterThanOrEqual(BIG - 24 * MiB);
    // The printer rounds to 0.1 of a unit, well inside NOISE.
    expectBetween(held, "committed", mimallocCommitted(out().heldStatsBefore), mimallocCommitted(out().heldStats));
  });

  it("after free and mi_collect: lower, or absent with a warning when mimalloc's counter underflowed", () => {
    expect(out().trim.actions.map((a) => a.action)).toEqual(["mi_collect"]);
    const after = heapOf(out().trim.after);
    if (after.committedBytes === undefined) {
      expect(out().trim.after.warnings.map((w) => w.code)).toContain("MIMALLOC_COUNTER_INVALID");
    } else {
      expect(after.committedBytes).toBeLessThanOrEqual((heapOf(out().held).committedBytes as number) - 48 * MiB);
    }
  });
});
