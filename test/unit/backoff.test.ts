/** The back-off policy on a fake clock: no sleeping. */
import { describe, expect, it } from "vitest";
import { Backoff } from "../../lib/backoff";

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
