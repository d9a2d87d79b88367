// heapstate in its own process, beside the kernel's floor and the peers: every tier, the cached
// snapshot, the bare reads the fast tier makes, prom-client, pidusage, procfs readers; whole
// commands (show-host, pmap), and the host view over 200 more node processes.

import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";
import { buildDir, commandMs, dist, floor, log, measure, require, root, round, smoke, us } from "./common.mjs";

/** Fills results.floor, results.inProcess and results.commands; returns what the targets need of the floor. */
export async function inProcessBench(results) {
  const h = dist("index.js");
  const { prometheusText } = dist("faces", "metrics", "prometheus.js");
  const { readKept } = dist("core", "procfs", "read.js");
  const { native } = dist("core", "addon", "native.js");
  const { readAllocators } = dist("core", "addon", "native-read.js");
  // The files heapstate reads, for this process (a first reading opens them).
  h.collect({ tier: "deep" });
  const cgroupDir = (() => {
    const cg = readFileSync("/proc/self/cgroup", "utf8");
    const v1 = /^\d+:memory:(.*)$/m.exec(cg);
    if (v1) return { v: 1, dir: `/sys/fs/cgroup/memory${v1[1]}` };
    const v2 = /^0::(.*)$/m.exec(cg);
    return v2 ? { v: 2, dir: `/sys/fs/cgroup${v2[1]}` } : undefined;
  })();
  const cgroupFiles = cgroupDir
    ? cgroupDir.v === 1
      ? ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control"]
      : ["memory.current", "memory.max", "memory.high", "memory.peak", "memory.events"]
    : [];
  const pid = process.pid;
  log("floor…");
  const fileFloor = floor([
    "files",
    smoke ? 200 : 3000,
    `/proc/${pid}/status`,
    `/proc/${pid}/statm`,
    `/proc/${pid}/smaps_rollup`,
    `/proc/${pid}/smaps`,
    ...cgroupFiles.map((f) => `${cgroupDir.dir}/${f}`),
  ]);
  const mi2Floor = floor(["mallinfo2", smoke ? 200 : 3000]).mallinfo2;
  const floorUs = (path) => (fileFloor[path] ? us(fileFloor[path].medianNs) : undefined);
  const floorP99Us = (path) => (fileFloor[path] ? us(fileFloor[path].p99Ns) : undefined);
  results.floor = Object.fromEntries(
    Object.entries(fileFloor).map(([k, v]) => [
      k.replace(String(pid), "<pid>"),
      v && { medianUs: round(us(v.medianNs), 2), p99Us: round(us(v.p99Ns), 2), bytes: v.bytes },
    ]),
  );
  results.floor.mallinfo2 = {
    medianUs: round(us(mi2Floor.medianNs), 2),
    p99Us: round(us(mi2Floor.p99Ns), 2),
    note: "the floor program's own small heap",
  };

  log("heapstate and peers…");
  const client = require("prom-client");
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const { procfs } = require("@stroncium/procfs");
  const pidusage = require("pidusage");
  const si = require("systeminformation");
  // prom-client's memory metrics alone: what a per-request or per-test reading replaces.
  // (Through its public API: the default metrics' registry, asked for those four families only.)
  const promMemoryFamilies = [
    "process_resident_memory_bytes",
    "nodejs_heap_size_total_bytes",
    "nodejs_heap_size_used_bytes",
    "nodejs_external_memory_bytes",
  ];
  const promMemory = () => Promise.all(promMemoryFamilies.map((n) => registry.getSingleMetricAsString(n)));
  // The bare reads the fast tier makes, from JavaScript: status and the cgroup's value files through
  // kept descriptors (one read at offset 0), the allocator's counters through the addon (as the fast
  // tier reads them: numbers into a reused buffer, put under their names), V8's figures.
  const binding = native();
  const cgroupValueFiles = cgroupDir
    ? (cgroupDir.v === 1
        ? ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control"]
        : ["memory.current", "memory.max", "memory.high", "memory.peak", "memory.events"]
      ).map((f) => `${cgroupDir.dir}/${f}`)
    : [];
  const bareReads = () => {
    readKept("/proc/self/status");
    for (const f of cgroupValueFiles) {
      try {
        readKept(f);
      } catch {}
    }
    if (binding) readAllocators(binding, { glibc: true, mallocInfo: false });
    getHeapStatistics();
    getHeapSpaceStatistics();
    process.memoryUsage();
  };
  // The same reads with unrelated work between them (walking 1 MiB of other objects, as a service
  // or the reading's own code would): what the caches cost the reads when they are not back to back.
  const other = Array.from({ length: 20_000 }, (_, i) => ({ a: i, b: String(i) }));
  const otherWork = () => {
    let sum = 0;
    for (let i = 0; i < 20_000; i += 7) sum += other[(i * 7919) % 20_000].a;
    return sum;
  };
  const s1 = h.collect();
  const s2 = h.collect();
  const inProcess = await measure([
    ["unrelated work alone (1 MiB of objects walked)", otherWork],
    [
      "bare reads, each followed by the unrelated work",
      () => {
        bareReads();
        otherWork();
      },
    ],
    ["bare reads from JavaScript (status, cgroup values, allocator counters, V8 figures)", bareReads],
    ["prom-client memory metrics (resident memory, heap and external)", promMemory],
    ["the addon's read() (an object with a key per counter)", () => binding?.read({ glibc: true })],
    [
      "the addon's readNumbers(), put under their names (what a reading uses)",
      () => binding && readAllocators(binding, { glibc: true, mallocInfo: false }),
    ],
    ["heapstate collect fast", () => h.collect({ tier: "fast" })],
    ["heapstate collect standard", () => h.collect({ tier: "standard" })],
    ["heapstate collect deep", () => h.collect({ tier: "deep" })],
    ["heapstate snapshot cached", () => h.snapshot({ maxAgeMs: 3_600_000 })],
    ["heapstate snapshot uncached", () => h.snapshot({ maxAgeMs: 0 })],
    ["heapstate formatHuman", () => h.formatHuman(s1)],
    ["heapstate diff", () => h.diff(s1, s2)],
    ["heapstate prometheusText", () => prometheusText(s1)],
    ["process.memoryUsage()", () => process.memoryUsage()],
    // What a consumer that follows peaks adds to each reading: VmHWM reset (docs/diagnosis.md).
    ["VmHWM reset (/proc/self/clear_refs)", () => writeFileSync("/proc/self/clear_refs", "5")],
    ["process.memoryUsage.rss()", () => process.memoryUsage.rss()],
    ["v8.getHeapStatistics()", () => getHeapStatistics()],
    ["prom-client default metrics (register.metrics())", () => registry.metrics()],
    ["@stroncium/procfs processStatus (status parse)", () => procfs.processStatus(pid)],
    ["pidusage (own pid)", () => pidusage(pid)],
  ]);
  // trim() walks and releases: a few runs only.
  Object.assign(
    inProcess,
    await measure([["heapstate trim", () => h.trim()]], { time: smoke ? 20 : 300, iterations: smoke ? 3 : 20 }),
  );
  Object.assign(
    inProcess,
    await measure([["systeminformation processLoad('node')", () => si.processLoad("node")]], {
      time: smoke ? 50 : 1000,
      iterations: smoke ? 2 : 10,
    }),
  );
  results.inProcess = inProcess;

  results.commands = {
    "node -e 0 (baseline)": commandMs(process.execPath, ["-e", "0"], smoke ? 2 : 10),
    "heapstate show-host --tier fast": commandMs(
      process.execPath,
      [join(root, "bin", "heapstate.js"), "--tier", "fast"],
      smoke ? 2 : 10,
    ),
    "heapstate show-host (standard)": commandMs(process.execPath, [join(root, "bin", "heapstate.js")], smoke ? 2 : 10),
    "pmap -X <this pid>": commandMs("pmap", ["-X", String(pid)], smoke ? 2 : 10),
  };
  // The host view over 200 more processes named node (copies of sleep: what the view reads of them
  // is what it reads of Node, at a fraction of the memory), standard and fast tiers.
  {
    const dir = join(buildDir, "hostview");
    mkdirSync(dir, { recursive: true });
    const fake = join(dir, "node");
    copyFileSync("/bin/sleep", fake);
    const fakes = Array.from({ length: smoke ? 20 : 200 }, () => spawn(fake, ["600"], { stdio: "ignore" }));
    try {
      results.commands[`heapstate show-host (host view, ${fakes.length} more node processes)`] = commandMs(
        process.execPath,
        [join(root, "bin", "heapstate.js"), "--json"],
        smoke ? 1 : 5,
      );
      results.commands[`heapstate show-host --tier fast (host view, ${fakes.length} more node processes)`] = commandMs(
        process.execPath,
        [join(root, "bin", "heapstate.js"), "--json", "--tier", "fast"],
        smoke ? 1 : 5,
      );
    } finally {
      for (const f of fakes) f.kill();
    }
  }

  return { cgroupDir, cgroupFiles, floorUs, floorP99Us, mi2Floor, pid };
}
