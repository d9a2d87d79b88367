/**
 * The breakdown on live processes under each allocator: parts + unattributed = RSS exactly, and
 * 200 MiB of touched Buffers land in the native heap's part, not in the unattributed remainder.
 * glibc's retention finding appears with fragmented free memory and goes away after trim(); the
 * glibc walk backs off on a heap with many free chunks.
 */
import { describe, expect, it } from "vitest";
import type { BreakdownPart, Finding, Snapshot, Warning } from "../../lib/core/model/types";
import { inBeforeAll, MiB, type PreloadName, requireLib, runChild } from "../helpers";
import { expectHonestNumbers } from "../unit/honest";

const GROWTH = 200 * MiB;

function sumsExactly(s: Snapshot): void {
  const b = s.breakdown;
  expect(b).toBeDefined();
  if (!b) return;
  expect(s.process?.rssSource).toBe("smaps_rollup");
  expect(b.parts.reduce((n, p) => n + p.bytes, 0) + b.unattributedBytes).toBe(s.process?.rssBytes);
}

function part(s: Snapshot, name: string): number {
  const p = s.breakdown?.parts.find((x) => x.name === name);
  expect(p, `${name} in ${JSON.stringify(s.breakdown?.parts.map((x) => x.name))}`).toBeDefined();
  return p?.bytes ?? Number.NaN;
}

const cases: Array<[string, PreloadName | undefined, string]> = [
  ["glibc", undefined, "native-in-use"],
  ["jemalloc", "jemalloc", "native-in-use"],
  ["tcmalloc", "tcmalloc", "native-in-use"],
  ["mimalloc", "mimalloc", "native-committed"],
];

describe.each(cases)("reconciliation under %s", (name, preload, nativePart) => {
  const out = inBeforeAll(() =>
    runChild<{ before: Snapshot; after: Snapshot }>(
      "reconcile.cjs",
      [],
      preload ? { LD_PRELOAD: requireLib(preload) } : {},
    ),
  );

  it("reads the right allocator and honest numbers", () => {
    expect(out().after.heap?.allocator).toBe(name);
    expectHonestNumbers(out().before);
    expectHonestNumbers(out().after);
  });

  it("parts and the unattributed remainder add up to RSS exactly", () => {
    sumsExactly(out().before);
    sumsExactly(out().after);
  });

  it(`200 MiB of touched Buffers grow ${nativePart} by about 200 MiB, not the remainder`, () => {
    const grew = part(out().after, nativePart) - part(out().before, nativePart);
    // "About": allocators that keep free committed pages (mimalloc) grow by a little less.
    expect(grew).toBeGreaterThanOrEqual(GROWTH - 16 * MiB);
    expect(grew).toBeLessThanOrEqual(GROWTH + 16 * MiB);
    const rssGrew = (out().after.process?.rssBytes ?? 0) - (out().before.process?.rssBytes ?? 0);
    expect(rssGrew).toBeGreaterThanOrEqual(GROWTH - 8 * MiB);
    const unattributed =
      (out().after.breakdown?.unattributedBytes ?? 0) - (out().before.breakdown?.unattributedBytes ?? 0);
    expect(Math.abs(unattributed)).toBeLessThanOrEqual(16 * MiB);
  });
});

describe("glibc retention finding", () => {
  const out = inBeforeAll(() =>
    runChild<{ freed: { findings: Finding[]; warnings: Warning[] }; trimmed: { findings: Finding[] } }>(
      "glibc-trim.cjs",
    ),
  );

  it("appears when freed memory is kept resident, with the bytes a trim would release", () => {
    const f = out().freed.findings.find((x) => x.id === "glibc-releasable-now");
    const seen = JSON.stringify({ findings: out().freed.findings, warnings: out().freed.warnings });
    expect(f?.severity, seen).toBe("warn");
    expect(f?.message, seen).toMatch(/trim\(\) would give about/);
    // Whole free pages: trim() is the remedy, not fewer arenas or another allocator.
    expect(f?.message).not.toMatch(/MALLOC_ARENA_MAX/);
    expect(f?.evidence.mainArenaFreeResidentBytes).toBeGreaterThanOrEqual(140 * MiB);
  });

  it("is gone after trim()", () => {
    expect(out().trimmed.findings.map((x) => x.id)).not.toContain("glibc-releasable-now");
  });
});

