/** Findings across a process tree, on rows built here: a finding several workers share, and one process growing alone. */
import { describe, expect, it } from "vitest";
import type { FindingId } from "../../lib/core/model/types";
import { commonFindings, growthFindings } from "../../lib/core/read/host-tree";
import type { HostProcess, ProcessTree } from "../../lib/core/read/host-view";

const MiB = 1024 * 1024;
const row = (pid: number, pssMiB: number, findings?: FindingId[]): HostProcess => ({
  pid,
  command: "node worker.js",
  node: true,
  pssBytes: pssMiB * MiB,
  source: findings ? "agent" : "procfs",
  ...(findings ? { agent: { allocator: "glibc", findings } } : {}),
});
const tree = (processes: HostProcess[], time = "2026-12-01T00:00:00.000Z"): ProcessTree => ({
  time,
  tier: "standard",
  root: 1,
  processes,
  totals: { processes: processes.length, rssBytes: 0, withoutPss: 0 },
  pssShare: {},
  findings: [],
});

describe("commonFindings", () => {
  it("names a finding that two or more processes raise in their own readings, with their pids", () => {
    const f = commonFindings([
      row(10, 100, ["glibc-retains-freed-memory", "swap-in-use"]),
      row(11, 100, ["glibc-retains-freed-memory"]),
      row(12, 100, ["glibc-retains-freed-memory"]),
      row(13, 100), // no agent: not counted
    ]);
    expect(f).toHaveLength(1);
    expect(f[0]?.id).toBe("tree-common-finding");
    expect(f[0]?.message).toBe(
      "3 of the 3 processes read by their agents raise glibc-retains-freed-memory (10, 11, 12): one cause, to fix once",
    );
    expect(commonFindings([row(10, 1, ["swap-in-use"]), row(11, 1, [])])).toEqual([]);
  });
});

describe("growthFindings", () => {
  it("names the one process that grew past 16 MiB and 20% while the others stayed within 5%", () => {
    const first = tree([row(10, 100), row(11, 100), row(12, 100)]);
    const now = tree([row(10, 150), row(11, 102), row(12, 99)], "2026-12-01T00:01:00.000Z");
    const f = growthFindings(first, now);
    expect(f.map((x) => x.evidence)).toEqual([{ pid: 10, fromBytes: 100 * MiB, toBytes: 150 * MiB, flat: 2 }]);
  });

  it("says nothing when several grow, when the growth is small, or when nothing else is flat", () => {
    const first = tree([row(10, 100), row(11, 100), row(12, 100)]);
    expect(growthFindings(first, tree([row(10, 150), row(11, 150), row(12, 100)]))).toEqual([]);
    expect(growthFindings(first, tree([row(10, 110), row(11, 100), row(12, 100)]))).toEqual([]);
    expect(growthFindings(first, tree([row(10, 150), row(11, 120), row(12, 80)]))).toEqual([]);
  });
});
