/**
 * The trim promise against the release trim() then measures, under glibc: on a heap fragmented by
 * random frees (few whole free pages) and on one whose memory was all freed below a pinned top.
 * Two promises are checked: the deep reading's (its releasable part, what the finding says) before
 * the first trim, and trim()'s own (`promisedBytes`, from the reading just before malloc_trim) for
 * both trims. Each is within 25 % of the measured release, with a floor of 2 MiB; after a trim,
 * nothing promises the release trim just failed to make.
 *
 * The deep reading's promise is not held against the second trim: trim()'s own reading before it
 * allocates and frees a few MiB, reusing pages the first trim had returned, and the second trim
 * returns those (5 MiB here). For the second trim the promise must not promise more than the trim
 * then returns (by 2 MiB at most); it may promise less by up to 8 MiB: a collection that happens to
 * run between the promise and the trim mallocs its worklists and frees them (6.5 MiB seen under
 * Node 24), and the trim returns those pages too.
 */
import { describe, expect, it } from "vitest";
import type { BreakdownPart, Finding } from "../../lib/core/model/types";
import { inBeforeAll, MiB, runChild } from "../helpers";

interface Round {
  promisedBytes?: number;
  trimPromisedBytes?: number;
  promiseSource?: string;
  deepFindings: Finding[];
  releasedBytes: number;
  kernelReleasedBytes: number;
  beforeFindings: Finding[];
  afterFindings: Finding[];
  afterParts?: BreakdownPart[];
}

function expectPromiseKept(r: Round, label: string, promise: number | undefined = r.promisedBytes): void {
  expect(promise, `${label}: no promise`).toEqual(expect.any(Number));
  const promised = promise as number;
  const bound = Math.max(0.25 * Math.abs(r.releasedBytes), 2 * MiB);
  expect(
    Math.abs(promised - r.releasedBytes),
    `${label}: promised ${promised}, released ${r.releasedBytes}`,
  ).toBeLessThanOrEqual(bound);
  // The kernel read around trim() (outside its own readings) agrees with what trim() measured.
  expect(Math.abs(r.kernelReleasedBytes - r.releasedBytes), label).toBeLessThanOrEqual(
    Math.max(0.25 * r.releasedBytes, 4 * MiB),
  );
}

describe.each(["fragmented", "everything", "untouched"])("the trim promise: %s", (workload) => {
  // As in the truth suite: no V8 background thread moves RSS between trim()'s two readings.
  const out = inBeforeAll(() =>
    runChild<{ rounds: Round[] }>("trim-promise.cjs", [workload], {}, ["--max-semi-space-size=1", "--single-threaded"]),
  );
  const rounds = () => out().rounds as [Round, Round];

  it("the first promise is within its bound of what trim() releases", () => {
    const [first] = rounds();
    expectPromiseKept(first, "first trim, the deep reading's promise");
    expectPromiseKept(first, "first trim, trim()'s own promise", first.trimPromisedBytes);
    if (workload === "everything" || workload === "untouched") {
      // 160 MiB freed below a pinned top; or 125 MiB freed between blocks never written (whose
      // pages are not resident: Rss − in use would see almost nothing free).
      expect(first.releasedBytes).toBeGreaterThan((workload === "everything" ? 128 : 100) * MiB);
      const f = first.beforeFindings.find((x) => x.id === "glibc-releasable-now");
      expect(f?.severity).toBe("warn");
      expect(Math.abs((f?.evidence.releasableBytes as number) - first.releasedBytes)).toBeLessThanOrEqual(
        0.25 * first.releasedBytes,
      );
    } else {
      // Most free memory is fragmented: the promise is small, and what trim cannot return is said apart.
      expect(first.promisedBytes as number).toBeLessThan(64 * MiB);
      expect(first.deepFindings.find((x) => x.id === "glibc-main-arena-fragmentation")?.severity).toBe("warn");
      expect(first.deepFindings.map((x) => x.id)).not.toContain("glibc-releasable-now");
    }
  });

  it("after the trim, no finding promises a release; a second trim releases what the second promise said", () => {
    const [first, second] = rounds();
    expect(first.afterFindings.map((x) => x.id)).not.toContain("glibc-releasable-now");
    const releasable = first.afterParts?.find((p) => p.name === "native-free-releasable");
    if (releasable) expect(releasable.bytes).toBeLessThan(8 * MiB);
    const promised = second.trimPromisedBytes as number;
    if (workload === "untouched") {
      // Between blocks never written, what the readings and collections malloc after the first
      // trim lands in the freed slots and touches pages the trim had returned: a second trim
      // returns those (17–23 MiB here; a collection between trim()'s promise and its release adds
      // its worklists, 20 MiB seen under Node 24). Neither promise may promise more than it returns.
      expect(second.promisedBytes as number, "the deep reading over-promises").toBeLessThanOrEqual(
        second.releasedBytes + 2 * MiB,
      );
      expect(promised, "second trim, trim()'s own promise").toEqual(expect.any(Number));
      expect(promised - second.releasedBytes, "over-promise").toBeLessThanOrEqual(2 * MiB);
      return;
    }
    expect(second.promisedBytes as number).toBeLessThan(8 * MiB);
    expect(promised, "second trim, trim()'s own promise").toEqual(expect.any(Number));
    expect(promised, "it promises no release the first trim failed to make").toBeLessThan(8 * MiB);
    expect(promised - second.releasedBytes, "over-promise").toBeLessThanOrEqual(2 * MiB);
    expect(second.releasedBytes - promised, "under-promise").toBeLessThanOrEqual(8 * MiB);
  });
});
