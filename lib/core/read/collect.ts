/**
 * One reading: every source read once, in an order that keeps them close in time, merged into a
 * Snapshot with its derived figures (the one RSS, the breakdown, findings) computed here, once.
 */
import { hostname as osHostname } from "node:os";
import { readKernelFiles } from "../addon/kernel-files";
import { glibcArenaLimit } from "../allocators/glibc";
import { nowMicros } from "../base/backoff";
import { HeapstateError, isHeapstateError } from "../base/errors";
import { extend } from "../base/objects";
import type { BaselineStore } from "../judge/baseline";
import type { FindingContext } from "../judge/finding-base";
import { findings, glibcFreeWorthConfirming } from "../judge/findings";
import type { DirtyHistory, PersistentDirty } from "../judge/jemalloc-decay";
import type { UnclassifiedTrend } from "../judge/trend";
import { buildBreakdown, withHeldBackGlibcFree, withUnmeasurableGlibcFree } from "../model/breakdown";
import { siteChanges } from "../model/diff-sites";
import { nativeUnclassifiedBytes } from "../model/figures";
import {
  type AutoTrimState,
  type Breakdown,
  type Claim,
  SCHEMA,
  type Snapshot,
  type Warning,
  type WarningSource,
} from "../model/types";
import { withViews } from "../model/views";
import type { CgroupLocation } from "../procfs/cgroup";
import { cgroupReadPaths, locate, readCgroup, readCpu } from "../procfs/cgroup-read";
import { clearPrefetched, ownPath } from "../procfs/read";
import type { AllocatorReader, ReadPolicy } from "./allocator-reading";
import { readNativeSites } from "./native-sites";
import type { ReadPlan } from "./options";
import { type ReporterRegistry, workerClaims } from "./reporters";
import { mergeTotals, readRegions, readStatus, readThreadNames, readTotals, sourceWarning } from "./sources";
import { readV8 } from "./v8";

/**
 * What a reading keeps across readings of one process: glibc's back-off and confirmation state,
 * the trend of native-unclassified, jemalloc's dirty pages, the baseline, the reporters and the
 * running auto-trim. A {@link HeapProcess} is one; every reading is of one.
 */
export interface ReadState {
  readonly allocators: AllocatorReader;
  readonly trend: UnclassifiedTrend;
  readonly dirty: DirtyHistory;
  readonly baselines: BaselineStore;
  readonly reporters: ReporterRegistry;
  /** The last reading of this process that carried native allocation sites (what the next one's growth is from). */
  readonly sites: { last?: Pick<Snapshot, "pid" | "time" | "nativeSites"> };
  /** Whether this state's readings ask worker threads for their reporters' claims (the default process's do). */
  readonly asksWorkers: boolean;
  /** The running auto-trim's record, if one runs on this state. */
  autoTrimState(): AutoTrimState | undefined;
}

let host: string | undefined;

/** The host's name, asked once: it does not change under a running process (or seldom, and then it is a new identity anyway). */
function hostname(): string {
  host ??= osHostname();
  return host;
}

/** Whether a reading runs on this thread now: what a memory reporter called from inside it may not start. */
let reading = false;

/**
 * Throws REENTRANT_READING when called from inside a reading: a memory reporter that reads or
 * trims would nest readings without end (1 091 deep before the stack gave out, or the process
 * aborted when trim() nested), and a trim inside a reading changes what the reading is measuring.
 * The reporter's guard turns the throw into its warning; the reading stands.
 */
export function refuseInsideReading(where: string): void {
  if (reading)
    throw new HeapstateError(
      "REENTRANT_READING",
      `${where} was called from inside a reading (a memory reporter, which runs inside every reading, may not read or trim): refused`,
    );
}

export function read(state: ReadState, o: ReadPlan, policy: ReadPolicy): Snapshot {
  refuseInsideReading(o.self ? "collect()" : `collect({ pid: ${o.pid} })`);
  reading = true;
  try {
    return readOnce(state, o, policy);
  } finally {
    reading = false;
    clearPrefetched();
  }
}

/** One reading under way: the plan, the snapshot being filled, and the guard every source runs in. */
interface Reading {
  state: ReadState;
  o: ReadPlan;
  policy: ReadPolicy;
  snap: Snapshot;
  warnings: Warning[];
  costs: Record<string, number>;
  guard: (source: WarningSource, fn: () => void) => void;
  /** Whether the kernel files read ahead were read in the allocators' native call (its cost is theirs). */
  aheadDone: boolean;
}

