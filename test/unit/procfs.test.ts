/**
 * procfs and cgroup on captured trees: this machine (cgroup v1 hybrid, kernel 6.18), cgroup v2
 * layouts (plain, namespaced, bind-mounted subtree; written from the kernel's cgroup-v2 docs), and
 * a kernel without smaps_rollup. Expected values are read from the fixture files themselves.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../lib/core/model/types";
import { locateMemoryCgroup, parseLimit, parseMountinfo, parseProcCgroup } from "../../lib/core/procfs/cgroup";
import { readProcFile, readProcText } from "../../lib/core/procfs/read";
import { forEachMapping, type Mapping, parseSmapsTotals } from "../../lib/core/procfs/smaps";
import { parseStatus } from "../../lib/core/procfs/status";
import { categorize } from "../../lib/core/read/regions";
import { collect } from "../../lib/index";
import { fixtures } from "../helpers";
import { expectHonestNumbers } from "./honest";

const PID = 4242;
const tree = (name: string) => join(fixtures, "procfs", name);
const read = (name: string, file: string) => readFileSync(join(tree(name), "proc", String(PID), file), "utf8");
const fromTree = (name: string, tier: "fast" | "standard" | "deep" = "deep", includeAddresses = false): Snapshot =>
  collect({ pid: PID, tier, includeAddresses, procRoot: join(tree(name), "proc"), fsRoot: tree(name) });

/** Σ of one "Key: N kB" over a smaps text, in bytes: an independent sum for the tests. */
function sumKb(text: string, key: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${key}:\\s+(\\d+) kB$`, "gm"))) sum += Number(m[1]) * 1024;
  return sum;
}

function kbOf(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text);
  if (!m) throw new Error(`${key} not in fixture`);
  return Number(m[1]) * 1024;
}

describe("cgroup v1 hybrid host (this machine, captured)", () => {
  const s = fromTree("v1-hybrid");
  const cgPath = (/^\d+:memory:(.*)$/m.exec(read("v1-hybrid", "cgroup")) as RegExpExecArray)[1] as string;
  const cgDir = join(tree("v1-hybrid"), "sys/fs/cgroup/memory", cgPath);
  const cgFile = (f: string) => readFileSync(join(cgDir, f), "utf8");
  const stat = (key: string) =>
    Number((new RegExp(`^${key} (\\d+)$`, "m").exec(cgFile("memory.stat")) as RegExpExecArray)[1]);

  it("finds the memory controller's v1 hierarchy, not the controller-less v2 tree", () => {
    expect(s.cgroup?.version).toBe(1);
    expect(s.cgroup?.path).toBe(cgPath);
  });

  it("reads usage, peak, OOM kills and memory.stat by key; 'unlimited' is absent, not a number", () => {
    expect(cgFile("memory.limit_in_bytes").trim()).toBe("9223372036854771712");
    expect(s.cgroup).toEqual({
      version: 1,
      path: cgPath,
      usageBytes: Number(cgFile("memory.usage_in_bytes")),
      peakBytes: Number(cgFile("memory.max_usage_in_bytes")),
      oomKillEvents: Number((/^oom_kill (\d+)$/m.exec(cgFile("memory.oom_control")) as RegExpExecArray)[1]),
      anonBytes: stat("total_rss"),
      fileBytes: stat("total_cache"),
      shmemBytes: stat("total_shmem"),
      kernelBytes: Number(cgFile("memory.kmem.usage_in_bytes")),
    });
  });

  it("reads status and smaps_rollup", () => {
    const status = read("v1-hybrid", "status");
    const rollup = read("v1-hybrid", "smaps_rollup");
    // One RSS per reading: smaps_rollup's exact figure; status VmRSS is kept beside it.
    expect(s.process).toMatchObject({
      rssBytes: kbOf(rollup, "Rss"),
      rssSource: "smaps_rollup",
      statusRssBytes: kbOf(status, "VmRSS"),
      rssAnonBytes: kbOf(status, "RssAnon"),
      pssBytes: kbOf(rollup, "Pss"),
      privateDirtyBytes: kbOf(rollup, "Private_Dirty"),
      lazyFreeBytes: kbOf(rollup, "LazyFree"),
      anonHugePagesBytes: kbOf(rollup, "AnonHugePages"),
    });
    expect(s.process?.rssBytes).toBe(kbOf(rollup, "Rss"));
    expect(s.process?.rssSource).toBe("smaps_rollup");
    // Stored once: the breakdown partitions process.rssBytes and does not repeat it.
    expect(Object.keys(s.breakdown ?? {})).not.toContain("rssBytes");
  });

  it("region categories cover every mapping: sizes and Rss add up to smaps' own", () => {
    const smaps = read("v1-hybrid", "smaps");
    const regions = s.regions ?? [];
    const total = (k: "rssBytes" | "pssBytes" | "swapBytes") => regions.reduce((n, r) => n + (r[k] ?? 0), 0);
    expect(total("rssBytes")).toBe(sumKb(smaps, "Rss"));
    expect(total("pssBytes")).toBe(sumKb(smaps, "Pss"));
    expect(total("swapBytes")).toBe(sumKb(smaps, "Swap"));
    const headers = [...smaps.matchAll(/^([0-9a-f]+)-([0-9a-f]+) /gm)];
    expect(regions.reduce((n, r) => n + r.count, 0)).toBe(headers.length);
    expect(regions.reduce((n, r) => n + r.sizeBytes, 0)).toBe(
      headers.reduce((n, h) => n + Number(BigInt(`0x${h[2]}`) - BigInt(`0x${h[1]}`)), 0),
    );
    const cats = regions.map((r) => r.category);
    for (const c of ["malloc-main-arena", "code", "anon", "stack", "thread-stack"]) expect(cats).toContain(c);
  });

  it("the [heap] mapping is the main arena and 64 MiB-aligned reservations are arenas", () => {
    const mappings: Mapping[] = [];
    forEachMapping(read("v1-hybrid", "smaps"), (m) => mappings.push(m));
    const cats = categorize(mappings);
    mappings.forEach((m, i) => {
      if (m.path === "[heap]") expect(cats[i]).toBe("malloc-main-arena");
      if (cats[i] === "malloc-arena") {
        const block = Math.floor(m.start / 2 ** 26);
        expect(m.end <= (block + 1) * 2 ** 26).toBe(true);
      }
      if (m.path === "/usr/bin/node") expect(cats[i]).toBe("code");
    });
  });

  it("addresses and paths appear only when asked for", () => {
    const plain = JSON.stringify(s);
    expect(plain).not.toMatch(/0x[0-9a-f]{8,}/);
    expect(plain).not.toContain("/usr/bin/node");
    const detailed = fromTree("v1-hybrid", "deep", true);
    const code = detailed.regions?.find((r) => r.category === "code");
    expect(code?.mappings?.some((m) => m.path === "/usr/bin/node")).toBe(true);
    expect(code?.mappings?.[0]?.start).toMatch(/^0x[0-9a-f]+$/);
  });

  it("parts and the unattributed remainder add up to RSS exactly", () => {
    const b = s.breakdown;
    expect(b).toBeDefined();
    if (!b) return;
    expect(b.parts.reduce((n, p) => n + p.bytes, 0) + b.unattributedBytes).toBe(s.process?.rssBytes);
    // Another process: no allocator or V8 parts, but the kernel's view of glibc's arenas is one.
    expect(b.parts.map((p) => p.name)).toEqual(["lazy-free", "malloc-arenas", "stacks", "code", "file", "shmem"]);
    const arenas = (s.regions ?? [])
      .filter((r) => r.category === "malloc-main-arena" || r.category === "malloc-arena")
      .reduce((n, r) => n + (r.rssBytes ?? 0), 0);
    expect(b.parts.find((p) => p.name === "malloc-arenas")?.bytes).toBe(arenas);
  });
});

describe("cgroup v2", () => {
  it("reads memory.current, max, high ('max' is absent), peak, events and memory.stat by key", () => {
    const s = fromTree("v2", "standard");
    expect(s.cgroup).toEqual({
      version: 2,
      path: "/system.slice/app.service",
      usageBytes: 734003200,
      limitBytes: 1073741824,
      peakBytes: 901775360,
      oomEvents: 2,
      oomKillEvents: 1,
      anonBytes: 524288000,
      fileBytes: 167772160,
      kernelBytes: 25165824,
      shmemBytes: 2097152,
    });
    expect(s.findings?.map((f) => f.id)).toContain("cgroup-oom-kills");
  });

  it("fast tier reads the single values only", () => {
    const cg = fromTree("v2", "fast").cgroup;
    expect(cg?.usageBytes).toBe(734003200);
    expect(cg?.anonBytes).toBeUndefined();
  });

  it("inside a cgroup namespace: '/' is the mount point itself; a missing 'kernel' key stays absent", () => {
    const cg = fromTree("v2-namespaced", "standard").cgroup;
    expect(cg).toMatchObject({ version: 2, path: "/", usageBytes: 52428800, limitBytes: 268435456 });
    expect(cg?.kernelBytes).toBeUndefined();
    expect(cg?.anonBytes).toBe(524288000);
  });

  it("a bind-mounted subtree: the mount's root is taken off the path", () => {
    const cg = fromTree("v2-bind", "standard").cgroup;
    expect(cg).toEqual({ version: 2, path: "/kubepods/burstable/pod7/ctr1", usageBytes: 104857600 });
  });
});

describe("a kernel without smaps_rollup", () => {
  it("sums the same keys over smaps", () => {
    expect(readdirSync(join(tree("no-rollup"), "proc", String(PID)))).not.toContain("smaps_rollup");
    const s = fromTree("no-rollup", "standard");
    const smaps = read("no-rollup", "smaps");
    expect(s.process?.pssBytes).toBe(sumKb(smaps, "Pss"));
    expect(s.process?.lazyFreeBytes).toBe(sumKb(smaps, "LazyFree"));
    expect(s.process?.rssBytes).toBe(sumKb(smaps, "Rss"));
    expect(s.warnings.map((w) => w.code)).toEqual(["ALLOCATOR_NOT_READABLE_FROM_OUTSIDE"]);
  });
});

describe("every tree gives honest numbers", () => {
  for (const name of ["v1-hybrid", "v2", "v2-namespaced", "v2-bind", "no-rollup"]) {
    it(name, () => expectHonestNumbers(fromTree(name)));
  }
});

describe("parsers", () => {
  it("parseLimit: 'max' and the v1 sentinels mean no limit", () => {
    expect(parseLimit("max\n")).toBeUndefined();
    expect(parseLimit("9223372036854771712\n")).toBeUndefined();
    expect(parseLimit("9223372036854775807")).toBeUndefined();
    expect(parseLimit("536870912\n")).toBe(536870912);
    expect(parseLimit("-1")).toBeUndefined();
    expect(parseLimit("")).toBeUndefined();
  });

  it("parseMountinfo skips a line whose root or mount point is not an absolute path (found by the property test)", () => {
    const text = [
      "35 31 0:32 / !/sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
      "36 31 0:33 x/y /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices",
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
    ].join("\n");
    expect(parseMountinfo(text).map((m) => m.mountPoint)).toEqual(["/sys/fs/cgroup/unified"]);
    const found = locateMemoryCgroup(parseProcCgroup("4:memory:/a\n0::/\n"), parseMountinfo(text));
    expect(found).toEqual({ problem: "the memory cgroup v1 hierarchy is not mounted" });
  });

  it("parseMountinfo unescapes octal in mount points", () => {
    const [m] = parseMountinfo("30 25 0:26 / /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n");
    expect(m?.mountPoint).toBe("/sys/fs/cgroup x");
    expect(m?.fsType).toBe("cgroup2");
  });

  it("locateMemoryCgroup says why when it cannot", () => {
    const lines = parseProcCgroup("0::/a/b\n");
    expect(locateMemoryCgroup(lines, [])).toEqual({ problem: "no cgroup2 filesystem is mounted" });
    const mounts = parseMountinfo("1 1 0:1 /other /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    expect(locateMemoryCgroup(lines, mounts)).toEqual({
      problem: "the cgroup /a/b lies outside the mounted cgroup2 tree",
    });
    expect(locateMemoryCgroup(parseProcCgroup("garbage"), mounts)).toEqual({
      problem: "the process is in no memory cgroup",
    });
  });
});

describe("the own process's files, read through kept descriptors", () => {
  it("a file larger than the reused buffer is read whole, as bytes and as text, and the next read is the next file's", () => {
    // A procfs root whose directory for this pid holds a status of 40 KiB: the kept reader's
    // buffer starts at 16 KiB, so the read must grow it and read again from the start.
    const root = mkdtempSync(join(tmpdir(), "heapstate-kept-"));
    try {
      const dir = join(root, String(process.pid));
      mkdirSync(dir);
      const padding = Array.from({ length: 2000 }, (_, i) => `Pad${i}:\t${i} kB`).join("\n");
      writeFileSync(join(dir, "status"), `${padding}\nVmRSS:\t777 kB\nThreads:\t3\n`);
      writeFileSync(join(dir, "smaps_rollup"), "Rss:  5 kB\n");
      const bytes = readProcText(root, process.pid, "status");
      expect(typeof bytes).not.toBe("string");
      expect(bytes.length).toBe(Buffer.byteLength(readFileSync(join(dir, "status"))));
      expect(parseStatus(bytes)).toEqual({ rssBytes: 777 * 1024, threads: 3 });
      expect(parseStatus(readProcFile(root, process.pid, "status"))).toEqual({ rssBytes: 777 * 1024, threads: 3 });
      // The grown buffer's stale bytes after a shorter file are not part of it.
      const rollup = readProcText(root, process.pid, "smaps_rollup");
      expect(rollup.length).toBe(11);
      expect(parseSmapsTotals(rollup)).toEqual({ rssBytes: 5 * 1024 });
      // Another process's files are text, read afresh.
      expect(typeof readProcText("/proc", "self", "status")).toBe("string");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
