import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseFlatKeyed } from "../../lib/core/procfs/cgroup";
import { parseSmapsTotals } from "../../lib/core/procfs/smaps";
import { parseStatus } from "../../lib/core/procfs/status";
import { fixtures } from "../helpers";

/**
 * The text as the own process's files reach the scanners: its bytes (latin1, a byte per
 * character) in a view of a larger, reused buffer whose stale bytes after the view hold lines
 * every scanner would read. The view's parse must equal the reference's on the same characters.
 */
function asRead(text: string): { bytes: Buffer; same: string; whole: Buffer; from: number; to: number } {
  const stale = Buffer.from("0 kB\nVmRSS:\t9 kB\nThreads:\t9\nRss: 9 kB\noom_kill 9\nanon 9\n", "latin1");
  const own = Buffer.from(text, "latin1");
  const whole = Buffer.concat([Buffer.from("Rss: 7 kB\n"), own, stale]);
  const to = 10 + own.length;
  return { bytes: whole.subarray(10, to), same: own.toString("latin1"), whole, from: 10, to };
}

describe("parseStatus", () => {
  it("reads the memory lines of a captured /proc/<pid>/status in bytes", () => {
    const text = readFileSync(join(fixtures, "procfs", "v1-hybrid", "proc", "4242", "status"), "utf8");
    const kB = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text)?.[1]) * 1024;
    expect(parseStatus(text)).toEqual({
      rssBytes: kB("VmRSS"),
      rssAnonBytes: kB("RssAnon"),
      rssFileBytes: kB("RssFile"),
      rssShmemBytes: kB("RssShmem"),
      peakRssBytes: kB("VmHWM"),
      vmSizeBytes: kB("VmSize"),
      swapBytes: kB("VmSwap"),
      threads: Number(/^Threads:\s+(\d+)$/m.exec(text)?.[1]),
    });
  });

  it("agrees with the kernel's statm for this process", () => {
    const status = parseStatus(readFileSync("/proc/self/status", "utf8"));
    const statm = readFileSync("/proc/self/statm", "utf8").split(" ").map(Number);
    // statm's resident pages and status's VmRSS come from the same counters, a few pages apart
    // at most between the two reads.
    expect(Math.abs((status.rssBytes as number) - (statm[1] as number) * 4096)).toBeLessThan(1024 * 1024);
  });

  it("leaves absent what is missing or malformed, never 0 or NaN", () => {
    expect(parseStatus("")).toEqual({});
    expect(parseStatus("VmRSS:\tlots kB\nRssAnon:\t-5 kB\nVmSwap:\t12 MB\nVmHWM: 99999999999999999999 kB")).toEqual({});
    expect(parseStatus("VmRSS:\t100 kB\nVmRSS:\t200 kB")).toEqual({ rssBytes: 100 * 1024 });
    expect(parseStatus("\u0000\u0001binary\nVmRSS:\t7 kB")).toEqual({ rssBytes: 7 * 1024 });
  });

  it("reads what a regular expression per key reads, on status texts cut, spliced and noised", () => {
    // The reference: each key's first line, held to one regular expression (what the scan replaced).
    const reference = (text: string) => {
      const out: Record<string, number> = {};
      const keys: Array<[string, string, RegExp]> = [
        ["VmRSS", "rssBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["RssAnon", "rssAnonBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["RssFile", "rssFileBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["RssShmem", "rssShmemBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["VmHWM", "peakRssBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["VmSize", "vmSizeBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["VmSwap", "swapBytes", /^\s+(\d{1,15}) kB\s*$/],
        ["Threads", "threads", /^\s+(\d{1,9})\s*$/],
      ];
      for (const [name, key, re] of keys) {
        const line = text.split("\n").find((l) => l.startsWith(`${name}:`));
        const m = line === undefined ? null : re.exec(line.slice(name.length + 1));
        if (m) out[key] = Number(m[1]) * (key === "threads" ? 1 : 1024);
      }
      return out;
    };
    const sample = readFileSync("/proc/self/status", "latin1");
    const lines = sample.split("\n");
    const noise = fc.constantFrom(" ", "\t", "\r", "\u00a0", "\u2028", "x", "-", "0", "9", " kB", ":", "\n", "");
    const line = fc.oneof(
      fc.constantFrom(...lines),
      fc.tuple(fc.constantFrom(...lines), fc.nat(80), noise).map(([l, at, n]) => l.slice(0, at) + n + l.slice(at)),
      fc
        .record({
          key: fc.constantFrom("VmRSS", "RssAnon", "RssShmem", "Threads", "VmSwap", "VmHWM", "VmSize"),
          before: fc.array(noise, { maxLength: 3 }),
          digits: fc.nat(20).chain((n) => fc.stringMatching(new RegExp(`^\\d{${n}}$`))),
          unit: fc.constantFrom(" kB", "", " kB ", "kB", " MB", " kB\r"),
          after: fc.array(noise, { maxLength: 2 }),
        })
        .map((l) => `${l.key}:${l.before.join("")}${l.digits}${l.unit}${l.after.join("")}`),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 70 }), (ls) => {
        const text = ls.join("\n");
        expect(parseStatus(text)).toEqual(reference(text));
        const r = asRead(text);
        expect(parseStatus(r.bytes)).toEqual(reference(r.same));
        // Where the file lies inside the buffer of all the files read ahead, with others around it.
        expect(parseStatus(r.whole, r.from, r.to)).toEqual(reference(r.same));
      }),
      { numRuns: 2000 },
    );
    expect(parseStatus(sample)).toEqual(reference(sample));
    expect(parseStatus(asRead(sample).bytes)).toEqual(parseStatus(sample));
  });
});

