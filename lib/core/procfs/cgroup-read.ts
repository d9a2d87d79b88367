/** Reads the memory cgroup of a process (v1 or v2). Each file fails alone. */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errorText } from "../base/errors";
import type { CgroupState, CpuState, Tier, Warning } from "../model/types";
import {
  type CgroupLocation,
  flatKeyedValue,
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
import { keptSpan, readKept, readKeptBytes, readKeptSpan, readProcFile } from "./read";
import type { Text } from "./scan";

/** The cgroup's files: kept descriptors for the own process (see readKept), plain reads otherwise. */
function tryRead(file: string, self: boolean): string | undefined {
  try {
    return self ? readKept(file) : readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** Where {@link spanOf}'s file lies in the text it returned: one pair for the module. */
const within = { from: 0, to: 0 };

/**
 * A cgroup file for a scanner without a view or a string made for it: the own process's files
 * are the kept buffer (readKeptSpan), `within` saying where; another's, its text whole.
 */
function spanOf(loc: CgroupLocation, name: string, self: boolean): Text | undefined {
  try {
    if (self) {
      const bytes = readKeptSpan(filePath(loc, name));
      within.from = keptSpan.start;
      within.to = keptSpan.end;
      return bytes;
    }
    const text = readFileSync(filePath(loc, name), "utf8");
    within.from = 0;
    within.to = text.length;
    return text;
  } catch {
    return undefined;
  }
}

/** A single-value file's number (undefined: unreadable, or not a value `parse` takes). */
function numberIn(
  loc: CgroupLocation,
  name: string,
  self: boolean,
  parse: (text: Text, from: number, to: number) => number | undefined,
): number | undefined {
  const text = spanOf(loc, name, self);
  return text === undefined ? undefined : parse(text, within.from, within.to);
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
  const keyed = (name: string) => tryReadText(filePath(loc, name), self);
  const v2 = loc.version === 2;
  const f = v2 ? V2_FILES.fast : V1_FILES.fast;
  const usageName = f[0];
  const usageText = spanOf(loc, usageName, self);
  const usage = usageText === undefined ? undefined : parseCounter(usageText, within.from, within.to);
  if (usage === undefined) {
    warnings.push({
      source: "cgroup",
      code: "CGROUP_UNREADABLE",
      message: `${join(loc.dir, usageName)} ${usageText === undefined ? "could not be read (no memory controller here, or the root cgroup)" : "holds no byte count"}`,
    });
    return undefined;
  }
  const out: CgroupState = { version: loc.version, path: loc.path, usageBytes: usage };
  // The fast tier's single values, parsed where their bytes lie (no view, no string per file).
  if (v2) {
    set(out, "limitBytes", numberIn(loc, V2_FILES.fast[1], self, parseLimit));
    set(out, "highBytes", numberIn(loc, V2_FILES.fast[2], self, parseLimit));
    set(out, "peakBytes", numberIn(loc, V2_FILES.fast[3], self, parseCounter));
    const events = spanOf(loc, V2_FILES.fast[4], self);
    if (events !== undefined) {
      const { from, to } = within;
      set(out, "oomEvents", flatKeyedValue(events, "oom", from, to));
      set(out, "oomKillEvents", flatKeyedValue(events, "oom_kill", from, to));
    }
  } else {
    set(out, "limitBytes", numberIn(loc, V1_FILES.fast[1], self, parseLimit));
    set(out, "peakBytes", numberIn(loc, V1_FILES.fast[2], self, parseCounter));
    const oom = spanOf(loc, V1_FILES.fast[3], self);
    if (oom !== undefined) set(out, "oomKillEvents", flatKeyedValue(oom, "oom_kill", within.from, within.to));
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
    if (!v2) set(out, "kernelBytes", numberIn(loc, V1_FILES.more[1], self, parseCounter));
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
