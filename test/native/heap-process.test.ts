// Two process states in one test process keep their history apart: glibc's back-off, the trend of
// native-unclassified, the baseline, the reporters and snapshot()'s cache. Before HeapProcess these
// were module singletons, and only a fresh process could isolate a test.
import { afterEach, describe, expect, it, vi } from "vitest";
import { clearBaseline, collect, createProcess, registerMemoryReporter, snapshot } from "../../lib/index";

const claimed = (s: ReturnType<typeof collect>, name: string) =>
  s.breakdown?.parts.some((p) => p.children?.some((c) => c.name === "native-reported" && c.label === name)) ?? false;

describe("HeapProcess", () => {
  afterEach(() => {
    vi.useRealTimers();
    clearBaseline();
  });

  it("keeps reporters apart: one instance's reporter is in its readings only", () => {
    const a = createProcess();
    const b = createProcess();
    const off = a.registerMemoryReporter("only-in-a", () => ({ allocatedBytes: 1 << 20 }));
    try {
      expect(claimed(a.collect(), "only-in-a")).toBe(true);
      expect(claimed(b.collect(), "only-in-a")).toBe(false);
      expect(claimed(collect(), "only-in-a")).toBe(false);
      // The same name may be registered in each: they are separate registries.
      const offB = b.registerMemoryReporter("only-in-a", () => ({ allocatedBytes: 2 << 20 }));
      offB();
    } finally {
      off();
    }
    const offDefault = registerMemoryReporter("only-in-default", () => ({ allocatedBytes: 1 << 20 }));
    try {
      expect(claimed(collect(), "only-in-default")).toBe(true);
      expect(claimed(a.collect(), "only-in-default")).toBe(false);
    } finally {
      offDefault();
    }
  });

  it("keeps glibc's back-off apart: a repeated reader's reuse is its own", () => {
    const a = createProcess();
    const b = createProcess();
    const first = a.collectRepeated({ tier: "fast" });
    expect(first.heap?.allocator).toBe("glibc");
    expect(first.heap?.asOf).toBeUndefined();
    // This test process's heap walks in well under a millisecond, which the back-off lets repeat
    // at once; as if the walk had cost 5 ms (an interval of 10 s):
    a.allocators.walk.ran(5000);
    // Within its back-off, a's second repeated reading reuses a's walk and says from when...
    expect(a.collectRepeated({ tier: "fast" }).heap?.asOf).toBe(first.time);
    // ...while b has walked nothing yet: its first reading walks afresh.
    expect(b.collectRepeated({ tier: "fast" }).heap?.asOf).toBeUndefined();
  });

  it("keeps the trend apart: readings through one instance do not make another's line", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const a = createProcess();
    const b = createProcess();
    const start = Date.parse("2026-01-01T00:00:00Z");
    for (let i = 0; i < 4; i++) {
      vi.setSystemTime(start + i * 1000);
      a.collect({ tier: "fast" });
    }
    expect(a.trend.trend()?.points).toBe(4);
    expect(b.trend.trend()).toBeUndefined();
    vi.setSystemTime(start + 5000);
    b.collect({ tier: "fast" });
    expect(b.trend.trend()).toBeUndefined(); // one reading: no line yet
    expect(a.trend.trend()?.points).toBe(4);
  });

  it("keeps the baseline and the cached snapshot apart", () => {
    const a = createProcess();
    const b = createProcess();
    const set = a.setBaseline();
    expect(a.baseline()).toBe(set);
    expect(b.baseline()).toBeUndefined();
    const cached = a.snapshot({ maxAgeMs: 60_000 });
    expect(a.snapshot({ maxAgeMs: 60_000 })).toBe(cached);
    expect(b.snapshot({ maxAgeMs: 60_000 })).not.toBe(cached);
    expect(snapshot({ maxAgeMs: 60_000 })).not.toBe(cached);
  });
});
