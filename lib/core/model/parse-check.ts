/**
 * The shape of a parsed snapshot, checked in place: known parts of the wrong shape, and names
 * outside the closed sets, are left out, each with an INVALID_FIELD warning.
 */
import { type Checker, isObject, type Obj, short } from "./parse-values";
import {
  ALLOCATOR_NAMES,
  CHILD_NAMES,
  FINDING_IDS,
  PART_NAMES,
  REGION_CATEGORIES,
  WARNING_CODES,
  WARNING_SOURCES,
} from "./types";

export { Checker, isObject, type Obj, short } from "./parse-values";

const str = (v: unknown) => typeof v === "string";

function allocatorProblem(c: Checker, a: Obj, at: string): string | undefined {
  if (!str(a.allocator) || !str(a.library)) return "has no allocator or library name";
  if (!(ALLOCATOR_NAMES as readonly unknown[]).includes(a.allocator))
    return `names an allocator heapstate does not know (${short(a.allocator)})`;
  if (a.servesMalloc !== undefined && typeof a.servesMalloc !== "boolean")
    return "has a servesMalloc that is not a boolean";
  c.bytesOf(a, at);
  const pages = c.object(a, "pages", at);
  if (pages) c.bytesOf(pages, `${at}.pages`);
  c.object(a, "config", at);
  c.object(a, "raw", at);
  c.stringsOf(a, at, ["version", "asOf"]);
  const limit = c.object(a, "arenaLimit", at);
  if (limit && (!c.bytesOk(limit.arenas, false) || !str(limit.source))) {
    delete a.arenaLimit;
    c.drop(`${at}.arenaLimit`, "is not a limit (arenas, source)");
  }
  const groups = c.object(a, "arenaGroups", at);
  if (groups) {
    for (const key of ["main", "threads"]) {
      const g = c.object(groups, key, `${at}.arenaGroups`);
      if (g) {
        c.bytesOf(g, `${at}.arenaGroups.${key}`);
        c.countsOf(g, `${at}.arenaGroups.${key}`, ["arenas"]);
      }
    }
  }
  if (a.arenas !== undefined && !(typeof a.arenas === "number" && Number.isFinite(a.arenas) && a.arenas >= 0)) {
    delete a.arenas;
    c.drop(`${at}.arenas`, "was not a count");
  }
  return undefined;
}

/** Checks the known parts of a parsed snapshot (written as heapstate/`version`) in place. */
export function checkShape(obj: Obj, c: Checker, version: number): void {
  checkWarnings(obj, c);
  checkKernel(obj, c);
  checkAutoTrim(obj, c);
  checkAllocators(obj, c);
  checkRegions(obj, c);
  checkNativeSites(obj, c);
  const b = c.object(obj, "breakdown", "snapshot");
  if (b) {
    // Before heapstate/3 the breakdown carried the RSS it partitions; since, it is process.rssBytes.
    const rss = version < 3 ? b.rssBytes : (obj.process as Obj | undefined)?.rssBytes;
    const why = breakdownProblem(c, b, rss);
    if (why) {
      delete obj.breakdown;
      c.drop("snapshot.breakdown", why);
    }
  }
  checkFindings(obj, c);
  checkBookkeeping(obj, c);
}

/** Warnings: a known code, and a known source (or one reporter's). */
function checkWarnings(obj: Obj, c: Checker): void {
  c.list(obj, "warnings", "snapshot", (w) => {
    if (!str(w.code) || !str(w.message) || !str(w.source)) return "is not a warning (source, code, message)";
    if (!(WARNING_CODES as readonly unknown[]).includes(w.code))
      return `has a code heapstate does not know (${short(w.code)})`;
    const source = w.source as string;
    if (!(WARNING_SOURCES as readonly string[]).includes(source) && !source.startsWith("reporter "))
      return `has a source heapstate does not know (${short(source)})`;
    return undefined;
  });
}

