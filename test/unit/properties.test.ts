/**
 * Property tests for every parser: generated and mutated inputs (truncation, garbage, huge and
 * negative numbers, duplicate and unknown keys, binary, very long lines). A parser returns what it
 * could read, or throws the package's own error; never another exception, never NaN, Infinity or a
 * negative byte count, and never hangs (each run is bounded by the test timeout).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseMallocInfo } from "../../lib/core/allocators/malloc-info";
import { HeapstateError } from "../../lib/core/base/errors";
import { wrap } from "../../lib/core/base/units";
import { parseSnapshot } from "../../lib/core/model/parse";
import {
  flatKeyedValue,
  locateMemoryCgroup,
  parseCounter,
  parseFlatKeyed,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
} from "../../lib/core/procfs/cgroup";
import { forEachMapping, parseSmapsTotals } from "../../lib/core/procfs/smaps";
import { parseStatm } from "../../lib/core/procfs/statm";
import { parseStatus } from "../../lib/core/procfs/status";
import { summarize } from "../../lib/core/read/regions";
import { fixtures } from "../helpers";
import { expectHonestNumbers } from "./honest";

const tree = join(fixtures, "procfs", "v1-hybrid", "proc", "4242");
const samples = {
  status: readFileSync(join(tree, "status"), "utf8"),
  statm: readFileSync(join(tree, "statm"), "utf8"),
  rollup: readFileSync(join(tree, "smaps_rollup"), "utf8"),
  smaps: readFileSync(join(tree, "smaps"), "utf8").slice(0, 20_000),
  cgroup: readFileSync(join(tree, "cgroup"), "utf8"),
  mountinfo: readFileSync(join(tree, "mountinfo"), "utf8"),
  mallocInfo: readFileSync(join(fixtures, "malloc-info", "node-threadpool.xml"), "utf8"),
};

/** A real file, mutated: cut, spliced with garbage, numbers replaced, lines duplicated. */
function mutated(text: string): fc.Arbitrary<string> {
  const lines = text.split("\n");
  return fc.oneof(
    fc.nat(text.length).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat(text.length), fc.string({ maxLength: 40 })).map(([n, g]) => text.slice(0, n) + g + text.slice(n)),
    fc
      .tuple(fc.nat(text.length), fc.uint8Array({ maxLength: 64 }))
      .map(([n, b]) => text.slice(0, n) + String.fromCharCode(...b) + text.slice(n)),
    fc
      .constantFrom("-1", "99999999999999999999999", "1e400", "NaN", "0x10", "", "   ", "18446744073709551615")
      .map((v) => text.replace(/\d+/g, (m, i: number) => (i % 3 === 0 ? v : m))),
    fc.nat(lines.length).map((i) => [...lines.slice(0, i), lines[i] ?? "", ...lines.slice(i)].join("\n")),
    fc.string({ maxLength: 200 }).map((k) => `${k}:\t12 kB\n${text}`),
    fc.constant(`${"x".repeat(100_000)}\n${text}`),
    fc.string({ maxLength: 500 }),
  );
}

/** Runs `parse`; it may throw only HeapstateError. Returns what it returned, or undefined. */
function tolerant<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (error) {
    expect(error).toBeInstanceOf(HeapstateError);
    return undefined;
  }
}

const runs = { numRuns: 300 };