describe("the scanners hold to the regular expressions they replaced", () => {
  const noise = fc.constantFrom(
    " ",
    "  ",
    "\t",
    "\r",
    "\u00a0",
    "\u2028",
    "\ufeff",
    "x",
    "-",
    "_",
    "0",
    "9",
    ":",
    "\n",
    "",
  );
  const digits = fc.nat(22).chain((n) => fc.stringMatching(new RegExp(`^\\d{${n}}$`)));
  const mutate = (lines: string[]) =>
    fc.oneof(
      fc.constantFrom(...lines),
      fc.tuple(fc.constantFrom(...lines), fc.nat(60), noise).map(([l, at, n]) => l.slice(0, at) + n + l.slice(at)),
      fc.tuple(fc.constantFrom(...lines), fc.nat(60)).map(([l, at]) => l.slice(0, at)),
    );

  it("smaps_rollup", () => {
    const reference = (text: string) => {
      const keys: Record<string, string> = {
        Rss: "rssBytes",
        Pss: "pssBytes",
        Private_Dirty: "privateDirtyBytes",
        Private_Clean: "privateCleanBytes",
        Anonymous: "anonymousBytes",
        LazyFree: "lazyFreeBytes",
        AnonHugePages: "anonHugePagesBytes",
        Swap: "swapBytes",
      };
      const out: Record<string, number> = {};
      for (const line of text.split("\n")) {
        const m = /^([A-Za-z_]+):\s+(\d{1,15}) kB\s*$/.exec(line);
        const key = m && keys[m[1] as string];
        if (m && key) out[key] = (out[key] ?? 0) + Number(m[2]) * 1024;
      }
      return out;
    };
    const sample = readFileSync("/proc/self/smaps_rollup", "latin1");
    const made = fc
      .record({
        key: fc.constantFrom("Rss", "Pss", "Swap", "LazyFree", "Private_Dirty", "Rs", "Pss_Anon", "Anonymous"),
        before: fc.array(noise, { maxLength: 3 }),
        digits,
        unit: fc.constantFrom(" kB", "", " kB ", "kB", " MB"),
        after: fc.array(noise, { maxLength: 2 }),
      })
      .map((l) => `${l.key}:${l.before.join("")}${l.digits}${l.unit}${l.after.join("")}`);
    fc.assert(
      fc.property(fc.array(fc.oneof(mutate(sample.split("\n")), made), { maxLength: 40 }), (ls) => {
        const text = ls.join("\n");
        expect(parseSmapsTotals(text)).toEqual(reference(text));
        const r = asRead(text);
        expect(parseSmapsTotals(r.bytes)).toEqual(reference(r.same));
      }),
      { numRuns: 2000 },
    );
    expect(parseSmapsTotals(sample)).toEqual(reference(sample));
    expect(parseSmapsTotals(asRead(sample).bytes)).toEqual(parseSmapsTotals(sample));
  });

  it("flat-keyed cgroup files (memory.stat, memory.events, memory.oom_control)", () => {
    const reference = (text: string) => {
      const out = new Map<string, number>();
      for (const line of text.split("\n")) {
        const m = /^([A-Za-z0-9_]+) (\d{1,20})$/.exec(line.trim());
        if (m && !out.has(m[1] as string)) out.set(m[1] as string, Number(m[2]));
      }
      return out;
    };
    const sample = [
      "cache 4096",
      "rss 123456789",
      "total_rss 99999999999999999999",
      "anon 0",
      "oom_kill 3",
      "under_oom 0",
      "file_dirty 12",
      "hierarchical_memory_limit 9223372036854771712",
    ];
    const made = fc
      .record({
        before: fc.array(noise, { maxLength: 2 }),
        key: fc.constantFrom("oom", "oom_kill", "anon", "total_cache", "a-b", ""),
        gap: fc.constantFrom(" ", "  ", "\t", ""),
        digits,
        after: fc.array(noise, { maxLength: 2 }),
      })
      .map((l) => `${l.before.join("")}${l.key}${l.gap}${l.digits}${l.after.join("")}`);
    fc.assert(
      fc.property(fc.array(fc.oneof(mutate(sample), made), { maxLength: 30 }), (ls) => {
        const text = ls.join("\n");
        expect([...parseFlatKeyed(text)]).toEqual([...reference(text)]);
        const only = ["oom", "oom_kill", "anon", "total_cache"];
        expect([...parseFlatKeyed(text, only)]).toEqual([...reference(text)].filter(([k]) => only.includes(k)));
        const r = asRead(text);
        expect([...parseFlatKeyed(r.bytes)]).toEqual([...reference(r.same)]);
        expect([...parseFlatKeyed(r.bytes, only)]).toEqual([...reference(r.same)].filter(([k]) => only.includes(k)));
      }),
      { numRuns: 2000 },
    );
  });
});
