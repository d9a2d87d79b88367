/**
 * Exhausted resources in real processes: a full descriptor table (EMFILE) before the addon was
 * ever loaded, reads that fail with ENOMEM, and process.memoryUsage() failing. collect(),
 * snapshot() and trim() return a reading with a warning naming what could not be read, and once
 * the resources are back, the next reading is whole: the addon's transient load failure was not
 * remembered.
 */
import { describe, expect, it } from "vitest";
import { runChild } from "../helpers";

interface Attempt {
  ok: boolean;
  error?: string;
  heap?: string;
  rss?: number;
  v8?: number;
  warnings?: Array<{ code: string; source: string; message: string }>;
}

function codes(a: Attempt): string[] {
  return (a.warnings ?? []).map((w) => `${w.source}:${w.code}`);
}

describe("a full descriptor table", () => {
  it("collect, snapshot, trim and the deep tier return with warnings; freed, the addon loads and all is read", () => {
    const out = runChild<{ held: number; full: Record<string, Attempt>; freed: Attempt }>("exhausted.cjs", ["emfile"]);
    expect(out.held).toBeGreaterThan(10);
    for (const [name, a] of Object.entries(out.full)) {
      expect(a.ok, `${name}: ${a.error}`).toBe(true);
      expect(a.heap, name).toBeUndefined();
      expect(a.v8, name).toBeGreaterThan(0); // V8's own statistics need no descriptor
      expect(codes(a), name).toContain("native:NATIVE_NOT_LOADED");
      expect(codes(a), name).toContain("status:RESOURCE_EXHAUSTED");
      const native = a.warnings?.find((w) => w.source === "native");
      expect(native?.message, name).toMatch(/EMFILE: the descriptor table is full\); the next reading tries again/);
    }
    expect(codes(out.full.deep as Attempt)).toContain("smaps:RESOURCE_EXHAUSTED");
    expect(out.freed.ok).toBe(true);
    expect(out.freed.heap).toBe("glibc");
    expect(out.freed.rss).toBeGreaterThan(0);
    expect(out.freed.warnings).toEqual([]);
  });
});

describe("failed reads and a failing process.memoryUsage()", () => {
  it("ENOMEM on every read, then memoryUsage() throwing: readings with warnings, then whole again", () => {
    const out = runChild<Record<"procfs" | "trimmed" | "usage" | "after", Attempt>>("exhausted.cjs", ["enomem"]);
    for (const name of ["procfs", "trimmed"] as const) {
      const a = out[name];
      expect(a.ok, `${name}: ${a.error}`).toBe(true);
      expect(a.rss, name).toBeUndefined();
      expect(codes(a), name).toContain("status:RESOURCE_EXHAUSTED");
      expect(codes(a), name).toContain("smaps_rollup:RESOURCE_EXHAUSTED");
    }
    expect(out.usage.ok, out.usage.error).toBe(true);
    expect(out.usage.rss).toBeGreaterThan(0);
    expect(out.usage.warnings?.find((w) => w.source === "v8")?.message).toMatch(/process\.memoryUsage\(\) failed/);
    expect(out.after.ok).toBe(true);
    expect(out.after.heap).toBe("glibc");
    expect(out.after.warnings).toEqual([]);
  });
});