/** The kernel's and V8's figures: process, v8, cpu, peak, cgroup. */
function checkKernel(obj: Obj, c: Checker): void {
  for (const key of ["process", "v8"]) {
    const part = c.object(obj, key, "snapshot");
    if (part) c.bytesOf(part, `snapshot.${key}`);
  }
  const proc = obj.process as Obj | undefined;
  if (proc) {
    c.countsOf(proc, "snapshot.process", ["threads"]);
    c.stringsOf(proc, "snapshot.process", ["rssSource"]);
    const names = c.object(proc, "threadNames", "snapshot.process");
    if (names) c.countsOf(names, "snapshot.process.threadNames", Object.keys(names));
  }
  const cpu = c.object(obj, "cpu", "snapshot");
  if (cpu) c.countsOf(cpu, "snapshot.cpu", ["onlineCpus", "quotaCpus"]);
  const peak = c.object(obj, "peak", "snapshot");
  if (peak && (!c.bytesOk(peak.rssBytes, false) || !str(peak.since) || !str(peak.source))) {
    delete obj.peak;
    c.drop("snapshot.peak", "is not a peak (rssBytes, since, source)");
  }
  const v8 = obj.v8 as Obj | undefined;
  if (v8) {
    c.list(v8, "spaces", "snapshot.v8", (sp, at) => {
      if (!str(sp.name)) return "has no name";
      c.bytesOf(sp, at);
      return undefined;
    });
  }
  const cg = c.object(obj, "cgroup", "snapshot");
  if (cg) {
    c.bytesOf(cg, "snapshot.cgroup");
    c.countsOf(cg, "snapshot.cgroup", ["oomEvents", "oomKillEvents"]);
    if ((cg.version !== 1 && cg.version !== 2) || !str(cg.path) || cg.usageBytes === undefined) {
      delete obj.cgroup;
      c.drop("snapshot.cgroup", "has no version, path or usage");
    }
  }
}

/** A running auto-trim's record. */
function checkAutoTrim(obj: Obj, c: Checker): void {
  const auto = c.object(obj, "autoTrim", "snapshot");
  if (auto) {
    c.bytesOf(auto, "snapshot.autoTrim");
    c.countsOf(auto, "snapshot.autoTrim", [
      "baseIntervalMs",
      "intervalMs",
      "maxPauseMs",
      "checks",
      "trims",
      "skippedBelowFloor",
      "skippedPause",
      "skippedUnmeasured",
      "maxObservedPauseMs",
    ]);
    for (const key of ["lastTrim", "lastSkip"]) {
      const last = c.object(auto, key, "snapshot.autoTrim");
      if (!last) continue;
      c.bytesOf(last, `snapshot.autoTrim.${key}`);
      c.countsOf(last, `snapshot.autoTrim.${key}`, ["pauseMs", "pauseCpuMs", "predictedPauseMs"]);
      c.stringsOf(last, `snapshot.autoTrim.${key}`, ["time", "reason"]);
    }
  }
}

/** The allocators (a heapstate/1 file's `heap` among them). */
function checkAllocators(obj: Obj, c: Checker): void {
  const heap = c.object(obj, "heap", "snapshot");
  if (heap) {
    const why = allocatorProblem(c, heap, "snapshot.heap");
    if (why) {
      delete obj.heap;
      c.drop("snapshot.heap", why);
    }
  }
  if (obj.allocators === undefined) obj.allocators = obj.heap ? [obj.heap] : [];
  c.list(obj, "allocators", "snapshot", (a, at) => allocatorProblem(c, a, at));
  obj.allocators ??= [];
}

/** smaps regions: a known category, a mapping count, byte figures. */
function checkRegions(obj: Obj, c: Checker): void {
  c.list(obj, "regions", "snapshot", (r, at) => {
    if (!str(r.category)) return "has no category";
    const category = r.category as string;
    if (!(REGION_CATEGORIES as readonly string[]).includes(category) && !category.startsWith("anon:"))
      return `has a category heapstate does not know (${short(category)})`;
    if (!c.bytesOk(r.count, false)) return "has no mapping count";
    c.bytesOf(r, at);
    if (r.mappings !== undefined && !Array.isArray(r.mappings)) delete r.mappings;
    return undefined;
  });
}

const SITE_OWNERS = ["native-v8", "native-array-buffers", "addon", "unclassified"];

/**
 * The native heap's sites: figures, a known owner, and frames of words only (names read from
 * another process's files reach a printer: a frame that is not words is dropped with its site).
 */
