/**
 * Auto-trim on a fragmented 1 GiB glibc heap, in a child: the first check trims, and what it
 * releases (the kernel's RSS, read by the child before and after) is within 25 % of what the
 * estimate promised; the pause is measured and within the bound asked for. With a bound below the
 * predicted pause it does not trim, and says why. Its record is in the readings and the metrics
 * while it runs, and gone once stopped.
 */
import { describe, expect, it } from "vitest";
import type { AutoTrimState } from "../../lib/core/model/types";
import { prometheusText } from "../../lib/faces/metrics/prometheus";
import { collect, startAutoTrim } from "../../lib/index";
import { inBeforeAll, MiB, requireLib, runChild } from "../helpers";

interface Out {
  state: AutoTrimState;
  blocked?: boolean;
  deepWarnings?: string[];
  before: number;
  after: number;
  inReading: AutoTrimState;
  stoppedAfter: AutoTrimState | null;
}

describe("auto-trim on a fragmented 1 GiB heap", () => {
  // A bound no prediction reaches, even on a loaded machine (the walk alone took seconds under a
  // parallel suite in CI): this child must trim.
  const trimmed = inBeforeAll(() => runChild<Out>("autotrim.cjs", ["60000"]), 180_000);
  // The default bound (50 ms): malloc_trim takes about 105–113 ms of CPU on this heap here.
  const bounded = inBeforeAll(() => runChild<Out>("autotrim.cjs", ["50"]), 180_000);

  it("releases what the estimate said, within 25 %, in a pause measured and within the bound", () => {
    const { state, before, after, inReading, stoppedAfter } = trimmed();
    expect(state.trims, `skipped: ${JSON.stringify(state.lastSkip)}`).toBe(1);
    const last = state.lastTrim as NonNullable<AutoTrimState["lastTrim"]>;
    const promised = last.promisedBytes as number;
    expect(promised).toBeGreaterThanOrEqual(256 * MiB);
    const kernel = before - after;
    expect(Math.abs(kernel - promised)).toBeLessThanOrEqual(0.25 * promised);
    expect(Math.abs((last.releasedBytes as number) - kernel)).toBeLessThanOrEqual(0.05 * kernel + 4 * MiB);
    expect(last.pauseMs).toBeGreaterThan(0);
    expect(last.pauseMs).toBeLessThanOrEqual(state.maxPauseMs);
    expect(last.predictedPauseMs).toBeLessThanOrEqual(state.maxPauseMs);
    expect(state.releasedBytes).toBe(last.releasedBytes);
    expect(inReading.trims).toBe(1);
    expect(stoppedAfter).toBeNull();
  });

  it("does not trim when the predicted pause is above maxPauseMs, and says so", () => {
    const { state, before, after } = bounded();
    expect(state.trims).toBe(0);
    expect(state.skippedPause).toBe(1);
    expect(state.lastSkip?.reason).toBe("pause");
    expect(state.lastSkip?.predictedPauseMs as number).toBeGreaterThan(50);
    expect(before - after).toBeLessThan(32 * MiB);
  });
});

describe("the pause model: the CPU time malloc_trim then takes is at most 2× the prediction, at least a quarter", () => {
  // The shapes the model was checked on; each child trims once, at any size, with no bound.
  for (const [shape, blocks, size, how] of [
    ["the README's heap: a million 200-byte blocks, one in ten kept, then 20 000 of 8 KiB freed", 0, 0, "readme"],
    ["one large free chunk of 512 MiB", 65536, 8192, "large"],
    ["1 GiB of small free chunks: 8 million, every other one freed", 16_000_000, 120, "small"],
  ] as const) {
    const out = inBeforeAll(() => runChild<Out>("autotrim.cjs", ["60000", String(blocks), how, String(size)]), 180_000);
    it(shape, () => {
      const { state } = out();
      expect(state.trims, JSON.stringify(state.lastSkip)).toBe(1);
      const last = state.lastTrim as NonNullable<AutoTrimState["lastTrim"]>;
      const cpu = last.pauseCpuMs as number;
      expect(cpu, JSON.stringify(last)).toBeGreaterThan(0);
      // Within 2×; predicted below a millisecond, under 20 ms, far below the 50 ms a trim may
      // pause: there the reading cannot say what the trim will walk. The 8 million small chunks
      // lie in the small bins malloc_trim passes over, or in the unsorted bin it walks, as the
      // mallocs between the reading and the trim leave them: 0.9 to 3.1 ms in six runs, 13.4 ms in
      // one under Node 26 in CI, against 0.26 to 0.41 predicted.
      if (last.predictedPauseMs < 1) {
        expect(cpu, JSON.stringify(last)).toBeLessThan(20);
      } else {
        // At most 2× the prediction; at least a quarter of it (over-predicting holds a trim back,
        // the safe side): the per-call cost is this machine's (4 µs), and one whose system calls
        // cost less (1.7 µs on an earlier one) takes less.
        const ratio = cpu / last.predictedPauseMs;
        expect(ratio, JSON.stringify(last)).toBeGreaterThanOrEqual(1 / 4);
        expect(ratio, JSON.stringify(last)).toBeLessThanOrEqual(2);
      }
    });
  }
});

