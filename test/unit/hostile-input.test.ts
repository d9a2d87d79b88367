/**
 * Saved snapshots and diffs from hostile or broken sources: arbitrary JSON and bytes, real
 * snapshots with parts replaced by anything, values JSON cannot hold (cycles, BigInt, functions,
 * proxies, getters that throw), nesting a million deep, and inputs with a million rows. Whatever
 * parseSnapshot accepts, every face can format; whatever it rejects is HeapstateError.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeapstateError } from "../../lib/core/base/errors";
import { diff } from "../../lib/core/model/diff";
import { parseSnapshot } from "../../lib/core/model/parse";
import type { Snapshot } from "../../lib/core/model/types";
import { main } from "../../lib/faces/cli";
import { formatDiff, formatHuman } from "../../lib/faces/format";
import { prometheusText } from "../../lib/faces/metrics/prometheus";
import { fixtures } from "../helpers";

const saved = ["deep-jemalloc.json", "standard-glibc.json"].map((f) =>
  JSON.parse(readFileSync(join(fixtures, "snapshots", f), "utf8")),
) as Array<Record<string, unknown>>;

/** parseSnapshot, then every face that reads a snapshot; only HeapstateError may come out. */
function throughEveryFace(input: unknown): Snapshot | undefined {
  let s: Snapshot;
  try {
    s = parseSnapshot(input);
  } catch (error) {
    expect(error, String((error as Error)?.stack)).toBeInstanceOf(HeapstateError);
    expect((error as HeapstateError).code).toBe("INVALID_SNAPSHOT");
    return undefined;
  }
  formatHuman(s);
  prometheusText(s);
  const d = diff(s, parseSnapshot(saved[0]));
  formatDiff(d);
  formatDiff(diff(parseSnapshot(saved[1]), s));
  for (const c of d.changes) {
    // diff never gives a change against an unknown value
    if (c.before === undefined || c.after === undefined) expect(c.delta).toBeUndefined();
  }
  return s;
}

/** Every byte figure of the known parts: finite and ≥ 0 (the remainder may be negative). */
function expectByteFiguresHonest(s: Snapshot): void {
  const check = (obj: object | undefined, signed: string[] = []) => {
    for (const [k, v] of Object.entries(obj ?? {})) {
      if (!k.endsWith("Bytes")) continue;
      expect(typeof v === "number" && Number.isFinite(v), k).toBe(true);
      if (!signed.includes(k)) expect(v as number, k).toBeGreaterThanOrEqual(0);
    }
  };
  check(s.process);
  check(s.cgroup);
  check(s.v8);
  for (const a of s.allocators) {
    check(a);
    check(a.pages);
  }
  for (const r of s.regions ?? []) check(r);
  if (s.breakdown) {
    check(s.breakdown, ["unattributedBytes"]);
    for (const p of s.breakdown.parts) expect(p.bytes).toBeGreaterThanOrEqual(0);
  }
}

/** A saved snapshot with the value at one path (or a new key there) replaced. */
function mutate(base: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  let at: unknown = copy;
  for (const key of path.slice(0, -1)) {
    if (at === null || typeof at !== "object") return copy;
    const next = (at as Record<string, unknown>)[key];
    if (next === null || typeof next !== "object") return copy;
    at = next;
  }
  if (at !== null && typeof at === "object") (at as Record<string, unknown>)[path.at(-1) as string] = value;
  return copy;
}

/** Paths into a saved snapshot: its keys, its parts, array elements. */
function pathsOf(value: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  if (value === null || typeof value !== "object" || prefix.length > 5) return out;
  for (const [k, v] of Object.entries(value)) {
    out.push([...prefix, k]);
    pathsOf(v, [...prefix, k], out);
  }
  return out;
}

