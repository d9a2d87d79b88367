/**
 * glibc's main arena outside `[heap]`: the arithmetic that decides whether the kernel's evidence
 * covers the arenas, and the `[heap]` size read again from maps. The real case (the program break
 * blocked by a mapping) is test/native/page-states.test.ts's.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { arenaBytesOutsideMappings } from "../../lib/core/allocators/glibc";
import { withHeldBackGlibcFree } from "../../lib/core/model/breakdown";
import type { AllocatorState, Breakdown, BreakdownBound, Warning } from "../../lib/core/model/types";
import { measuredFree } from "../../lib/core/read/allocator-reading";
import { readPlan } from "../../lib/core/read/options";
import { readBreakHeapBytes } from "../../lib/core/read/sources";

const MiB = 1 << 20;
const state = (raw: Record<string, unknown>): AllocatorState => ({
  allocator: "glibc",
  library: "libc.so.6",
  servesMalloc: true,
  raw,
});
const arena = (nr: number, systemBytes: number) => ({ nr, systemBytes, fastFreeBytes: 0, restFreeBytes: 0 });

describe("arena memory beyond the mappings the kernel names", () => {
  const evidence = { arenaRssBytes: 0, mainArenaSizeBytes: 3 * MiB, threadArenasSizeBytes: 128 * MiB };

  it("from malloc_info: the main arena's system bytes beyond [heap]'s size", () => {
    const info = { arenas: [arena(0, 163 * MiB), arena(1, 1 * MiB), arena(2, 2 * MiB)] };
    expect(arenaBytesOutsideMappings(state({ malloc_info: info, arena: 166 * MiB }), evidence)).toBe(160 * MiB);
    const inside = { arenas: [arena(0, 3 * MiB), arena(1, 1 * MiB)] };
    expect(arenaBytesOutsideMappings(state({ malloc_info: inside }), evidence)).toBe(0);
    // [heap] larger than the arena (something else moved the break): nothing outside, not negative.
    expect(arenaBytesOutsideMappings(state({ malloc_info: { arenas: [arena(0, MiB)] } }), evidence)).toBe(0);
  });

  it("without malloc_info: all arenas (mallinfo2 arena) beyond [heap] and the 64 MiB heaps", () => {
    expect(arenaBytesOutsideMappings(state({ arena: 200 * MiB }), evidence)).toBe(69 * MiB);
    expect(arenaBytesOutsideMappings(state({ arena: 100 * MiB }), evidence)).toBe(0);
    // Without malloc_info the 64 MiB heaps' reserved tails count as room: a sound test, not a sharp one.
    expect(arenaBytesOutsideMappings(state({ arena: 10 * MiB }), { ...evidence, mainArenaSizeBytes: 0 })).toBe(0);
    // No [heap] and no other arenas: everything is outside.
    expect(
      arenaBytesOutsideMappings(state({ arena: 10 * MiB }), {
        arenaRssBytes: 0,
        mainArenaSizeBytes: 0,
        threadArenasSizeBytes: 0,
      }),
    ).toBe(10 * MiB);
  });

  it("undefined when a figure is missing", () => {
    expect(arenaBytesOutsideMappings(state({ arena: 10 * MiB }), { arenaRssBytes: 0 })).toBeUndefined();
    expect(arenaBytesOutsideMappings(state({}), evidence)).toBeUndefined();
    expect(
      arenaBytesOutsideMappings(state({ arena: 10 * MiB }), { arenaRssBytes: 0, mainArenaSizeBytes: 0 }),
    ).toBeUndefined();
  });
});

describe("[heap]'s size from maps", () => {
  const root = mkdtempSync(join(tmpdir(), "heapstate-maps-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const read = (pid: number, maps: string | undefined) => {
    mkdirSync(join(root, String(pid)), { recursive: true });
    if (maps !== undefined) writeFileSync(join(root, String(pid), "maps"), maps);
    return readBreakHeapBytes(readPlan({ pid, procRoot: root }));
  };
  const line = (start: number, end: number, path = "") =>
    `${start.toString(16)}-${end.toString(16)} rw-p 00000000 00:00 0${path ? `                          ${path}` : ""}\n`;

  it("the [heap] line's end − start, wherever it falls in the file", () => {
    const heap = line(0x12c2b000, 0x12e40000, "[heap]");
    expect(read(11, heap)).toBe(0x12e40000 - 0x12c2b000);
    // After 70 KiB of long lines: across the reader's 64 KiB chunks, and as the last line unterminated.
    const long = line(0x400000, 0x401000, `/opt/${"x".repeat(4000)}`).repeat(18);
    expect(read(12, long + heap.trimEnd())).toBe(0x12e40000 - 0x12c2b000);
  });

  it("0 without a [heap] line; undefined when maps cannot be read", () => {
    expect(read(13, line(0x400000, 0x401000, "/usr/bin/node") + line(0x7f0000000000, 0x7f0000001000))).toBe(0);
    expect(read(14, undefined)).toBeUndefined();
    // A path that merely contains the word is not the heap.
    expect(read(15, line(0x400000, 0x401000, "/tmp/[heap].bak"))).toBe(0);
    expect(read(16, line(0x400000, 0x401000, "/tmp/[heap]"))).toBe(0);
    // Garbage of 1 MiB on one line, then the heap: the heap is still found.
    expect(read(17, `${"x".repeat(1 << 20)}\n${line(0x1000, 0x3000, "[heap]")}`)).toBe(0x2000);
  });
});

describe("measured, or said to be unmeasurable", () => {
  const info = (main: number) => ({ arenas: [{ nr: 0, systemBytes: main, fastFreeBytes: 0, restFreeBytes: MiB }] });
  const glibc = (main: number): AllocatorState => ({
    allocator: "glibc",
    library: "libc.so.6",
    servesMalloc: true,
    pages: { freeBytes: MiB },
    raw: { uordblks: main - MiB, arena: main, malloc_info: info(main) },
  });
  const evidence = (heap: number) => ({
    arenaRssBytes: heap,
    mainArenaRssBytes: heap,
    threadArenasRssBytes: 0,
    mainArenaSizeBytes: heap,
    threadArenasSizeBytes: 0,
    pageBytes: 4096,
  });

  it("a break that moved between smaps and the walk: looked at again, the figures stand", () => {
    for (const second of [0, "moving"] as const) {
      const warnings: Warning[] = [];
      let asked = 0;
      const s = measuredFree(glibc(40 * MiB), evidence(32 * MiB), warnings, () => {
        asked++;
        return second;
      });
      expect(asked).toBe(1);
      expect(warnings).toEqual([]);
      expect(s).not.toBe("held-back");
      expect((s as AllocatorState | undefined)?.pages?.dirtyBytes).toBeDefined();
    }
  });

  it("a break that could not grow: no figures, and a warning with how much lies outside", () => {
    const warnings: Warning[] = [];
    const s = measuredFree(glibc(40 * MiB), evidence(8 * MiB), warnings, () => 32 * MiB);
    expect(s).toBeUndefined();
    expect(warnings.map((w) => w.code)).toEqual(["GLIBC_ARENA_OUTSIDE_HEAP"]);
    expect(warnings[0]?.message).toContain("32.0 MiB");
    // The second look failed (maps unreadable, the walk threw): the first look stands.
    const first: Warning[] = [];
    expect(measuredFree(glibc(40 * MiB), evidence(8 * MiB), first, () => undefined)).toBeUndefined();
    expect(first[0]?.message).toContain("32.0 MiB");
  });

  it("a second look the back-off forbids (a repeated reader's reused walk): neither figures nor a warning", () => {
    const warnings: Warning[] = [];
    expect(measuredFree(glibc(40 * MiB), evidence(8 * MiB), warnings, () => "held-back")).toBe("held-back");
    expect(warnings).toEqual([]);
  });

  it("the bound of a reading held back says a one-shot deep reading measures it; other bounds are left as they are", () => {
    const b: Breakdown = {
      parts: [],
      unattributedBytes: 0,
      bounds: [
        { name: "native-free", atMostBytes: 8 * MiB, source: "s", confirm: "the deep tier measures it" },
        { name: "other", atMostBytes: MiB, source: "t", confirm: "c" } as unknown as BreakdownBound,
      ],
    };
    const held = withHeldBackGlibcFree(b);
    expect(held.bounds?.[0]?.confirm).toMatch(/not measured in this reading, which reused glibc's last walk/);
    expect(held.bounds?.[0]?.confirm).toContain('a one-shot deep reading measures it (collect({ tier: "deep" })');
    expect(held.bounds?.[1]?.confirm).toBe("c");
    expect(b.bounds?.[0]?.confirm).toBe("the deep tier measures it");
    const none: Breakdown = { parts: [], unattributedBytes: 1 };
    expect(withHeldBackGlibcFree(none)).toBe(none);
  });

  it("less than glibc's smallest mapping beyond [heap]: measured, no second look", () => {
    const s = measuredFree(glibc(32 * MiB + 512 * 1024), evidence(32 * MiB), [], () => {
      throw new Error("looked again");
    });
    expect((s as AllocatorState | undefined)?.pages?.dirtyBytes).toBeDefined();
  });
});