function readOnce(state: ReadState, o: ReadPlan, policy: ReadPolicy): Snapshot {
  const start = nowMicros();
  const warnings: Warning[] = [];
  const costs: Record<string, number> = {};
  const snap: Snapshot = withViews({
    schema: SCHEMA,
    time: new Date().toISOString(),
    pid: o.pid,
    tier: o.tier,
    identity: o.self ? { hostname: hostname(), node: process.versions.node } : { hostname: hostname() },
    costMicros: 0,
    allocators: [],
    warnings,
  });
  // Each source stands alone: whatever one of them throws (a descriptor table that is full, a
  // failed allocation, process.memoryUsage() failing, a bug) becomes a warning naming it, and the
  // rest of the reading stands. Only another process's "gone" and "not yours" are thrown: they are
  // the answer, not a missing part of it.
  const guard = (source: WarningSource, fn: () => void) => {
    const t = nowMicros();
    try {
      fn();
    } catch (error) {
      if (isHeapstateError(error) && !o.self) throw error;
      warnings.push(sourceWarning(o, source, error));
    } finally {
      costs[source] = (costs[source] ?? 0) + (nowMicros() - t);
    }
  };
  const r: Reading = { state, o, policy, snap, warnings, costs, guard, aheadDone: false };
  // The cgroup is located first: its files are read ahead with status, in the allocators' native
  // call when it can (one crossing for what the fast tier asks of the kernel and the allocators);
  // what locating it had to say is said in the cgroup's place, after status.
  const located: Warning[] = [];
  let loc: CgroupLocation | undefined;
  guard("cgroup", () => {
    loc = locate(o.procRoot, o.fsRoot, o.pid, located);
  });
  const ahead = o.self ? aheadPaths(o, loc) : undefined;
  const claims = readInside(r, ahead);
  readKernel(r, loc, located, ahead);
  guard("breakdown", () => {
    const breakdown = reconcile(r, claims);
    if (breakdown) snap.breakdown = breakdown;
    judge(r, breakdown);
  });
  if (o.self) {
    const auto = state.autoTrimState();
    if (auto) snap.autoTrim = auto;
  }
  snap.sourceCostMicros = costs;
  snap.costMicros = nowMicros() - start;
  return snap;
}

/**
 * What only the process itself can read: its allocators, V8, its reporters' claims. The kernel
 * files in `ahead` are read in the allocators' native call; `r.aheadDone` says whether they were.
 */
function readInside(r: Reading, ahead: readonly string[] | undefined): Claim[] {
  const { state, o, policy, snap, warnings, guard } = r;
  let claims: Claim[] = [];
  if (!o.self) {
    warnings.push({
      source: "heap",
      code: "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE",
      message: `process ${o.pid}'s allocator counters (in use, free, fragmentation, arenas) and its V8 heap live inside it and cannot be read from outside: the breakdown attributes what the kernel shows (with --deep: malloc arenas, stacks, code, files, shared memory). Loading heapstate in that process (collect(), its /debug/memory, or its agent: NODE_OPTIONS="--require heapstate/agent", which show-host then asks) gives the rest.`,
    });
    return claims;
  }
  guard("allocators", () => {
    // Only the fast tier's files ride in the allocators' call: glibc's walk is timed around that
    // call for its back-off, and smaps_rollup (1 ms and more) would pass for the walk's own cost;
    // status and the cgroup's values add some 16 µs to it, far below the 1 ms a walk may cost freely.
    r.aheadDone = state.allocators.read(snap, o.tier, policy, warnings, o.tier === "fast" ? ahead : undefined);
  });
  guard("v8", () => {
    snap.v8 = readV8(o.tier, warnings);
  });
  // Above the fast tier, the kernel's files (smaps_rollup's RSS among them) are read right after
  // V8's figures, before reporters, native sites or anything else allocates: a collection between
  // the two (the reading's own allocations start one) moves V8's pages in or out of RSS, and the
  // parts then disagree with RSS by as much (−4 MiB seen on a 75 MiB process).
  if (ahead && !r.aheadDone) {
    const t = nowMicros();
    readAhead(ahead);
    r.costs.readAhead = nowMicros() - t;
    r.aheadDone = true;
  }
  if (o.nativeSites > 0 && o.tier === "deep") {
    guard("jemalloc", () => {
      const sites = readNativeSites(snap.heap, o.nativeSites, warnings);
      if (sites) snap.nativeSites = sites;
    });
  }
  guard("reporters", () => {
    claims = state.reporters.call(warnings);
    const workers = state.asksWorkers ? workerClaims() : [];
    if (workers.length > 0) claims = [...claims, ...workers];
  });
  return claims;
}

