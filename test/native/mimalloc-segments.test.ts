/**
 * mimalloc 2.0's free memory, read from its segment headers (it counts no in-use bytes): held to
 * what the child did (200 MiB written and freed), to mimalloc's own printer (its committed bytes),
 * and to the kernel (the RSS trim() gives back, read by the child around it). Under another
 * allocator the walk must find no segment at all.
 */
import { describe, expect, it } from "vitest";
import type { PageStates } from "../../lib/core/model/types";
import { inBeforeAll, MiB, mimallocCommitted, type PreloadName, requireLib, runChild } from "../helpers";

interface Out {
  allocator: string;
  built: { walkCommitted: number; printed: string; segments: number };
  freed: { segments: number; freeResident: number; cached: number; walkCommitted: number; printed: string };
  deep: { pages?: PageStates; warnings: string[] };
  trim: { promised?: number; released?: number; rssFall: number };
}

const run = (preload?: PreloadName) =>
  runChild<Out>("mimalloc-segments.cjs", [], preload ? { LD_PRELOAD: requireLib(preload) } : {});

describe("mimalloc's segments (LD_PRELOAD libmimalloc.so.2)", () => {
  const out = inBeforeAll(() => run("mimalloc"));

  it("sees as much committed memory as mimalloc's own printer counts", () => {
    for (const step of [out().built, out().freed]) {
      const printed = mimallocCommitted(step.printed);
      expect(step.segments).toBeGreaterThan(0);
      // The printer runs just after the walk (its own text is malloc'd in between), and other
      // threads allocate, free and decommit meanwhile: a segment whose header changes while it is
      // read does not chain and is left out, and mimalloc counts some memory outside its segments
      // (each thread's data). Seen in CI: 2 % under the printer (Node 22) and 3 MiB over it (Node 24).
      const detail = JSON.stringify({ walk: step.walkCommitted, printed });
      expect(Math.abs(step.walkCommitted - printed), detail).toBeLessThanOrEqual(Math.max(8 * MiB, 0.04 * printed));
    }
  });

  it("finds the 200 MiB freed as free and resident, and says so in the deep reading", () => {
    const { freed, deep } = out();
    expect(freed.freeResident).toBeGreaterThanOrEqual(190 * MiB);
    // No more than what was freed, beside what mimalloc had free before (a few MiB).
    expect(freed.freeResident).toBeLessThanOrEqual(212 * MiB);
    expect(deep.warnings).not.toContain("MIMALLOC_WALK_INCOMPLETE");
    // The deep reading comes later: mimalloc may have decommitted some of it meanwhile (its delay
    // passed, and the reading itself allocated in those segments), never more than was free.
    expect(deep.pages?.dirtyBytes).toBeGreaterThanOrEqual(0.75 * freed.freeResident);
    expect(deep.pages?.dirtyBytes).toBeLessThanOrEqual(freed.freeResident + 16 * MiB);
    expect(deep.pages?.releasableBytes).toBeGreaterThan(0);
  });

  it("promises what trim() gives back (the cached segments), within 25 % of the kernel's fall", () => {
    const { trim } = out();
    expect(trim.promised).toBeGreaterThan(100 * MiB);
    const promised = trim.promised as number;
    expect(trim.rssFall).toBeGreaterThanOrEqual(0.75 * promised);
    expect(trim.rssFall).toBeLessThanOrEqual(1.25 * promised);
  });
});

describe("the walk under other allocators finds no segment", () => {
  for (const preload of [undefined, "jemalloc", "tcmalloc"] as const) {
    it(preload ?? "glibc", () => {
      const o = run(preload);
      expect(o.allocator).toBe(preload ?? "glibc");
      expect(o.built.segments).toBe(0);
      expect(o.freed.segments).toBe(0);
      expect(o.deep.warnings).not.toContain("MIMALLOC_WALK_INCOMPLETE");
    });
  }
});