describe("auto-trim with nothing to hold a trim to", () => {
  // 64 MiB of blocks, half freed: above the floor once measured, so only the missing measure skips.
  const blocked = inBeforeAll(() => runChild<Out>("autotrim.cjs", ["60000", "8192", "blocked"]), 120_000);
  it("glibc's main arena outside [heap]: no trim, counted as unmeasured, and the reading says why", () => {
    const { state, blocked: placed, deepWarnings } = blocked();
    expect(placed).toBe(true);
    expect(deepWarnings).toContain("GLIBC_ARENA_OUTSIDE_HEAP");
    expect(state.trims).toBe(0);
    expect(state.skippedBelowFloor).toBe(0);
    expect(state.skippedUnmeasured).toBeGreaterThanOrEqual(1);
    expect(state.lastSkip).toEqual({ time: expect.any(String), reason: "unmeasured" });
  });
});

describe("auto-trim under mimalloc: its promise is the segments it caches", () => {
  // 200 blocks of 1 MiB, all freed but the last: segments freed whole, which mi_collect(true) unmaps.
  const out = inBeforeAll(
    () => runChild<Out>("autotrim.cjs", ["60000", "200", "large", String(MiB)], { LD_PRELOAD: requireLib("mimalloc") }),
    120_000,
  );

  it("trims, releasing what it promised within 25 % as the kernel counts it, its pause at most 2× the prediction", () => {
    const { state, before, after } = out();
    expect(state.trims, JSON.stringify(state.lastSkip)).toBe(1);
    const last = state.lastTrim as NonNullable<AutoTrimState["lastTrim"]>;
    const promised = last.promisedBytes as number;
    // 200 MiB freed; what stays in mimalloc's cache as whole segments varies (93 to 155 MiB seen).
    expect(promised).toBeGreaterThanOrEqual(64 * MiB);
    expect(Math.abs((last.releasedBytes as number) - promised), JSON.stringify(last)).toBeLessThanOrEqual(
      0.25 * promised,
    );
    // The kernel's fall from before the first check also holds the free spans mimalloc decommitted meanwhile.
    expect(before - after).toBeGreaterThanOrEqual(0.75 * promised);
    // At most 2× the prediction, at least a quarter (over-predicting holds a trim back, the safe
    // side): unmapping whole segments took 4–5 ms of CPU here and 11–26 ms on an earlier machine.
    const ratio = (last.pauseCpuMs as number) / last.predictedPauseMs;
    expect(ratio, JSON.stringify(last)).toBeGreaterThanOrEqual(1 / 4);
    expect(ratio, JSON.stringify(last)).toBeLessThanOrEqual(2);
  });
});

describe("startAutoTrim in this process", () => {
  it("its record is in every reading and in the metrics while it runs; one at a time; bad options refused", () => {
    const auto = startAutoTrim({ intervalMs: 60_000 });
    try {
      expect(collect({ tier: "fast" }).autoTrim).toMatchObject({ baseIntervalMs: 60_000, trims: 0 });
      const text = prometheusText(collect({ tier: "fast" }));
      expect(text).toMatch(/^# TYPE heapstate_autotrim_trims_total counter$/m);
      expect(text).toMatch(/^heapstate_autotrim_trims_total 0$/m);
      expect(text).toMatch(/^heapstate_autotrim_skipped_total\{heapstate_autotrim_reason="pause"\} 0$/m);
      expect(text).toMatch(/^heapstate_autotrim_skipped_total\{heapstate_autotrim_reason="unmeasured"\} 0$/m);
      expect(() => startAutoTrim()).toThrow(/already running/);
    } finally {
      auto.stop();
    }
    expect(auto.running).toBe(false);
    expect(collect({ tier: "fast" }).autoTrim).toBeUndefined();
    expect(prometheusText(collect({ tier: "fast" }))).not.toContain("heapstate_autotrim_trims_total 0");
    for (const bad of [{ intervalMs: 5 }, { minReleasableBytes: -1 }, { maxPauseMs: Number.NaN }, { every: 1 }]) {
      expect(() => startAutoTrim(bad as never)).toThrow(expect.objectContaining({ code: "INVALID_OPTION" }));
    }
  });
});
