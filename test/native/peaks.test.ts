/**
 * Peaks between readings: a 200 MiB spike, touched and freed between two sampler readings, is the
 * later reading's peak (the kernel's VmHWM, reset through /proc/self/clear_refs at each sample),
 * and not the next one's; without the reset the peak is since the process started, and stays.
 * The PeakConsumer's bookkeeping (several consumers, one resetting) is held in-process.
 */
import { describe, expect, it } from "vitest";
import { PeakConsumer } from "../../lib/core/judge/peaks";
import { collect } from "../../lib/index";
import { inBeforeAll, MiB, runChild } from "../helpers";

interface Out {
  samples: Array<{ rssBytes: number; peakRssBytes: number }>;
  spikeRss: number;
  after: number;
}

describe("a 200 MiB spike between two sampler readings", () => {
  const reset = inBeforeAll(() => runChild<Out>("peaks.cjs", ["reset"]));
  const keep = inBeforeAll(() => runChild<Out>("peaks.cjs", ["keep"]));

  it("with resetPeak: the next sample's peak holds it, the one after does not", () => {
    const { samples, spikeRss, after } = reset();
    const [, before, next, later] = samples as [unknown, Out["samples"][0], Out["samples"][0], Out["samples"][0]];
    // The spike was real and gone: RSS rose by 200 MiB and came back down.
    expect(spikeRss - before.rssBytes).toBeGreaterThanOrEqual(195 * MiB);
    expect(after - before.rssBytes).toBeLessThan(20 * MiB);
    expect(next.rssBytes - before.rssBytes).toBeLessThan(20 * MiB);
    expect(next.peakRssBytes).toBeGreaterThanOrEqual(spikeRss - 2 * MiB);
    expect(later.peakRssBytes - before.rssBytes).toBeLessThan(20 * MiB);
  });

  it("without it: the peak is since the process started, and keeps the spike", () => {
    const { samples, spikeRss } = keep();
    const later = samples[3] as Out["samples"][0];
    expect(later.peakRssBytes).toBeGreaterThanOrEqual(spikeRss - 2 * MiB);
  });
});

describe("PeakConsumer", () => {
  it("a reset by one consumer does not hide a peak from another, and each says since when", () => {
    const resetting = new PeakConsumer(true);
    const watching = new PeakConsumer(false);
    try {
      const first = collect({ tier: "fast" });
      watching.take(first);
      const since = first.peak?.since as string;
      expect(first.peak?.rssBytes).toBe(first.process?.peakRssBytes);
      // A high VmHWM seen by the resetting consumer before its reset...
      const s = collect({ tier: "fast" });
      (s.process as { peakRssBytes: number }).peakRssBytes = 10 * 1024 * MiB;
      resetting.take(s);
      expect(s.peak?.rssBytes).toBe(10 * 1024 * MiB);
      // ...is in the watcher's next peak, though the kernel's VmHWM was reset since.
      const t = collect({ tier: "fast" });
      watching.take(t);
      expect(t.peak?.rssBytes).toBe(10 * 1024 * MiB);
      expect(t.peak?.since).toBe(since);
      // The resetting consumer's next peak is since its own previous reading.
      const u = collect({ tier: "fast" });
      resetting.take(u);
      expect(u.peak?.since).toBe(s.time);
      expect(u.peak?.rssBytes).toBeLessThan(10 * 1024 * MiB);
    } finally {
      resetting.close();
      watching.close();
    }
  });
});
