/**
 * One reading: every source read once, in an order that keeps them close in time, merged into a
 * Snapshot with its derived figures (the one RSS, the breakdown, findings) computed here, once.
 */
import { hostname as osHostname } from "node:os";
import { glibcArenaLimit } from "../allocators/glibc";
import { nowMicros } from "../base/backoff";
import { assertSnapshot, HeapstateError, isHeapstateError } from "../base/errors";
import { extend } from "../base/objects";
import * as is from "../base/validate";
import { type BaselineBudgets, currentBaseline, storeBaseline } from "../judge/baseline";
import { findings, glibcFreeWorthConfirming } from "../judge/findings";
import { persistentDirty, recordJemallocDirty } from "../judge/jemalloc-decay";
import { recordUnclassified, unclassifiedTrend } from "../judge/trend";
import { buildBreakdown, withHeldBackGlibcFree, withUnmeasurableGlibcFree } from "../model/breakdown";
import { nativeUnclassifiedBytes } from "../model/figures";
import { type Claim, type CollectOptions, SCHEMA, type Snapshot, type Warning } from "../model/types";
import { withViews } from "../model/views";
import { locate, readCgroup, readCpu } from "../procfs/cgroup-read";
import { AllocatorReader, type ReadPolicy } from "./allocator-reading";
import { autoTrimState } from "./autotrim-state";
import { type ReadPlan, readPlan } from "./options";
import { callReporters, workerClaims } from "./reporters";
import { mergeTotals, readRegions, readStatus, readThreadNames, readTotals, sourceWarning } from "./sources";
import { readV8 } from "./v8";

/** The process-wide allocator reader: glibc's back-off and confirmation state live here. */
export const allocatorReader = new AllocatorReader();

let host: string | undefined;

/** The host's name, asked once: it does not change under a running process (or seldom, and then it is a new identity anyway). */
function hostname(): string {
  host ??= osHostname();
  return host;
}

/**
 * Reads the process now: allocator counters (own process only), V8, the kernel's figures and the
 * memory cgroup; reconciles them into a breakdown of RSS and states findings. Advances jemalloc's
 * epoch once (twice in the rare reading during which a library defining an allocator is loaded or
 * unloaded: its counters are then read again with the new set), and walks glibc's heap afresh (a
 * one-shot reading never reuses an earlier walk; snapshot() is the cached reading for hot paths).
 * A source that cannot be read becomes a warning and the rest stands; throws
 * {@link HeapstateError} for bad options, and for another `pid` that does not exist, exits while
 * being read, may not be read, is a kernel thread or a zombie.
 * @example
 * const s = collect();                    // tier "standard"
 * console.log(s.heap?.allocator, s.breakdown?.unattributedBytes, s.findings);
 * collect({ tier: "deep" }).regions;      // smaps regions by category
 */
export function collect(options?: CollectOptions): Snapshot {
  return read(readPlan(options), { reuse: false });
}

/**
 * Sets this process's baseline: `snapshot`, or a standard reading now, with optional budgets for
 * growth over it (bytes or "100MiB") that every later reading checks. Returns the baseline.
 * @example
 * setBaseline({ budgets: { nativeUnclassifiedBytes: "100MiB" } }); // after warm-up
 * // later: formatDiff(diff(baseline(), collect()))
 */
export function setBaseline(options?: { snapshot?: Snapshot; budgets?: BaselineBudgets }): Snapshot {
  const where = "setBaseline(options)";
  const o = is.optionsObject(where, options, ["snapshot", "budgets"]);
  if (o.snapshot !== undefined) {
    try {
      assertSnapshot(o.snapshot, where);
    } catch {
      throw is.invalidOption(
        where,
        `snapshot must be a reading from collect() or parseSnapshot(), ${is.received(o.snapshot)}`,
      );
    }
  }
  const s = (o.snapshot as Snapshot | undefined) ?? collect();
  storeBaseline(s, o.budgets, where);
  return s;
}

