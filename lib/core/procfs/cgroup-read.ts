/** Reads the memory cgroup of a process (v1 or v2). Each file fails alone. */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errorText } from "../base/errors";
import type { CgroupState, CpuState, Tier, Warning } from "../model/types";
import {
  type CgroupLocation,
  locateController,
  locateMemoryCgroup,
  parseCounter,
  parseCpuList,
  parseCpuQuota,
  parseFlatKeyed,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
} from "./cgroup";
import { readKept, readKeptBytes, readProcFile } from "./read";
import type { Text } from "./scan";

/** The cgroup's files: kept descriptors for the own process (see readKept), plain reads otherwise. */
function tryRead(file: string, self: boolean): string | undefined {
  try {
    return self ? readKept(file) : readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** The same, for a scanner: the own process's files as bytes, valid until the next kept read. */
function tryReadText(file: string, self: boolean): Text | undefined {
  try {
    return self ? readKeptBytes(file) : readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Where the own process's cgroup is, kept for LOCATION_TTL_MS: locating it parses mountinfo (a
 * few hundred µs on a busy host), while the fast tier reads only a few tiny files. A process moves
 * between cgroups rarely; a move is noticed within the TTL.
 */
const LOCATION_TTL_MS = 10_000;
let located: { key: string; at: number; location: CgroupLocation } | undefined;

/** Finds the memory cgroup; undefined with a warning when it cannot be found. */
export function locate(procRoot: string, fsRoot: string, pid: number, warnings: Warning[]): CgroupLocation | undefined {
  const self = pid === process.pid;
  const key = `${procRoot}\0${fsRoot}`;
  const now = performance.now();
  if (self && located?.key === key && now - located.at < LOCATION_TTL_MS) return located.location;
  const location = locateUncached(procRoot, fsRoot, pid, warnings);
  if (self && location) located = { key, at: now, location };
  return location;
}

function locateUncached(
  procRoot: string,
  fsRoot: string,
  pid: number,
  warnings: Warning[],
): CgroupLocation | undefined {
  let cgroupText: string;
  let mountText: string;
  try {
    cgroupText = readProcFile(procRoot, pid, "cgroup");
    mountText = readProcFile(procRoot, pid, "mountinfo");
  } catch (error) {
    warnings.push({
      source: "cgroup",
      code: "CGROUP_UNREADABLE",
      message: `the cgroup of process ${pid} could not be located: ${errorText(error)}`,
    });
    return undefined;
  }
  const found = locateMemoryCgroup(parseProcCgroup(cgroupText), parseMountinfo(mountText));
  if ("problem" in found) {
    warnings.push({ source: "cgroup", code: "CGROUP_NOT_FOUND", message: found.problem });
    return undefined;
  }
  return { ...found.location, dir: join(fsRoot, found.location.dir) };
}

/** Each location's file paths, built once: the fast tier reads the same few files at every reading. */
const paths = new WeakMap<CgroupLocation, Map<string, string>>();

function filePath(loc: CgroupLocation, name: string): string {
  let byName = paths.get(loc);
  if (byName === undefined) {
    byName = new Map();
    paths.set(loc, byName);
  }
  let path = byName.get(name);
  if (path === undefined) {
    path = `${loc.dir}/${name}`;
    byName.set(name, path);
  }
  return path;
}

function set<K extends keyof CgroupState>(out: CgroupState, key: K, value: CgroupState[K] | undefined): void {
  if (value !== undefined) out[key] = value;
}

/** The keys read from memory.stat, memory.events and memory.oom_control. */
const STAT_KEYS_V2 = ["anon", "file", "shmem", "kernel"] as const;
const STAT_KEYS_V1 = ["total_rss", "rss", "total_cache", "cache", "total_shmem", "shmem"] as const;
const EVENT_KEYS = ["oom", "oom_kill"] as const;
const OOM_KILL = ["oom_kill"] as const;

/** The files readCgroup() reads at a location, by tier: what a reading may read ahead (addon/kernel-files.ts). */
export function cgroupReadPaths(loc: CgroupLocation, tier: Tier): string[] {
  const f = loc.version === 2 ? V2_FILES : V1_FILES;
  const names = tier === "fast" ? f.fast : [...f.fast, ...f.more];
  return names.map((name) => filePath(loc, name));
}

/** Each version's files: the single values every tier reads, and what the standard tier adds. */
const V2_FILES = {
  fast: ["memory.current", "memory.max", "memory.high", "memory.peak", "memory.events"],
  more: ["memory.stat"],
} as const;
const V1_FILES = {
  fast: ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control"],
  more: ["memory.stat", "memory.kmem.usage_in_bytes"],
} as const;

/** Reads the memory files at a location. Tier fast reads the single values; standard adds memory.stat. */
export function readCgroup(
  loc: CgroupLocation,
  tier: Tier,
  warnings: Warning[],
  self = false,
): CgroupState | undefined {
  const file = (name: string) => tryRead(filePath(loc, name), self);
  const keyed = (name: string) => tryReadText(filePath(loc, name), self);
  const v2 = loc.version === 2;
  const usageName = v2 ? V2_FILES.fast[0] : V1_FILES.fast[0];
  const usageText = file(usageName);
  const usage = usageText === undefined ? undefined : parseCounter(usageText);
  if (usage === undefined) {
    warnings.push({
      source: "cgroup",
      code: "CGROUP_UNREADABLE",
      message: `${join(loc.dir, usageName)} ${usageText === undefined ? "could not be read (no memory controller here, or the root cgroup)" : "holds no byte count"}`,
    });
    return undefined;
  }
  const out: CgroupState = { version: loc.version, path: loc.path, usageBytes: usage };
  const limit = (name: string) => {
    const t = file(name);
    return t === undefined ? undefined : parseLimit(t);
  };
  const counter = (name: string) => {
    const t = file(name);
    return t === undefined ? undefined : parseCounter(t);
  };
  if (v2) {
    const [, max, high, peak, eventsFile] = V2_FILES.fast;
    set(out, "limitBytes", limit(max));
    set(out, "highBytes", limit(high));
    set(out, "peakBytes", counter(peak));
    const events = keyed(eventsFile);
    if (events !== undefined) {
      const e = parseFlatKeyed(events, EVENT_KEYS);
      set(out, "oomEvents", e.get("oom"));
      set(out, "oomKillEvents", e.get("oom_kill"));
    }
  } else {
    const [, limitFile, peakFile, oomFile] = V1_FILES.fast;
    set(out, "limitBytes", limit(limitFile));
    set(out, "peakBytes", counter(peakFile));
    const oom = keyed(oomFile);
    if (oom !== undefined) set(out, "oomKillEvents", parseFlatKeyed(oom, OOM_KILL).get("oom_kill"));
  }
  if (tier !== "fast") {
    const statText = keyed(V2_FILES.more[0]);
    if (statText !== undefined) {
      const stat = parseFlatKeyed(statText, v2 ? STAT_KEYS_V2 : STAT_KEYS_V1);
      // v1 counts the cgroup alone under "rss" and with its children under "total_rss";
      // usage_in_bytes is hierarchical, so the hierarchical keys match it.
      const pick = (v1: string) => stat.get(`total_${v1}`) ?? stat.get(v1);
      set(out, "anonBytes", v2 ? stat.get("anon") : pick("rss"));
      set(out, "fileBytes", v2 ? stat.get("file") : pick("cache"));
      set(out, "shmemBytes", v2 ? stat.get("shmem") : pick("shmem"));
      if (v2) set(out, "kernelBytes", stat.get("kernel"));
    }
    if (!v2) set(out, "kernelBytes", counter(V1_FILES.more[1]));
  }
  return out;
}

let online: { root: string; path: string } | undefined;
function onlinePath(fsRoot: string): string {
  if (online?.root !== fsRoot) online = { root: fsRoot, path: join(fsRoot, "sys/devices/system/cpu/online") };
  return online.path;
}

let cpuLocated: { key: string; at: number; location: CgroupLocation | undefined } | undefined;

/**
 * The CPUs: how many are online (what glibc sizes its arena limit by) and the cgroup's CPU quota.
 * Each fails alone, silently: a missing figure is absent (the memory cgroup's reader warns about
 * an unreadable hierarchy already).
 */
export function readCpu(procRoot: string, fsRoot: string, pid: number): CpuState {
  const self = pid === process.pid;
  const out: CpuState = {};
  // Not a file of the process: a kept descriptor is safe for it whoever is read.
  const online = tryRead(onlinePath(fsRoot), true);
  const n = online === undefined ? undefined : parseCpuList(online);
  if (n !== undefined) out.onlineCpus = n;
  const key = `${procRoot}\0${fsRoot}\0${pid}`;
  const now = performance.now();
  let location: CgroupLocation | undefined;
  if (self && cpuLocated?.key === key && now - cpuLocated.at < LOCATION_TTL_MS) location = cpuLocated.location;
  else {
    try {
      const found = locateController(
        parseProcCgroup(readProcFile(procRoot, pid, "cgroup")),
        parseMountinfo(readProcFile(procRoot, pid, "mountinfo")),
        "cpu",
      );
      location = "location" in found ? { ...found.location, dir: join(fsRoot, found.location.dir) } : undefined;
    } catch {
      location = undefined;
    }
    if (self) cpuLocated = { key, at: now, location };
  }
  if (location) {
    const quota =
      location.version === 2
        ? ((t) => (t === undefined ? undefined : parseCpuQuota(t)))(tryRead(filePath(location, "cpu.max"), self))
        : ((q, p) => (q === undefined || p === undefined ? undefined : parseCpuQuota(q, p)))(
            tryRead(filePath(location, "cpu.cfs_quota_us"), self),
            tryRead(filePath(location, "cpu.cfs_period_us"), self),
          );
    if (quota !== undefined) out.quotaCpus = quota;
  }
  return out;
}
