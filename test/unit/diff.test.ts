/**
 * diff() on saved snapshots whose identity differs: the allocator, the tier, the process. What
 * differs in who was read comes first; what one side could not have is not compared; the top
 * growers are the process's own resident figures (never VmSize, a peak or the whole cgroup).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { diff } from "../../lib/core/model/diff";
import { parseSnapshot } from "../../lib/core/model/parse";
import type { Snapshot } from "../../lib/core/model/types";
import { formatDiff } from "../../lib/faces/format";
import { fixtures, MiB } from "../helpers";

const load = (f: string) => parseSnapshot(readFileSync(join(fixtures, "snapshots", f), "utf8"));
const glibc = load("standard-glibc.json");
const jemalloc = load("deep-jemalloc.json");

describe("diff", () => {
  it("glibc standard → jemalloc deep: identity first, a note for each, no parts or allocator counters compared", () => {
    const d = diff(glibc, jemalloc);
    expect(d.identity.map((c) => c.what)).toEqual(expect.arrayContaining(["allocator", "library", "tier", "pid"]));
    expect(d.identity.find((c) => c.what === "allocator")).toEqual({
      what: "allocator",
      before: "glibc",
      after: "jemalloc",
    });
    expect(d.notes.join("\n")).toMatch(/tiers differ \(standard → deep\)/);
    expect(d.notes.join("\n")).toMatch(/allocator serving malloc differs \(glibc → jemalloc\)/);
    const paths = d.changes.map((c) => c.path);
    expect(paths.filter((p) => p.startsWith("heap.") || p.startsWith("regions."))).toEqual([]);
    expect(paths.filter((p) => p.startsWith("breakdown."))).toEqual([]);
    const text = formatDiff(d);
    const firstFigure = text.split("\n").findIndex((l) => /^ {2}\w+\.\w+/.test(l));
    expect(text.split("\n").findIndex((l) => l.startsWith("what differs"))).toBeLessThan(firstFigure);
  });

  it("the top growers are resident figures of the process: not VmSize, peaks or the cgroup", () => {
    const a = structuredClone(glibc) as Snapshot;
    const b = structuredClone(glibc) as Snapshot;
    if (!a.process || !b.process || !b.cgroup) throw new Error("fixture lacks process or cgroup");
    b.process.vmSizeBytes = (a.process.vmSizeBytes ?? 0) + 4096 * MiB;
    b.process.peakRssBytes = (a.process.peakRssBytes ?? 0) + 900 * MiB;
    b.cgroup.usageBytes += 800 * MiB;
    b.process.rssBytes = (a.process.rssBytes ?? 0) + 3 * MiB;
    const d = diff(a, b);
    expect(d.identity).toEqual([]);
    expect(d.topGrowers.map((c) => c.path)).toEqual(["process.rssBytes"]);
    expect(d.changes.map((c) => c.path)).toEqual(
      expect.arrayContaining(["process.vmSizeBytes", "process.peakRssBytes", "cgroup.usageBytes"]),
    );
  });

  it("the same reading's parts are compared when tier and allocator agree", () => {
    const b = structuredClone(jemalloc) as Snapshot;
    const part = b.breakdown?.parts.find((p) => p.name === "native-in-use");
    if (!part || !b.breakdown) throw new Error("fixture lacks native-in-use");
    part.bytes += 10 * MiB;
    b.breakdown.unattributedBytes -= 10 * MiB;
    const d = diff(jemalloc, b);
    expect(d.notes).toEqual([]);
    expect(d.topGrowers[0]).toEqual(expect.objectContaining({ path: "breakdown.native-in-use", delta: 10 * MiB }));
  });
});

describe("diff of native allocation sites", () => {
  const sites = (list: Array<[string, number]>, complete: boolean): Snapshot["nativeSites"] => ({
    source: "jemalloc prof.dump",
    sampleIntervalBytes: 524288,
    estimatedBytes: list.reduce((n, [, b]) => n + b, 0),
    samples: 100,
    sites: list.map(([symbol, bytes]) => ({
      bytes,
      plusMinusBytes: bytes / 10,
      objects: 1,
      samples: 100,
      owner: "addon" as const,
      library: "x.node",
      frames: [{ symbol, library: "x.node" }],
    })),
    complete,
    costMicros: 1000,
  });
  const pair = (a: Snapshot["nativeSites"], b: Snapshot["nativeSites"], pidB = glibc.pid) => {
    const x = structuredClone(glibc) as Snapshot;
    const y = structuredClone(glibc) as Snapshot;
    if (a) x.nativeSites = a;
    if (b) y.nativeSites = b;
    y.pid = pidB;
    return diff(x, y);
  };

  it("gives each site's change with its ±, largest growth first; a site a complete list lacks counts 0 there", () => {
    const d = pair(
      sites(
        [
          ["leak", 64 * MiB],
          ["other", 2 * MiB],
        ],
        true,
      ),
      sites([["other", 10 * MiB]], true),
    );
    expect(d.sites?.map((c) => c.site)).toEqual(["other (x.node)", "leak (x.node)"]);
    expect(d.sites?.[0]).toMatchObject({ before: 2 * MiB, after: 10 * MiB, delta: 8 * MiB });
    expect(d.sites?.[0]?.plusMinus).toBe(Math.round(Math.hypot(0.2 * MiB, 1 * MiB)));
    expect(d.sites?.[1]).toMatchObject({ before: 64 * MiB, after: 0, delta: -64 * MiB });
    expect(formatDiff(d)).toMatch(
      /native allocation sites[^\n]*\n\s+other \(x\.node\)\s+2\.0 MiB → +10\.0 MiB\s+\+8\.0 MiB ± /,
    );
  });

  it("claims no change for a site missing from a list of only the largest sites", () => {
    const d = pair(sites([["leak", 64 * MiB]], true), sites([["other", 10 * MiB]], false));
    expect(d.sites?.find((c) => c.site === "leak (x.node)")).toEqual({
      site: "leak (x.node)",
      owner: "addon",
      before: 64 * MiB,
    });
    expect(formatDiff(d)).toMatch(/leak \(x\.node\).*one side lists only its largest sites/);
  });

  it("compares sites within one process and one source only, and says so", () => {
    expect(pair(sites([["a", 1]], true), sites([["a", 2]], true), glibc.pid + 1).sites).toBeUndefined();
    expect(pair(sites([["a", 1]], true), sites([["a", 2]], true), glibc.pid + 1).notes.join()).toMatch(
      /within one process/,
    );
    expect(pair(sites([["a", 1]], true), undefined).notes.join()).toMatch(
      /only one reading has native allocation sites/,
    );
    expect(pair(undefined, undefined).sites).toBeUndefined();
  });
});