/** collect() for a reader that repeats (sampler, handler, metrics): glibc's walk may be reused within its back-off. */
export function collectRepeated(options?: CollectOptions): Snapshot {
  return read(readPlan(options), { reuse: true });
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

export function read(o: ReadPlan, policy: ReadPolicy): Snapshot {
  refuseInsideReading(o.self ? "collect()" : `collect({ pid: ${o.pid} })`);
  reading = true;
  try {
    return readOnce(o, policy);
  } finally {
    reading = false;
  }
}

function readOnce(o: ReadPlan, policy: ReadPolicy): Snapshot {
  const start = nowMicros();
  const time = new Date().toISOString();
  const warnings: Warning[] = [];
  const costs: Record<string, number> = {};
  const snap: Snapshot = withViews({
    schema: SCHEMA,
    time,
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
  const guard = (source: string, fn: () => void) => {
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

  let claims: Claim[] = [];
  if (o.self) {
    guard("allocators", () => allocatorReader.read(snap, o.tier, policy, warnings));
    guard("v8", () => {
      snap.v8 = readV8(o.tier, warnings);
    });
    guard("reporters", () => {
      claims = callReporters(warnings);
      const workers = workerClaims();
      if (workers.length > 0) claims = [...claims, ...workers];
    });
  } else {
    warnings.push({
      source: "heap",
      code: "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE",
      message: `process ${o.pid}'s allocator counters (in use, free, fragmentation, arenas) and its V8 heap live inside it and cannot be read from outside: the breakdown attributes what the kernel shows (with --deep: malloc arenas, stacks, code, files, shared memory). Loading heapstate in that process (collect(), its /debug/memory, or its agent: NODE_OPTIONS="--require heapstate/agent", which show-host then asks) gives the rest.`,
    });
  }
  guard("status", () => {
    snap.process = readStatus(o);
    if (snap.process.rssBytes !== undefined) snap.process.rssSource = "status";
  });
  guard("cgroup", () => {
    const loc = locate(o.procRoot, o.fsRoot, o.pid, warnings);
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

  guard("breakdown", () => {
    const input = {
      self: o.self,
      allocators: snap.allocators,
      v8: snap.v8,
      process: snap.process,
      regions: snap.regions,
      claims,
      warnings,
    };
    let breakdown = buildBreakdown(input, time);
    // glibc's free memory is measured from its arenas' resident pages when the deep tier read them,
    // and, in the other tiers, when the upper bound says a warning may be due (the kernel is asked
    // before anything is claimed); the fast tier never reads smaps.
    const bound = breakdown?.bounds?.find((b) => b.name === "native-free");
    const confirm =
      o.self &&
      (o.tier === "deep" ||
        (o.tier === "standard" &&
          bound !== undefined &&
          (policy.confirmGlibc === "always" ||
            (policy.confirmGlibc !== "never" && glibcFreeWorthConfirming(bound.atMostBytes, breakdown?.rssBytes)))));
    if (confirm) {
      const t = nowMicros();
      const confirmed = allocatorReader.confirmGlibcFree(snap, o, policy, warnings);
      if (o.tier !== "deep") costs.glibcConfirm = nowMicros() - t;
      // Built again on the confirmed figures; its warnings were said the first time.
      if (confirmed === "measured")
        breakdown = buildBreakdown(extend(input, { allocators: snap.allocators, warnings: [] }), time);
      else if (confirmed === "unmeasurable" && breakdown) breakdown = withUnmeasurableGlibcFree(breakdown);
      else if (confirmed === "held-back" && breakdown) breakdown = withHeldBackGlibcFree(breakdown);
    }
    if (breakdown) snap.breakdown = breakdown;
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
    if (o.self && unclassified !== undefined) recordUnclassified(time, unclassified, snap.process?.rssBytes);
    // jemalloc's dirty pages, followed across readings: what its decay leaves is what may be named.
    let jemallocDirty: ReturnType<typeof persistentDirty>;
    const decayMs = heap?.config?.dirtyDecayMs;
    if (o.self && heap?.allocator === "jemalloc" && heap.pages?.dirtyBytes !== undefined) {
      recordJemallocDirty(time, heap.pages.dirtyBytes);
      // What the decay left is at most what is dirty now: looked for only when that could matter.
      if (typeof decayMs === "number" && glibcFreeWorthConfirming(heap.pages.dirtyBytes, snap.process?.rssBytes))
        jemallocDirty = persistentDirty(time, decayMs);
    }
    snap.findings = findings(snap, breakdown, {
      env: o.self ? process.env : undefined,
      // Also when this reading has no split (its glibc figures reused within the walk's back-off):
      // the line is through earlier measured readings, and the finding says up to when.
      trend: o.self ? unclassifiedTrend() : undefined,
      trendCurrent: unclassified !== undefined,
      baseline: o.self ? currentBaseline() : undefined,
      jemallocDirty,
    });
  });
  if (o.self) {
    const auto = autoTrimState();
    if (auto) snap.autoTrim = auto;
  }
  snap.sourceCostMicros = costs;
  snap.costMicros = nowMicros() - start;
  return snap;
}
