/** The findings' episodes and the comparison of two samples, on samples built here. */
import { describe, expect, it } from "vitest";
import type { FindingId } from "../../lib/core/model/types";
import { diffSamples, findingEpisodes } from "../../lib/faces/history";
import type { Sample } from "../../lib/faces/sampler";

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();

function sample(
  second: number,
  findings: Array<[FindingId, "info" | "warn"]> | undefined,
  extra: Partial<Sample> = {},
): Sample {
  return {
    time: at(second),
    tier: "standard",
    parts: {},
    costMicros: 1,
    ...(findings ? { findings: findings.map(([id, severity]) => ({ id, severity })) } : {}),
    ...extra,
  };
}

describe("findingEpisodes", () => {
  it("opens an episode where a finding first appears and closes it at the first sample without it", () => {
    const episodes = findingEpisodes([
      sample(0, [["swap-in-use", "info"]]),
      sample(1, [["swap-in-use", "warn"]]),
      sample(2, []),
      sample(3, [["near-cgroup-limit", "warn"]]),
      sample(4, [
        ["swap-in-use", "info"],
        ["near-cgroup-limit", "warn"],
      ]),
    ]);
    expect(episodes).toEqual([
      // Already raised in the oldest sample: it began before the history; its worst severity kept.
      { id: "swap-in-use", severity: "warn", tier: "standard", since: at(0), until: at(2), fromStart: true },
      { id: "near-cgroup-limit", severity: "warn", tier: "standard", since: at(3), fromStart: false },
      { id: "swap-in-use", severity: "info", tier: "standard", since: at(4), fromStart: false },
    ]);
  });

  it("a sample without a findings list neither opens nor closes one", () => {
    const episodes = findingEpisodes([
      sample(0, []),
      sample(1, [["swap-in-use", "info"]]),
      sample(2, undefined),
      sample(3, [["swap-in-use", "info"]]),
    ]);
    expect(episodes).toEqual([
      { id: "swap-in-use", severity: "info", tier: "standard", since: at(1), fromStart: false },
    ]);
    expect(findingEpisodes([])).toEqual([]);
  });
});

describe("findingEpisodes across tiers", () => {
  it("a finding is cleared only by a reading of the tier that last raised it", () => {
    const fast: Partial<Sample> = { tier: "fast" };
    const deep: Partial<Sample> = { tier: "deep" };
    const episodes = findingEpisodes([
      sample(0, [["glibc-releasable-now", "info"]], deep),
      sample(1, [["glibc-may-retain-freed-memory", "info"]], fast), // fast cannot judge releasable-now
      sample(2, [["glibc-releasable-now", "info"]], deep), // deep does not raise may-retain
      sample(3, [["glibc-may-retain-freed-memory", "info"]], fast),
      sample(4, [], deep), // releasable-now cleared by a deep reading
      sample(5, [], fast), // may-retain cleared by a fast one
      sample(6, [["swap-in-use", "info"]], fast),
      sample(7, [["swap-in-use", "info"]], deep), // raised by both tiers: the last one's tier clears it
      sample(8, [], fast),
      sample(9, [], deep),
    ]);
    expect(episodes).toEqual([
      { id: "glibc-releasable-now", severity: "info", tier: "deep", since: at(0), until: at(4), fromStart: true },
      {
        id: "glibc-may-retain-freed-memory",
        severity: "info",
        tier: "fast",
        since: at(1),
        until: at(5),
        fromStart: false,
      },
      { id: "swap-in-use", severity: "info", tier: "deep", since: at(6), until: at(9), fromStart: false },
    ]);
  });
});

describe("diffSamples", () => {
  it("every figure either sample has, with the change where both have it", () => {
    const a = sample(0, [["swap-in-use", "info"]], {
      rssBytes: 100,
      allocatedBytes: 40,
      parts: { "v8-heap": 30, code: 20 },
      unattributedBytes: 5,
    });
    const b = sample(10, [["near-cgroup-limit", "warn"]], {
      rssBytes: 160,
      parts: { "v8-heap": 50, stacks: 4 },
      unattributedBytes: 2,
    });
    const d = diffSamples(a, b);
    expect(d.elapsedMs).toBe(10_000);
    expect(d.changes).toEqual([
      { path: "rssBytes", before: 100, after: 160, delta: 60 },
      { path: "allocatedBytes", before: 40 },
      { path: "parts.v8-heap", before: 30, after: 50, delta: 20 },
      { path: "parts.code", before: 20 },
      { path: "parts.stacks", after: 4 },
      { path: "unattributedBytes", before: 5, after: 2, delta: -3 },
    ]);
    expect(d.findingsRaised).toEqual(["near-cgroup-limit"]);
    expect(d.findingsCleared).toEqual(["swap-in-use"]);
    expect(d.notes).toEqual([]);
  });

  it("does not compare the parts of samples read in different tiers, and says so", () => {
    const a = sample(0, [], { rssBytes: 1, parts: { file: 9 } });
    const b = sample(1, [], { tier: "fast", rssBytes: 2, parts: { file: 7 } });
    const d = diffSamples(a, b);
    expect(d.changes.map((c) => c.path)).toEqual(["rssBytes"]);
    expect(d.notes.join(" ")).toMatch(/different tiers \(standard, fast\)/);
  });
});