describe("parsers never lie and never crash", () => {
  it("status", () =>
    fc.assert(
      fc.property(mutated(samples.status), (t) => expectHonestNumbers(tolerant(() => parseStatus(t)))),
      runs,
    ));
  it("statm", () =>
    fc.assert(
      fc.property(mutated(samples.statm), (t) => expectHonestNumbers(tolerant(() => parseStatm(t)))),
      runs,
    ));
  it("smaps_rollup", () =>
    fc.assert(
      fc.property(mutated(samples.rollup), (t) => expectHonestNumbers(tolerant(() => parseSmapsTotals(t)))),
      runs,
    ));
  it("smaps, into regions", () =>
    fc.assert(
      fc.property(mutated(samples.smaps), (t) => {
        const regions = tolerant(() => {
          const m: Parameters<typeof summarize>[0] = [];
          forEachMapping(t, (x) => m.push(x));
          return summarize(m, true);
        });
        expectHonestNumbers(regions);
      }),
      { numRuns: 150 },
    ));
  it("/proc/<pid>/cgroup and mountinfo, located", () =>
    fc.assert(
      fc.property(mutated(samples.cgroup), mutated(samples.mountinfo), (c, m) => {
        const found = tolerant(() => locateMemoryCgroup(parseProcCgroup(c), parseMountinfo(m)));
        // Located under an absolute directory, or a problem in words, or the package's own error.
        if (found && "location" in found) expect(found.location.dir.startsWith("/")).toBe(true);
        else expect(found === undefined || typeof found.problem === "string").toBe(true);
      }),
      runs,
    ));
  it("cgroup value and key files", () => {
    // Random text seldom holds a number, so the values files' own shapes are mixed in: without
    // them a run could check nothing (it did, once in a few hundred). Each value read is held to
    // what the text says: a counter or a limit is the whole trimmed text in decimal.
    const number = fc.oneof(
      fc.nat().map(String),
      fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
      fc.constantFrom("max", "-1", "1e3", "0x10", "18446744073709551615", "9007199254740993"),
    );
    const valueFile = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc
        .tuple(fc.constantFrom("", " ", "\n", "\t"), number, fc.constantFrom("", "\n", " \n", "x"))
        .map((p) => p.join("")),
      fc
        .array(fc.tuple(fc.constantFrom("anon", "file", "oom_kill", "a b", ""), number), { maxLength: 6 })
        .map((ls) => ls.map(([k, v]) => `${k} ${v}`).join("\n")),
    );
    fc.assert(
      fc.property(valueFile, (t) => {
        const decimal = /^\d+$/.test(t.trim()) ? Number(t.trim()) : undefined;
        const counter = parseCounter(t);
        expect(counter === undefined || counter === decimal, `parseCounter(${JSON.stringify(t)}) = ${counter}`).toBe(
          true,
        );
        expect(counter === undefined || Number.isSafeInteger(counter)).toBe(true);
        const limit = parseLimit(t);
        expect(limit === undefined || limit === decimal, `parseLimit(${JSON.stringify(t)}) = ${limit}`).toBe(true);
        // And a value the files' rules allow is read, not dropped: up to 19 digits and safe for a
        // counter, up to 20 digits and below 2^60 for a limit.
        const digits = t.trim().length;
        if (decimal !== undefined && digits <= 19 && Number.isSafeInteger(decimal)) expect(counter).toBe(decimal);
        if (decimal !== undefined && digits <= 20 && decimal < 2 ** 60) expect(limit).toBe(decimal);
        for (const v of parseFlatKeyed(t).values()) expect(Number.isFinite(v) && v >= 0, String(v)).toBe(true);
        // The fast tier's scans of a file where it lies among the files read ahead: the same values.
        if ([...t].every((c) => c.charCodeAt(0) <= 0xff)) {
          const own = Buffer.from(t, "latin1");
          const whole = Buffer.concat([Buffer.from("7\noom_kill 7\n"), own, Buffer.from(" 9\nanon 9\n")]);
          const [from, to] = [13, 13 + own.length];
          expect(parseCounter(whole, from, to)).toBe(counter);
          expect(parseLimit(whole, from, to)).toBe(limit);
          const keyed = parseFlatKeyed(t);
          for (const key of ["anon", "file", "oom_kill", "oom"]) {
            expect(flatKeyedValue(t, key), key).toBe(keyed.get(key));
            expect(flatKeyedValue(whole, key, from, to), key).toBe(keyed.get(key));
          }
        }
      }),
      runs,
    );
    // The mixed-in shapes are read: a plain counter and an unlimited limit.
    expect(parseCounter("123\n")).toBe(123);
    expect(parseLimit("max\n")).toBeUndefined();
  });
  it("malloc_info XML", () =>
    fc.assert(
      fc.property(mutated(samples.mallocInfo), (t) => expectHonestNumbers(tolerant(() => parseMallocInfo(t)))),
      { numRuns: 150 },
    ));
  it("saved snapshots", () => {
    const real = JSON.stringify({
      schema: "heapstate/1",
      time: "2026-01-01T00:00:00.000Z",
      pid: 7,
      tier: "fast",
      costMicros: 3,
      process: { rssBytes: 1000, swapBytes: 0 },
      breakdown: {
        rssBytes: 1000,
        rssSource: "status",
        parts: [{ name: "file", bytes: 900, source: "x" }],
        unattributedBytes: 100,
      },
      allocators: [],
      warnings: [],
    });
    fc.assert(
      fc.property(fc.oneof(mutated(real), fc.json({ maxDepth: 3 }), fc.anything({ maxDepth: 3 })), (input) => {
        const s = tolerant(() => parseSnapshot(input));
        if (s) {
          expect(s.schema).toMatch(/^heapstate\/\d+$/);
          expectHonestNumbers(s);
        }
      }),
      runs,
    );
  });
});

describe("wrap", () => {
  it("keeps every line within the width and every word, in order, nothing added but spaces", () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat(30),
            fc.array(
              fc.oneof(
                fc.stringMatching(/^[^\s]{0,12}$/),
                fc.string({ unit: fc.constantFrom("a", "/", "é"), minLength: 30, maxLength: 300 }),
              ),
              { maxLength: 30 },
            ),
          ),
          { maxLength: 6 },
        ),
        fc.integer({ min: 1, max: 160 }),
        (rows, width) => {
          const text = rows.map(([indent, words]) => " ".repeat(indent) + words.join(" ")).join("\n");
          const out = wrap(text, width);
          for (const line of out.split("\n")) expect(line.length).toBeLessThanOrEqual(width);
          expect(out.replace(/\s+/g, "")).toBe(text.replace(/\s+/g, ""));
          expect(wrap(text, 0)).toBe(text);
        },
      ),
    ));
});
