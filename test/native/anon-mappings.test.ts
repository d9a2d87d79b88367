/**
 * The anonymous memory no other part holds (`anon-mappings`): what native code maps itself is found
 * there, as the kernel's Rss of that mapping says; and a dropped JSON.parse, whose young generation
 * V8 keeps pooled outside total_physical_size, leaves the deep tier's remainder within
 * max(4 MiB, 3 %) of RSS at every reading, not in the remainder with no word.
 */
import { describe, expect, it } from "vitest";
import type { Breakdown } from "../../lib/core/model/types";
import { inBeforeAll, MiB, printerAddon, runChild } from "../helpers";

const part = (b: Breakdown | undefined, name: string) => b?.parts.find((p) => p.name === name)?.bytes;

describe("anon-mappings: memory native code maps itself", () => {
  const out = inBeforeAll(() =>
    runChild<{ before: { breakdown: Breakdown }; after: { breakdown: Breakdown }; mappingRss: number }>(
      "anon-mappings.cjs",
      ["native"],
      { HEAPSTATE_TEST_PRINTER: printerAddon },
    ),
  );
  it("grows by the kernel's Rss of the mapping, and the remainder does not", () => {
    const { before, after, mappingRss } = out();
    expect(mappingRss).toBe(48 * MiB);
    const grew = (part(after.breakdown, "anon-mappings") ?? 0) - (part(before.breakdown, "anon-mappings") ?? 0);
    // V8 may grow or give back a page or two between the readings.
    expect(Math.abs(grew - mappingRss), JSON.stringify(after.breakdown.parts)).toBeLessThanOrEqual(4 * MiB);
    expect(Math.abs(after.breakdown.unattributedBytes - before.breakdown.unattributedBytes)).toBeLessThanOrEqual(
      4 * MiB,
    );
    const p = after.breakdown.parts.find((x) => x.name === "anon-mappings");
    expect(p?.estimated).toBe(true);
    expect(p?.source).toMatch(/^smaps Rss of anonymous mappings/);
  });
});

describe("anon-mappings: a dropped JSON.parse with V8's default young generation", () => {
  const out = inBeforeAll(() =>
    runChild<{ readings: Array<{ breakdown: Breakdown; rssBytes: number }>; dropped: boolean }>(
      "anon-mappings.cjs",
      ["dropped-json"],
      {
        HEAPSTATE_TEST_PRINTER: printerAddon,
      },
    ),
  );
  it("leaves |unattributed| within max(4 MiB, 3 % of RSS) at every deep reading", () => {
    const { readings, dropped } = out();
    expect(dropped).toBe(true);
    expect(readings).toHaveLength(4);
    for (const [i, r] of readings.entries()) {
      const b = r.breakdown;
      const limit = Math.max(4 * MiB, 0.03 * r.rssBytes);
      expect(
        Math.abs(b.unattributedBytes),
        `reading ${i}: ${JSON.stringify(b.parts.map((p) => [p.name, p.bytes]))}`,
      ).toBeLessThanOrEqual(limit);
    }
  });
});
