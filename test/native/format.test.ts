/** formatHuman, diff/formatDiff and parseSnapshot. */
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../lib/core/model/types";
import { prometheusText } from "../../lib/faces/metrics/prometheus";
import { collect, diff, formatDiff, formatHuman, HeapstateError, parseSnapshot } from "../../lib/index";
import { MiB } from "../helpers";

describe("formatHuman", () => {
  it("fits one terminal screen and shows every section that was measured", () => {
    const s = collect();
    const text = formatHuman(s);
    const lines = text.split("\n");
    expect(lines.length).toBeLessThanOrEqual(40);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(160);
    expect(text).toMatch(/^rss {2,}\d/m);
    if (s.cgroup) expect(text).toMatch(/^cgroup v[12] /m);
    expect(text).toContain("heap (the allocator that serves malloc):");
    expect(text).toContain("where the RSS is (");
    expect(text).toMatch(/^ {2}unattributed {2,}/m);
  });

  it("keeps whole lines unless asked to wrap (a log is not a terminal); wraps at the width it is given", () => {
    const s = collect();
    const whole = formatHuman(s).split("\n");
    // The parts' sources run past 100 columns: not cut by default.
    expect(whole.some((l) => l.length > 100)).toBe(true);
    const wrapped = formatHuman(s, { width: 80 }).split("\n");
    for (const line of wrapped) expect(line.length).toBeLessThanOrEqual(80);
    expect(wrapped.length).toBeGreaterThan(whole.length);
  });

  it("says (unknown) for what was not measured, never 0", () => {
    const s = collect();
    delete s.process?.swapBytes;
    expect(formatHuman(s)).toMatch(/^swap +\(unknown\)$/m);
  });
});

describe("diff", () => {
  it("finds a 64 MiB allocation among the top growers", () => {
    const a = collect();
    const held = Buffer.allocUnsafe(64 * MiB).fill(1);
    const b = collect();
    const d = diff(a, b);
    expect(held.length).toBe(64 * MiB);
    expect(d.samePid).toBe(true);
    const allocated = d.changes.find((c) => c.path === "heap.allocatedBytes");
    expect(allocated?.delta).toBeGreaterThanOrEqual(62 * MiB); // the rest of the process may free a little meanwhile
    // Many figures grow by the same 64 MiB (RSS, anon, PSS, cgroup usage, VmSize, the heap); which
    // five lead depends on the Node version's own noise. What must hold: the top growers are that
    // allocation, and the heap's growth ties with the fifth of them (it is left out only by a tie).
    expect(d.topGrowers).toHaveLength(5);
    for (const c of d.topGrowers) expect(c.delta).toBeGreaterThanOrEqual(62 * MiB);
    const fifth = d.topGrowers[4]?.delta as number;
    expect(allocated?.delta).toBeGreaterThanOrEqual(fifth - 2 * MiB);
    const first = d.topGrowers[0]?.path.replace(/\./g, "\\.");
    expect(formatDiff(d)).toMatch(new RegExp(`^ {2}${first} +.* \\+6\\d\\.\\d MiB$`, "m"));
  });

  it("keeps one side's figure when the other did not measure it, without a delta", () => {
    const a = collect({ tier: "fast" });
    const b = collect({ tier: "standard" });
    const pss = diff(a, b).changes.find((c) => c.path === "process.pssBytes");
    expect(pss?.before).toBeUndefined();
    expect(pss?.after).toBeGreaterThan(0);
    expect(pss?.delta).toBeUndefined();
  });
});

describe("parseSnapshot", () => {
  it("reads back what collect() wrote", () => {
    const s = collect();
    expect(parseSnapshot(JSON.stringify(s))).toEqual(JSON.parse(JSON.stringify(s)));
  });

  it("accepts an older file with missing keys (absent stays absent) and keeps unknown keys", () => {
    const old = {
      schema: "heapstate/2",
      time: "2026-01-01T00:00:00.000Z",
      pid: 42,
      tier: "fast",
      costMicros: 5,
      futureKey: { x: 1 },
    };
    const s = parseSnapshot(JSON.stringify(old)) as Snapshot & { futureKey: unknown };
    expect(s.heap).toBeUndefined();
    expect(s.breakdown).toBeUndefined();
    expect(s.allocators).toEqual([]);
    expect(s.futureKey).toEqual({ x: 1 });
  });

  it("drops byte figures that are not numbers, with a warning", () => {
    const s = parseSnapshot({
      schema: "heapstate/3",
      time: "2026-01-01T00:00:00.000Z",
      pid: 42,
      tier: "standard",
      process: { rssBytes: "lots", swapBytes: -5, pssBytes: 100 },
      warnings: [],
    });
    expect(s.process).toEqual({ pssBytes: 100 });
    expect(s.warnings.map((w) => w.code)).toEqual(["INVALID_FIELD", "INVALID_FIELD"]);
  });

  it("rejects what is not a snapshot, with the package's error and a clear reason", () => {
    const bad: Array<[unknown, RegExp]> = [
      ["not json", /not JSON/],
      ["[1,2]", /expected a JSON object, received an array/],
      ["{}", /not a heapstate snapshot/],
      [{ schema: "prometheus/1", pid: 1, time: "2026-01-01T00:00:00Z" }, /not a heapstate snapshot/],
      [{ schema: "heapstate/3", pid: -3, time: "2026-01-01T00:00:00Z" }, /"pid" must be a positive integer/],
      [{ schema: "heapstate/3", pid: 3, time: "yesterday" }, /"time" must be an ISO-8601 time/],
    ];
    for (const [input, reason] of bad) {
      let error: unknown;
      try {
        parseSnapshot(input);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HeapstateError);
      expect((error as HeapstateError).code).toBe("INVALID_SNAPSHOT");
      expect((error as Error).message).toMatch(reason);
    }
  });
});

describe("a value that is not a snapshot", () => {
  it("formatHuman, diff and prometheusText throw INVALID_SNAPSHOT naming the call and what they got", () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => formatHuman(undefined as unknown as Snapshot), /^formatHuman\(snapshot\): .* received undefined$/],
      [
        () => diff(collect({ tier: "fast" }), null as unknown as Snapshot),
        /^diff\(before, after\): after: .* received null$/,
      ],
      [() => prometheusText({ pid: "1" } as unknown as Snapshot), /^prometheusText\(snapshot\): .* received object$/],
    ];
    for (const [call, message] of cases) {
      let thrown: unknown;
      try {
        call();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(HeapstateError);
      expect((thrown as HeapstateError).code).toBe("INVALID_SNAPSHOT");
      expect((thrown as Error).message).toMatch(message);
    }
  });
});
