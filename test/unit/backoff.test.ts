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
    b.ran(200_000); // 200 ms: 20 s
    expect(b.intervalMs()).toBe(20_000);
    now += 19_999;
    expect(b.due()).toBe(false);
    now += 1;
    expect(b.due()).toBe(true);
  });

  it("a cheap read after a costly one makes the next due at once", () => {
    let now = 0;
    const b = new Backoff(() => now);
    b.ran(50_000);
    now += 10_000;
    b.ran(10);
    expect(b.due()).toBe(true);
  });

  it("takes its policy", () => {
    let now = 0;
    const b = new Backoff(() => now, { budget: 0.1, freeBelowMicros: 100, minIntervalMs: 50 });
    b.ran(1_000); // 1 ms ÷ 10% = 10 ms < 50 ms
    expect(b.intervalMs()).toBe(50);
    now = 49;
    expect(b.due()).toBe(false);
    now = 50;
    expect(b.due()).toBe(true);
  });
});
