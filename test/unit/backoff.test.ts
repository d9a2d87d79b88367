/** The back-off policy on a fake clock (no sleeping), and what a read is said to cost. */
import { describe, expect, it } from "vitest";
import { Backoff, costSince, nowMicros, threadCpu } from "../../lib/core/base/backoff";

describe("Backoff", () => {
  it("a read that costs under 1 ms is always due", () => {
    const now = 0;
    const b = new Backoff(() => now);
    expect(b.due()).toBe(true);
    b.ran(999);
    expect(b.intervalMs()).toBe(0);
    expect(b.due()).toBe(true);
  });

  it("a costly read is repeated after 10 s, or after its cost ÷ 1% when that is longer", () => {
    let now = 1_000;
    const b = new Backoff(() => now);
    b.ran(5_000); // 5 ms: 5 ms ÷ 1% = 0.5 s < 10 s
    expect(b.intervalMs()).toBe(10_000);
    now += 9_999;
    expect(b.due()).toBe(false);
    now += 1;
    expect(b.due()).toBe(true);
    b.ran(15_000); // 15 ms: 1.5 s < 10 s
    expect(b.intervalMs()).toBe(10_000);
    expect(b.held).toBe(false);
  });

  it("a read that stalled past 20 ms is not repeated by the back-off, until one that runs anyway is cheaper", () => {
    let now = 0;
    const b = new Backoff(() => now);
    b.ran(20_000); // at the bound: repeated, every 10 s
    expect(b.held).toBe(false);
    expect(b.intervalMs()).toBe(10_000);
    b.ran(20_001);
    expect(b.held).toBe(true);
    expect(b.intervalMs()).toBe(Number.POSITIVE_INFINITY);
    now += 24 * 3600 * 1000;
    expect(b.due()).toBe(false);
    b.ran(3_000); // a one-shot reading walked, and it was cheap
    expect(b.held).toBe(false);
    now += 10_000;
    expect(b.due()).toBe(true);
  });

  it("a cheap read after a costly one makes the next due at once", () => {
    let now = 0;
    const b = new Backoff(() => now);
    b.ran(15_000);
    now += 10_000;
    b.ran(10);
    expect(b.due()).toBe(true);
  });

  it("takes its policy", () => {
    let now = 0;
    const b = new Backoff(() => now, { budget: 0.1, freeBelowMicros: 100, minIntervalMs: 50, stallBoundMicros: 1e9 });
    b.ran(1_000); // 1 ms ÷ 10% = 10 ms < 50 ms
    expect(b.intervalMs()).toBe(50);
    now = 49;
    expect(b.due()).toBe(false);
    now = 50;
    expect(b.due()).toBe(true);
  });
});

describe("a read's cost", () => {
  it("is this thread's CPU time over it when there is a thread clock, its wall time when that is less or there is none", () => {
    let cpu = 1_000_000;
    const clock = { threadCpuMicros: () => cpu };
    const start = [nowMicros(), threadCpu(clock)] as const;
    cpu += 200;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    // 20 ms passed on the wall; the thread ran for 200 µs of it.
    expect(costSince(...start, clock)).toBe(200);
    // A clock that reads more than the wall (it cannot, but a broken one may) is not believed.
    cpu += 1e9;
    expect(costSince(...start, clock)).toBeGreaterThanOrEqual(20_000);
    expect(costSince(...start, clock)).toBeLessThan(1e9);
    // No clock, or one that refused (NaN): the wall time.
    const none = [nowMicros(), threadCpu(undefined)] as const;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    expect(costSince(...none, undefined)).toBeGreaterThanOrEqual(19_000);
    const refused = { threadCpuMicros: () => Number.NaN };
    const r = [nowMicros(), threadCpu(refused)] as const;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    expect(costSince(...r, refused)).toBeGreaterThanOrEqual(19_000);
  });
});

describe("a read timed with as few system calls as it can", () => {
  const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

  it("asks the CPU clock first, then times cheap reads by the wall clock alone", () => {
    const b = new Backoff(() => 0);
    let cpu = 5_000;
    const clock = { threadCpuMicros: () => cpu };
    expect(b.wantsCpuClock).toBe(true);
    const start = [nowMicros(), threadCpu(clock)] as const;
    cpu += 150;
    sleep(1); // the wall time is more: the CPU time is taken
    b.record(...start, clock);
    expect(b.lastCost).toBe(150);
    expect(b.wantsCpuClock).toBe(false);
    // A cheap read timed by the wall clock alone: its wall time is its cost.
    b.record(nowMicros() - 300, Number.NaN, undefined);
    expect(b.lastCost).toBeGreaterThanOrEqual(300);
    expect(b.lastCost).toBeLessThan(1_000);
    expect(b.wantsCpuClock).toBe(false);
  });

  it("a wall time past the free bound is not taken for the cost (descheduling): the next read asks the CPU clock", () => {
    let now = 0;
    const b = new Backoff(() => now);
    b.record(nowMicros() - 100, Number.NaN, undefined);
    expect(b.lastCost).toBeLessThan(1_000);
    expect(b.wantsCpuClock).toBe(true); // never asked yet
    const c = new Backoff(() => now);
    let cpu = 0;
    const clock = { threadCpuMicros: () => cpu };
    c.record(nowMicros(), threadCpu(clock), clock); // cheap: the wall clock alone from now on
    expect(c.wantsCpuClock).toBe(false);
    const wallStart = nowMicros();
    sleep(5); // 5 ms on the wall, no CPU: descheduled, not costly
    c.record(wallStart, Number.NaN, undefined);
    expect(c.lastCost).toBeLessThan(1_000); // not recorded as 5 ms
    expect(c.due()).toBe(true); // not held back
    expect(c.wantsCpuClock).toBe(true);
    // Timed by the CPU clock: really costly now, so it backs off and stays timed by the CPU clock.
    const s2 = [nowMicros(), threadCpu(clock)] as const;
    cpu += 5_000;
    sleep(6);
    c.record(...s2, clock);
    expect(c.lastCost).toBe(5_000);
    expect(c.due()).toBe(false);
    expect(c.wantsCpuClock).toBe(true);
    now += 10_000;
    // Cheap again by the CPU clock: the wall clock alone next time.
    const s3 = [nowMicros(), threadCpu(clock)] as const;
    cpu += 100;
    sleep(1);
    c.record(...s3, clock);
    expect(c.lastCost).toBe(100);
    expect(c.wantsCpuClock).toBe(false);
  });
});