function checkNativeSites(obj: Obj, c: Checker): void {
  const n = c.object(obj, "nativeSites", "snapshot");
  if (!n) return;
  c.list(n, "sites", "snapshot.nativeSites", (s) => {
    for (const k of ["bytes", "plusMinusBytes", "objects", "samples"])
      if (!c.bytesOk(s[k], false)) return `has no ${k}`;
    if (!SITE_OWNERS.includes(s.owner as string)) return `has an owner heapstate does not know (${short(s.owner)})`;
    if (s.library !== undefined && !str(s.library)) return "has a library that is not a name";
    if (!Array.isArray(s.frames)) return "has no frames";
    for (const f of s.frames as unknown[]) {
      if (!isObject(f)) return "has a frame that is not one";
      for (const v of Object.values(f)) if (!str(v)) return "has a frame that is not words";
    }
    return undefined;
  });
}

/** Findings: a known id, a severity, a message, and evidence of figures and words only. */
function checkFindings(obj: Obj, c: Checker): void {
  c.list(obj, "findings", "snapshot", (f) => {
    if (!str(f.id) || !str(f.message) || (f.severity !== "info" && f.severity !== "warn"))
      return "is not a finding (id, severity, message)";
    if (!(FINDING_IDS as readonly unknown[]).includes(f.id))
      return `has an id heapstate does not know (${short(f.id)})`;
    if (!isObject(f.evidence)) f.evidence = {};
    for (const [k, v] of Object.entries(f.evidence as Obj)) {
      if (!str(v) && !(typeof v === "number" && Number.isFinite(v))) delete (f.evidence as Obj)[k];
    }
    return undefined;
  });
}

/** Who was read, and what the reading cost. */
function checkBookkeeping(obj: Obj, c: Checker): void {
  const identity = c.object(obj, "identity", "snapshot");
  if (identity) {
    for (const [k, v] of Object.entries(identity)) if (typeof v !== "string") delete identity[k];
  }
  const costs = c.object(obj, "sourceCostMicros", "snapshot");
  if (costs) {
    for (const [k, v] of Object.entries(costs)) if (!(typeof v === "number" && Number.isFinite(v))) delete costs[k];
  }
  if (obj.costMicros !== undefined && !(typeof obj.costMicros === "number" && Number.isFinite(obj.costMicros))) {
    c.drop("snapshot.costMicros", "was not a number");
    delete obj.costMicros;
  }
}

/** Why a breakdown cannot be kept: its parts must be byte figures that, with the remainder, add up to its RSS. */
function breakdownProblem(c: Checker, b: Obj, rss: unknown): string | undefined {
  if (!c.bytesOk(rss, false)) return "has no RSS figure to partition";
  if (!c.bytesOk(b.unattributedBytes, true)) return "has no remainder figure";
  if (!Array.isArray(b.parts)) return "has no parts array";
  for (const p of b.parts as unknown[]) {
    if (!isObject(p) || !str(p.name) || !str(p.source) || !c.bytesOk(p.bytes, false)) {
      return "has a part that is not a part (name, bytes ≥ 0, source)";
    }
    if (!(PART_NAMES as readonly unknown[]).includes(p.name))
      return `has a part heapstate does not know (${short(p.name)})`;
  }
  (b.parts as Obj[]).forEach((p, i) => {
    if (p.children === undefined) return;
    const children = p.children;
    let sum = 0;
    const ok =
      Array.isArray(children) &&
      children.every((k: unknown) => {
        if (!isObject(k) || !str(k.name) || !str(k.source) || !c.bytesOk(k.bytes, false)) return false;
        if (!(CHILD_NAMES as readonly unknown[]).includes(k.name)) return false;
        sum += k.bytes as number;
        return true;
      }) &&
      sum === p.bytes;
    if (!ok) {
      delete p.children;
      c.drop(`snapshot.breakdown.parts[${i}].children`, "were not parts adding up to their part");
    }
  });
  const chain = c.object(b, "chain", "snapshot.breakdown");
  if (chain) {
    for (const [k, v] of Object.entries(chain)) {
      if (!(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
        delete chain[k];
        c.drop(`snapshot.breakdown.chain.${k}`, `was ${short(v)}`);
      }
    }
  }
  return undefined;
}
