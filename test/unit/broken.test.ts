/**
 * Broken procfs and cgroup files: truncated, garbage, empty, binary, unknown keys, huge values,
 * missing. collect() either returns a snapshot whose numbers are honest (with a warning for what it
 * could not read) or throws the package's own error; never anything else.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../lib/core/model/types";
import { collect, HeapstateError } from "../../lib/index";
import { fixtures } from "../helpers";
import { expectHonestNumbers } from "./honest";

const PID = 4242;
const work = mkdtempSync(join(tmpdir(), "heapstate-broken-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const source = join(fixtures, "procfs", "v1-hybrid");
const cgPath = (
  /^\d+:memory:(.*)$/m.exec(readFileSync(join(source, "proc", String(PID), "cgroup"), "utf8")) as RegExpExecArray
)[1];
const procFiles = ["status", "smaps_rollup", "smaps", "cgroup", "mountinfo"];
const cgFiles = [
  "memory.usage_in_bytes",
  "memory.limit_in_bytes",
  "memory.max_usage_in_bytes",
  "memory.oom_control",
  "memory.stat",
];

let counter = 0;
function variant(file: string, mutate: (text: string) => string | null): { proc: string; fs: string } {
  const dir = join(work, String(counter++));
  cpSync(source, dir, { recursive: true });
  const target = procFiles.includes(file)
    ? join(dir, "proc", String(PID), file)
    : join(dir, "sys/fs/cgroup/memory", cgPath as string, file);
  const text = readFileSync(target, "utf8");
  const out = mutate(text);
  if (out === null) rmSync(target);
  else writeFileSync(target, out);
  return { proc: join(dir, "proc"), fs: dir };
}

function attempt(v: { proc: string; fs: string }): Snapshot | HeapstateError {
  try {
    return collect({ pid: PID, tier: "deep", procRoot: v.proc, fsRoot: v.fs });
  } catch (error) {
    if (error instanceof HeapstateError) return error;
    throw error;
  }
}

const mutations: Record<string, (t: string) => string | null> = {
  empty: () => "",
  "truncated at a third": (t) => t.slice(0, Math.floor(t.length / 3)),
  "truncated mid-line": (t) => t.slice(0, t.indexOf("\n", 40) + 5),
  garbage: () => "}{ not a proc file \u0000\u0001\u0002 ::: kB kB\n-1 -2 -3",
  binary: () => String.fromCharCode(...Array.from({ length: 512 }, (_, i) => (i * 37) % 256)),
  "huge values": (t) => t.replace(/\d+/g, "99999999999999999999999"),
  "negative values": (t) => t.replace(/ (\d+)/g, " -$1"),
  "unknown keys": (t) => `Future_Key:\t12 kB\nanother_thing 5\n${t}Trailing_Key: 3 kB\n`,
  "very long line": (t) => `${"x".repeat(200_000)}\n${t}`,
  missing: () => null,
};

describe("broken inputs", () => {
  for (const file of [...procFiles, ...cgFiles]) {
    for (const [name, mutate] of Object.entries(mutations)) {
      it(`${file}: ${name}`, () => {
        const result = attempt(variant(file, mutate));
        if (result instanceof HeapstateError) {
          // Only the files that prove the process is there may turn into an error for another pid.
          expect(["status", "smaps_rollup", "smaps"]).toContain(file);
          expect(result.code).toBe("NO_SUCH_PROCESS");
          return;
        }
        expectHonestNumbers(result);
        const b = result.breakdown;
        if (b) expect(b.parts.reduce((n, p) => n + p.bytes, 0) + b.unattributedBytes).toBe(result.process?.rssBytes);
      });
    }
  }

  it("a broken cgroup file costs the cgroup, with a warning, and nothing else", () => {
    const result = attempt(variant("memory.usage_in_bytes", () => "garbage"));
    expect(result).not.toBeInstanceOf(HeapstateError);
    const s = result as Snapshot;
    expect(s.cgroup).toBeUndefined();
    expect(s.warnings.map((w) => w.code)).toContain("CGROUP_UNREADABLE");
    expect(s.process?.rssBytes).toBeGreaterThan(0);
    expect(s.regions?.length).toBeGreaterThan(3);
  });

  it("a missing status of another process: NO_SUCH_PROCESS", () => {
    const result = attempt(variant("status", () => null));
    expect(result).toBeInstanceOf(HeapstateError);
    expect((result as HeapstateError).code).toBe("NO_SUCH_PROCESS");
  });

  it("an unlimited v1 limit and a garbage limit are both absent, never 0", () => {
    for (const text of ["9223372036854771712\n", "lots\n", ""]) {
      const s = attempt(variant("memory.limit_in_bytes", () => text)) as Snapshot;
      expect(s.cgroup?.usageBytes).toBeGreaterThan(0);
      expect(s.cgroup && "limitBytes" in s.cgroup).toBe(false);
    }
  });
});
