// heapstate/3: each value stored once, closed sets checked on the way in, and the files older
// versions wrote (frozen here: heapstate/1 from December 2026, heapstate/2 from the last writer of
// it, read from collect() of that build under glibc and jemalloc) read and upgraded.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSnapshot } from "../../lib/core/model/parse";
import { SCHEMA, type Snapshot } from "../../lib/core/model/types";

const dir = join(__dirname, "..", "fixtures", "snapshots");
type Json = Record<string, unknown> & {
  breakdown?: { rssBytes?: number; unattributedBytes: number; parts: Array<{ bytes: number }> };
  process?: { rssBytes?: number };
  allocators: Array<{
    allocator: string;
    activeBytes?: number;
    retainedBytes?: number;
    pages?: Record<string, number>;
  }>;
};
const raw = (file: string): Json => JSON.parse(readFileSync(join(dir, file), "utf8")) as Json;
const FILES = {
  "heapstate/1": ["standard-glibc.json", "deep-jemalloc.json"],
  "heapstate/2": ["v2-standard-glibc.json", "v2-deep-jemalloc.json"],
};
const sum = (s: Snapshot) => (s.breakdown?.parts ?? []).reduce((n, p) => n + p.bytes, 0);

describe("schema heapstate/3", () => {
  it("is what a reading is written as", () => {
    expect(SCHEMA).toBe("heapstate/3");
  });

  for (const [version, files] of Object.entries(FILES)) {
    for (const file of files) {
      it(`reads a ${version} file (${file}) and upgrades it: one RSS, one active and retained figure`, () => {
        const before = raw(file);
        expect(before.schema).toBe(version);
        const s = parseSnapshot(readFileSync(join(dir, file), "utf8"));
        expect(s.schema).toBe("heapstate/3");
        expect(s.warnings.filter((w) => w.code === "UPGRADED_SCHEMA")).toHaveLength(1);
        expect(s.warnings.filter((w) => w.code === "INVALID_FIELD")).toEqual([]);
        // The breakdown partitions process.rssBytes, which is the old breakdown's exact RSS.
        const oldRss = before.breakdown?.rssBytes;
        expect(oldRss).toEqual(expect.any(Number));
        expect(s.process?.rssBytes).toBe(oldRss);
        expect(Object.keys(s.breakdown ?? {})).not.toContain("rssBytes");
        expect(Object.keys(s.breakdown ?? {})).not.toContain("rssSource");
        expect(sum(s) + (s.breakdown?.unattributedBytes as number)).toBe(s.process?.rssBytes);
        expect(s.breakdown?.unattributedBytes).toBe(before.breakdown?.unattributedBytes);
        // jemalloc's active and retained bytes once, at the allocator, with the figures written.
        const oldJe = before.allocators.find((a) => a.allocator === "jemalloc");
        const je = s.allocators.find((a) => a.allocator === "jemalloc");
        if (oldJe) {
          expect(je?.activeBytes).toBe(oldJe.activeBytes ?? oldJe.pages?.activeBytes);
          expect(je?.retainedBytes).toBe(oldJe.retainedBytes ?? oldJe.pages?.retainedBytes);
          expect(Object.keys(je?.pages ?? {})).not.toContain("activeBytes");
          expect(Object.keys(je?.pages ?? {})).not.toContain("retainedBytes");
          expect(je?.pages?.dirtyBytes).toBe(oldJe.pages?.dirtyBytes);
        }
        // A heapstate/3 file round-trips exactly, and says nothing more.
        const again = parseSnapshot(JSON.stringify(s));
        expect(JSON.parse(JSON.stringify(again))).toEqual(JSON.parse(JSON.stringify(s)));
        expect(again.warnings).toEqual(s.warnings);
      });
    }
  }

  it("an old breakdown whose RSS differs from process's keeps adding up, to process's RSS", () => {
    const v2 = raw("v2-standard-glibc.json");
    const p = v2.process as { rssBytes: number };
    const b = v2.breakdown as { rssBytes: number; unattributedBytes: number };
    b.rssBytes = p.rssBytes + 4096; // edited by hand, or a writer that disagreed with itself
    b.unattributedBytes += 4096;
    const s = parseSnapshot(v2);
    expect(sum(s) + (s.breakdown?.unattributedBytes as number)).toBe(p.rssBytes);
  });

  it("only the breakdown's RSS in an old file: it becomes process's", () => {
    const v2 = raw("v2-standard-glibc.json");
    const rss = v2.breakdown?.rssBytes;
    delete (v2.process as Record<string, unknown>).rssBytes;
    const s = parseSnapshot(v2);
    expect(s.process?.rssBytes).toBe(rss);
    expect(sum(s) + (s.breakdown?.unattributedBytes as number)).toBe(rss);
  });

  it("a heapstate/3 breakdown with no RSS in process to partition is left out, said", () => {
    const s3 = JSON.parse(JSON.stringify(parseSnapshot(raw("v2-standard-glibc.json")))) as Json;
    delete (s3.process as Record<string, unknown>).rssBytes;
    const s = parseSnapshot(s3);
    expect(s.breakdown).toBeUndefined();
    expect(s.warnings.map((w) => w.message).join("\n")).toMatch(/snapshot\.breakdown has no RSS figure to partition/);
  });

  it("closed sets hold on the way in: an unknown allocator, finding, warning, part or region is left out, said", () => {
    const s3 = JSON.parse(JSON.stringify(parseSnapshot(raw("v2-deep-jemalloc.json")))) as Json & {
      findings: unknown[];
      warnings: unknown[];
      regions: Array<{ category: string }>;
    };
    s3.allocators.push({ allocator: "hoard", library: "/x.so" } as never);
    s3.findings = [{ id: "made-up", severity: "warn", message: "m", evidence: {} }];
    s3.warnings = [
      { source: "forged", code: "SOURCE_FAILED", message: "m" },
      { source: "v8", code: "MADE_UP", message: "m" },
      { source: 'reporter "cache"', code: "REPORTER_SLOW", message: "kept" },
    ];
    (s3.regions[0] as { category: string }).category = "mystery";
    const s = parseSnapshot(s3);
    expect(s.allocators.map((a) => a.allocator)).not.toContain("hoard");
    expect(s.findings).toEqual([]);
    expect(s.warnings.filter((w) => w.code !== "INVALID_FIELD").map((w) => w.message)).toEqual(["kept"]);
    expect(s.regions?.map((r) => r.category)).not.toContain("mystery");
    const said = s.warnings.filter((w) => w.code === "INVALID_FIELD").map((w) => w.message);
    expect(said.join("\n")).toMatch(/an allocator heapstate does not know \("hoard"\)/);
    expect(said.join("\n")).toMatch(/an id heapstate does not know \("made-up"\)/);
    expect(said.join("\n")).toMatch(/a source heapstate does not know \("forged"\)/);
    expect(said.join("\n")).toMatch(/a code heapstate does not know \("MADE_UP"\)/);
    expect(said.join("\n")).toMatch(/a category heapstate does not know \("mystery"\)/);
    const parts = JSON.parse(JSON.stringify(parseSnapshot(raw("v2-deep-jemalloc.json")))) as Json & {
      breakdown: { parts: Array<{ name: string }> };
    };
    (parts.breakdown.parts[0] as { name: string }).name = "made-up-part";
    expect(parseSnapshot(parts).breakdown).toBeUndefined();
  });
});