describe("parseSnapshot and the faces after it", () => {
  it("arbitrary JSON values", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        throughEveryFace(v);
        throughEveryFace(JSON.stringify(v));
      }),
      { numRuns: 500 },
    );
  });

  it("arbitrary bytes and text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.string({ maxLength: 400 })), (v) => {
        throughEveryFace(v);
      }),
      { numRuns: 500 },
    );
  });

  it("real snapshots with any part replaced by anything: what is kept has the documented shape", () => {
    for (const base of saved) {
      const paths = pathsOf(base);
      fc.assert(
        fc.property(
          fc.constantFrom(...paths),
          fc.oneof(
            fc.jsonValue(),
            fc.constantFrom(-1, -1e300, 1e308, "12", null, [], {}, [null], [{}], [1, "x"], { name: 1 }),
          ),
          (path, value) => {
            const s = throughEveryFace(mutate(base, path, value));
            if (s) expectByteFiguresHonest(s);
          },
        ),
        { numRuns: 800 },
      );
    }
  });

  it("known parts of the wrong shape are left out with a warning, never a TypeError later", () => {
    const base = saved[0] as Record<string, unknown>;
    for (const [key, value] of [
      ["breakdown", { rssBytes: 1, parts: "x", unattributedBytes: 0 }],
      ["breakdown", { rssBytes: 1, parts: [null], unattributedBytes: 0 }],
      ["regions", 5],
      ["regions", [null, 3]],
      ["allocators", { 0: {} }],
      ["allocators", [1]],
      ["findings", "warn"],
      ["findings", [{ id: 1 }]],
      ["heap", []],
      ["cgroup", { version: 3 }],
      ["warnings", [5]],
    ] as const) {
      const s = parseSnapshot(mutate(base, [key], value));
      expect(
        s.warnings.some((w) => w.code === "INVALID_FIELD"),
        `${key}: ${JSON.stringify(value)}`,
      ).toBe(true);
      formatHuman(s);
      formatDiff(diff(s, s));
    }
  });

  it("counts and names that are not (an object where a number goes: found by the fuzzer) are left out", () => {
    const base = saved[0] as Record<string, unknown>;
    const notANumber = { toString: 0 };
    for (const [path, value] of [
      [["cgroup", "oomKillEvents"], notANumber],
      [["cgroup", "oomEvents"], "3"],
      [["process", "threads"], notANumber],
      [["process", "threadNames"], { node: notANumber }],
      [["cpu"], { onlineCpus: notANumber }],
      [["regions", "0", "count"], notANumber],
      [["peak"], { rssBytes: notANumber, since: "x", source: "y" }],
      [["autoTrim"], { trims: notANumber, lastTrim: { pauseMs: notANumber } }],
      [["allocators", "0", "version"], notANumber],
      [["allocators", "0", "arenaLimit"], { arenas: notANumber, source: "x" }],
    ] as const) {
      const s = parseSnapshot(mutate(base, [...path], value));
      expect(
        s.warnings.some((w) => w.code === "INVALID_FIELD"),
        `${path.join(".")}: ${JSON.stringify(value)}`,
      ).toBe(true);
      formatHuman(s);
      prometheusText(s);
      formatDiff(diff(s, s));
    }
  });

  it("values JSON cannot hold give INVALID_SNAPSHOT, never RangeError or TypeError", () => {
    const base = saved[1] as Record<string, unknown>;
    const cyclic: Record<string, unknown> = { ...base };
    cyclic.process = { self: cyclic };
    const throwing = Object.defineProperty({ ...base }, "v8", {
      enumerable: true,
      get() {
        throw new TypeError("getter");
      },
    });
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    const { proxy: revoked, revoke } = Proxy.revocable({ ...base }, {});
    revoke();
    const trap = new Proxy(
      { ...base },
      {
        get() {
          throw new RangeError("trap");
        },
      },
    );
    const cases: Array<[string, unknown]> = [
      ["a cycle", cyclic],
      ["a getter that throws", throwing],
      ["a BigInt", { ...base, pid: 10n }],
      ["a function", { ...base, warnings: () => [] }],
      ["a symbol", { ...base, tier: Symbol("deep") }],
      ["nesting 100 000 deep", { ...base, extra: deep }],
      ["nesting a million deep, as text", `{"schema":"heapstate/1","x":${"[".repeat(1e6)}${"]".repeat(1e6)}}`],
      ["a revoked proxy", revoked],
      ["a proxy whose trap throws", trap],
      ["a function", () => base],
    ];
    for (const [what, input] of cases) {
      let error: unknown;
      try {
        parseSnapshot(input);
      } catch (e) {
        error = e;
      }
      expect(error, what).toBeInstanceOf(HeapstateError);
      expect((error as HeapstateError).code, what).toBe("INVALID_SNAPSHOT");
    }
  });
});

describe("input-sized arrays", () => {
  it("formatHuman and formatDiff with a million rows, diff with 300 000 regions: no RangeError", () => {
    // Math.max(...rows) and lines.push(...rows) put every row on the stack: about 120 000 overflowed.
    const s = parseSnapshot(saved[0]);
    const many = {
      ...s,
      warnings: Array.from({ length: 1e6 }, (_, i) => ({
        source: "v8" as const,
        code: "SOURCE_FAILED" as const,
        message: `${i}`,
      })),
    };
    expect(formatHuman(many).split("\n").length).toBeGreaterThan(1e6);
    const changes = Array.from({ length: 1e6 }, (_, i) => ({
      path: `regions.c${i}.rssBytes`,
      before: i,
      after: i + 1,
      delta: 1,
    }));
    const d = { ...diff(s, s), changes };
    expect(formatDiff(d).split("\n").length).toBeGreaterThan(1e6);
    const regions = Array.from({ length: 3e5 }, (_, i) => ({
      category: `anon:c${i}` as const,
      count: 1,
      sizeBytes: 4096,
      rssBytes: i,
    }));
    const a = { ...s, regions };
    const b = { ...s, regions: regions.map((r) => ({ ...r, rssBytes: r.rssBytes + 4096 })) };
    expect(diff(a, b).changes.length).toBeGreaterThan(3e5);
  }, 60_000);
});

describe("heapstate diff on broken files", () => {
  const dir = mkdtempSync(join(tmpdir(), "heapstate-hostile-diff-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, "good.json");
  beforeAll(() => writeFileSync(good, JSON.stringify(saved[0])));

  async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
    return { code, out, err };
  }

  it("arbitrary bytes and JSON: exit 0 with a diff or exit 1 with one line, never 3", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? "")),
          fc
            .tuple(fc.constantFrom(...pathsOf(saved[0])), fc.jsonValue())
            .map(([p, v]) => Buffer.from(JSON.stringify(mutate(saved[0] as Record<string, unknown>, p, v)))),
        ),
        async (bytes) => {
          const file = join(dir, "broken.json");
          writeFileSync(file, bytes);
          for (const args of [
            ["diff", good, file],
            ["diff", file, good, "--json"],
          ]) {
            const r = await run(args);
            expect([0, 1], r.err.join("\n")).toContain(r.code);
            if (r.code === 1) {
              expect(r.err).toHaveLength(1);
              expect(r.err[0]).toMatch(/^heapstate: .*broken\.json: /);
              expect(r.err[0]).not.toContain("\n");
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a directory, /dev/zero and a missing file: exit 1 with one line", async () => {
    for (const file of [dir, "/dev/zero", join(dir, "missing.json")]) {
      const r = await run(["diff", good, file]);
      expect(r.code, file).toBe(1);
      expect(r.err, file).toHaveLength(1);
    }
  });
});