describe("glibc walk back-off", () => {
  interface Pick {
    time: string;
    asOf?: string;
    cost: number;
    raw?: Record<string, unknown>;
  }
  const out = inBeforeAll(() =>
    runChild<{
      first: Pick;
      second: Pick;
      third: Pick;
      oneShot: Pick;
      later: Pick;
      held: {
        first: Pick & { warnings: string[] };
        later: Pick & { warnings: string[] };
        oneShot: Pick;
        bound: number;
      };
      interval: number;
      faces: { cached?: string; cachedAgain?: string; collected?: string };
      deepFirst: { asOf?: string; parts: BreakdownPart[]; findings: Finding[] };
      deepSecond: { asOf?: string; parts: BreakdownPart[]; findings: Finding[] };
    }>("backoff.cjs"),
  );

  it("the first reading walks the free lists (and it is expensive)", () => {
    expect(out().first.asOf).toBeUndefined();
    expect(out().first.raw?.ordblks).toBeGreaterThan(100_000);
    expect(out().first.cost).toBeGreaterThan(1000);
    // 10 s, or the walk's cost ÷ 1% when that is longer
    expect(out().interval).toBeGreaterThanOrEqual(10_000);
  });

  it("a repeated reader's next readings reuse it, say how old it is, and cost a fraction", () => {
    for (const s of [out().second, out().third]) {
      expect(s.asOf).toBe(out().first.time);
      expect(s.raw).toEqual(out().first.raw);
      expect(s.cost).toBeLessThan(out().first.cost / 4);
    }
  });

  it("a one-shot reading walks even inside the back-off", () => {
    expect(out().oneShot.asOf).toBeUndefined();
    expect(out().oneShot.cost).toBeGreaterThan(1000);
  });

  it("once the back-off has passed (on the reader's clock), it walks again", () => {
    expect(out().later.asOf).toBeUndefined();
    expect(out().later.cost).toBeGreaterThan(1000);
  });

  it("a walk that stalled past the bound is not repeated by a repeated reader, which says so; a one-shot reading walks", () => {
    const { first, later, oneShot, bound } = out().held;
    expect(first.asOf).toBeUndefined();
    // The precondition: this walk did pass the bound.
    expect(first.cost).toBeGreaterThan(bound);
    expect(later.asOf).toBe(first.time);
    expect(later.warnings).toContain("GLIBC_WALK_HELD");
    expect(first.warnings).not.toContain("GLIBC_WALK_HELD");
    expect(oneShot.asOf).toBeUndefined();
  });

  it("parts built on a reused walk say how old they are, and what was a warning is only info", () => {
    const fresh = out().deepFirst;
    expect(fresh.asOf).toBeUndefined();
    expect(fresh.findings.find((f) => f.id === "glibc-main-arena-fragmentation")?.severity).toBe("warn");
    const reused = out().deepSecond;
    expect(reused.asOf).toEqual(expect.any(String));
    for (const p of reused.parts) {
      expect(p.asOf, p.name).toBe(reused.asOf);
      expect(p.source, p.name).toMatch(/\[figures from \d+\.\d s earlier\]$/);
    }
    const f = reused.findings.find((x) => x.id === "glibc-main-arena-fragmentation");
    expect(f?.severity).toBe("info");
    expect(f?.message).toMatch(/glibc's figures are from \d+\.\d s earlier: not raised as a warning/);
    expect(reused.findings.filter((x) => x.severity === "warn")).toEqual([]);
  });

  it("snapshot() reuses within the back-off, collect() never does", () => {
    expect(out().faces.cached ?? out().faces.cachedAgain).toBeDefined();
    expect(out().faces.collected).toBeUndefined();
  });
});