/**
 * What the kernel shows of the process: status, the cgroup (located before), and by tier the CPUs,
 * smaps_rollup, smaps. The files in `ahead` are read here when the allocators' call did not.
 */
function readKernel(
  { o, snap, warnings, guard, costs, aheadDone }: Reading,
  loc: CgroupLocation | undefined,
  located: Warning[],
  ahead: readonly string[] | undefined,
): void {
  if (ahead && !aheadDone) {
    const t = nowMicros();
    readAhead(ahead);
    costs.readAhead = nowMicros() - t;
  }
  guard("status", () => {
    snap.process = readStatus(o);
    if (snap.process.rssBytes !== undefined) snap.process.rssSource = "status";
  });
  guard("cgroup", () => {
    for (const w of located) warnings.push(w);
    const cg = loc && readCgroup(loc, o.tier, warnings, o.self);
    if (cg) snap.cgroup = cg;
  });
  if (o.tier !== "fast") {
    guard("cpu", () => {
      const cpu = readCpu(o.procRoot, o.fsRoot, o.pid);
      if (Object.keys(cpu).length > 0) snap.cpu = cpu;
    });
    guard("smaps_rollup", () => {
      const totals = readTotals(o, warnings);
      if (!totals) return;
      snap.process ??= {};
      mergeTotals(snap.process, totals);
    });
  }
  if (o.tier === "deep") {
    guard("smaps", () => {
      const regions = readRegions(o, warnings);
      if (regions) snap.regions = regions;
    });
  }
}

/**
 * The own process's status, smaps_rollup (above the fast tier) and cgroup files, read in one call
 * into the addon (addon/kernel-files.ts); what it cannot read is read by each source as before.
 */
function readAhead(paths: readonly string[]): void {
  try {
    readKernelFiles(paths);
  } catch {
    // Each source reads its own files, and says what it could not.
  }
}

/** The files read ahead, made once per plan and cgroup location: every reading asks for the same. */
let ahead: { root: string; pid: number; tier: string; loc: CgroupLocation | undefined; paths: string[] } | undefined;

function aheadPaths(o: ReadPlan, loc: CgroupLocation | undefined): string[] {
  const a = ahead;
  if (a && a.root === o.procRoot && a.pid === o.pid && a.tier === o.tier && a.loc === loc) return a.paths;
  const paths: string[] = [];
  const status = ownPath(o.procRoot, o.pid, "status");
  if (status !== undefined) paths.push(status);
  const rollup = o.tier === "fast" ? undefined : ownPath(o.procRoot, o.pid, "smaps_rollup");
  if (rollup !== undefined) paths.push(rollup);
  if (loc) paths.push(...cgroupReadPaths(loc, o.tier));
  ahead = { root: o.procRoot, pid: o.pid, tier: o.tier, loc, paths };
  return paths;
}

/**
 * The breakdown, with glibc's free memory measured from its arenas' resident pages when the deep
 * tier read them and, in the other tiers, when the upper bound says a warning may be due (the
 * kernel is asked before anything is claimed); the fast tier never reads smaps.
 */
