/** collect()/snapshot() options, errors and caching, in this (glibc) process. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { collect, HeapstateError, snapshot } from "../../lib/index";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HeapstateError);
    return (e as HeapstateError).code;
  }
  return undefined;
}

describe("collect()", () => {
  it("returns the contract's keys and measures its own cost", () => {
    const s = collect();
    expect(s.schema).toBe("heapstate/1");
    expect(s.pid).toBe(process.pid);
    expect(s.tier).toBe("standard");
    expect(new Date(s.time).toISOString()).toBe(s.time);
    expect(s.costMicros).toBeGreaterThan(0);
    expect(s.heap?.allocator).toBe("glibc");
    expect(s.allocators[0]).toBe(s.heap);
    expect(s.warnings).toEqual([]);
  });

  it("deep tier counts glibc's arenas from malloc_info", () => {
    const s = collect({ tier: "deep" });
    expect(s.heap?.arenas).toBeGreaterThanOrEqual(1);
    expect(s.heap?.asOf).toBeUndefined();
    // A fast reading right after either reuses that reading (and says so) or reads no malloc_info.
    const fast = collect({ tier: "fast" });
    if (fast.heap?.asOf === undefined) expect(fast.heap?.arenas).toBeUndefined();
    else expect(fast.heap.asOf).toBe(s.time);
  });

  it("rejects bad options with INVALID_OPTION naming the option", () => {
    expect(codeOf(() => collect({ tier: "full" as never }))).toBe("INVALID_OPTION");
    expect(codeOf(() => collect({ pid: -1 }))).toBe("INVALID_OPTION");
    expect(codeOf(() => collect({ pid: "1" as never }))).toBe("INVALID_OPTION");
    expect(codeOf(() => collect("deep" as never))).toBe("INVALID_OPTION");
    expect(() => collect({ teir: "deep" } as never)).toThrow(/unknown option "teir"/);
  });

  it("another process: kernel figures only, and a clear error when it does not exist", () => {
    const other = collect({ pid: process.ppid });
    expect(other.heap).toBeUndefined();
    expect(other.allocators).toEqual([]);
    expect(other.process?.rssBytes).toBeGreaterThan(0);
    expect(other.warnings.map((w) => w.code)).toEqual(["ALLOCATOR_NOT_READABLE_FROM_OUTSIDE"]);
    const empty = mkdtempSync(join(tmpdir(), "heapstate-proc-"));
    expect(codeOf(() => collect({ pid: 4242, procRoot: empty } as never))).toBe("NO_SUCH_PROCESS");
  });

  it("own process with unreadable procfs: a warning, and the allocator state still stands", () => {
    const empty = mkdtempSync(join(tmpdir(), "heapstate-proc-"));
    const s = collect({ procRoot: empty } as never);
    expect(s.process).toBeUndefined();
    expect(s.warnings.map((w) => `${w.source}:${w.code}`)).toEqual([
      "status:PROCFS_UNREADABLE",
      "cgroup:CGROUP_UNREADABLE",
      "smaps_rollup:PROCFS_UNREADABLE",
    ]);
    expect(s.v8?.heapUsedBytes).toBeGreaterThan(0);
    expect(s.heap?.allocator).toBe("glibc");
  });
});

describe("snapshot()", () => {
  it("serves the cached snapshot inside the window and a new one after", async () => {
    const a = snapshot({ maxAgeMs: 60_000 });
    expect(a.tier).toBe("fast");
    expect(snapshot({ maxAgeMs: 60_000 })).toBe(a);
    await new Promise((r) => setTimeout(r, 5));
    const b = snapshot({ maxAgeMs: 1 });
    expect(b).not.toBe(a);
    expect(b.time >= a.time).toBe(true);
  });

  it("rejects a bad maxAgeMs", () => {
    expect(codeOf(() => snapshot({ maxAgeMs: -1 }))).toBe("INVALID_OPTION");
    expect(codeOf(() => snapshot({ maxAgeMs: Number.NaN }))).toBe("INVALID_OPTION");
  });
});