function reconcile({ state, o, policy, snap, warnings, costs }: Reading, claims: Claim[]): Breakdown | undefined {
  const input = {
    self: o.self,
    allocators: snap.allocators,
    v8: snap.v8,
    process: snap.process,
    regions: snap.regions,
    claims,
    warnings,
  };
  // mimalloc's free memory, read from its segments where glibc's would be measured.
  if (o.self && (o.tier === "deep" || policy.confirmGlibc === "always")) {
    const t = nowMicros();
    state.allocators.measureMimallocFree(snap, warnings);
    if (o.tier !== "deep") costs.mimallocWalk = nowMicros() - t;
  }
  const breakdown = buildBreakdown(input, snap.time);
  const bound = breakdown?.bounds?.find((b) => b.name === "native-free");
  const confirm =
    o.self &&
    (o.tier === "deep" ||
      (o.tier === "standard" &&
        bound !== undefined &&
        (policy.confirmGlibc === "always" ||
          (policy.confirmGlibc !== "never" && glibcFreeWorthConfirming(bound.atMostBytes, snap.process?.rssBytes)))));
  if (!confirm) return breakdown;
  const t = nowMicros();
  const confirmed = state.allocators.confirmGlibcFree(snap, o, policy, warnings);
  if (o.tier !== "deep") costs.glibcConfirm = nowMicros() - t;
  // Built again on the confirmed figures; its warnings were said the first time.
  if (confirmed === "measured")
    return buildBreakdown(extend(input, { allocators: snap.allocators, warnings: [] }), snap.time);
  if (confirmed === "unmeasurable" && breakdown) return withUnmeasurableGlibcFree(breakdown);
  if (confirmed === "held-back" && breakdown) return withHeldBackGlibcFree(breakdown);
  return breakdown;
}

/**
 * How long mimalloc's free memory must stay resident to be called kept: well past its decommit
 * delays (25 ms for a span, 500 ms for a cached segment), which it acts on only when used again.
 */
const MIMALLOC_KEPT_MS = 1000;

/** What the verdicts need beside the reading (the arena limit, the threads, the trends), and the verdicts. */
function judge({ state, o, snap }: Reading, breakdown: Breakdown | undefined): void {
  const time = snap.time;
  // What the glibc verdicts name: the threads (where the arenas were looked into) and the limit.
  const heap = snap.heap;
  if (heap?.allocator === "glibc" && o.self) {
    const limit = glibcArenaLimit(process.env, snap.cpu?.onlineCpus);
    if (limit) heap.arenaLimit = limit;
  }
  if ((o.tier === "deep" || heap?.arenaGroups !== undefined) && snap.process) {
    const names = readThreadNames(o);
    if (names) snap.process.threadNames = names;
  }
  // The native heap no one claims, followed across this process's readings (a leak's trend).
  const unclassified = nativeUnclassifiedBytes({ breakdown });
  if (o.self && unclassified !== undefined) state.trend.record(time, unclassified, snap.process?.rssBytes);
  // jemalloc's dirty pages, followed across readings: what its decay leaves is what may be named.
  let jemallocDirty: PersistentDirty | undefined;
  const decayMs = heap?.config?.dirtyDecayMs;
  if (o.self && heap?.allocator === "jemalloc" && heap.pages?.dirtyBytes !== undefined) {
    state.dirty.record(time, heap.pages.dirtyBytes);
    // What the decay left is at most what is dirty now: looked for only when that could matter.
    if (typeof decayMs === "number" && glibcFreeWorthConfirming(heap.pages.dirtyBytes, snap.process?.rssBytes))
      jemallocDirty = state.dirty.persistent(time, decayMs);
  }
  // mimalloc's free spans and cached segments, followed the same way: its decommit runs only when
  // a segment's thread uses it again, so what a second's readings all hold is what it kept.
  let mimallocKept: PersistentDirty | undefined;
  if (o.self && heap?.allocator === "mimalloc" && heap.pages?.dirtyBytes !== undefined) {
    state.dirty.record(time, heap.pages.dirtyBytes);
    if (glibcFreeWorthConfirming(heap.pages.dirtyBytes, snap.process?.rssBytes))
      mimallocKept = state.dirty.persistent(time, MIMALLOC_KEPT_MS);
  }
  // Native allocation sites, against the last reading of this process that had them.
  let sites: FindingContext["sites"];
  if (o.self && snap.nativeSites) {
    const last = state.sites.last;
    const changes = last ? siteChanges(last as Snapshot, snap).sites : undefined;
    sites = { now: snap.nativeSites, ...(last && changes ? { since: last.time, changes } : {}) };
    state.sites.last = { pid: snap.pid, time: snap.time, nativeSites: snap.nativeSites };
  }
  snap.findings = findings(snap, breakdown, {
    env: o.self ? process.env : undefined,
    // Also when this reading has no split (its glibc figures reused within the walk's back-off):
    // the line is through earlier measured readings, and the finding says up to when.
    trend: o.self ? state.trend.trend() : undefined,
    trendCurrent: unclassified !== undefined,
    baseline: o.self ? state.baselines.current() : undefined,
    jemallocDirty,
    mimallocKept,
    sites,
  });
}
