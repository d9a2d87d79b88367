/** trim(): give free memory back to the OS, and measure what left RSS. */

import { native } from "../addon/native";
import { threadCpu } from "../base/backoff";
import { errorText } from "../base/errors";
import { trimPromise } from "../model/figures";
import { type Snapshot, TRIM_ACTIONS, type TrimAction, type TrimActionName, type TrimResult } from "../model/types";
import { servingAllocator } from "../model/views";
import { readProcFile } from "../procfs/read";
import { parseSmapsTotals } from "../procfs/smaps";
import { refuseInsideReading } from "../read/collect";
import { type ReadPlan, readPlan } from "../read/options";
import { defaultProcess } from "../read/process";

/**
 * Gives free memory back to the OS: glibc `malloc_trim(0)`; jemalloc `thread.tcache.flush` and
 * `arena.4096.purge`; tcmalloc `MallocExtension_ReleaseFreeMemory`; mimalloc `mi_collect(true)`.
 * Returns snapshots before and after (both read afresh, standard tier), what the reading before
 * expected the trim to release, and the RSS it released as the kernel counts it exactly
 * (smaps_rollup, read right before and right after the trim). Never throws for want of descriptors
 * or memory: the readings carry warnings instead.
 * @example
 * const { releasedBytes } = trim();
 */
export function trim(): TrimResult {
  refuseInsideReading("trim()");
  const o = readPlan(undefined, "trim()");
  // The reading before measures glibc's free memory from the kernel whatever its size: the promise
  // is made from it, right before the trim it is checked against.
  const before = promiseReading(o);
  const promisedBytes = trimPromise(before);
  const done = release(o, before);
  const after = defaultProcess.read(o, { reuse: false });
  const b = done.rssBefore ?? before.process?.rssBytes;
  const a = done.rssAfter ?? after.process?.rssBytes;
  const result: TrimResult = { before, after, actions: done.actions };
  if (a !== undefined && b !== undefined) {
    // The net fall of RSS across the trim. RSS that rose instead (a collection or another thread
    // allocated in between, more than the trim gave back) is no release: said apart, not negative.
    result.releasedBytes = Math.max(0, b - a);
    if (a > b) result.rssGrewBytes = a - b;
  }
  if (promisedBytes !== undefined) result.promisedBytes = promisedBytes;
  return result;
}

/** A reading that measures what a trim would release (glibc's free memory confirmed whatever its size). */
export function promiseReading(o: ReadPlan): Snapshot {
  return defaultProcess.read(o, { reuse: false, confirmGlibc: "always" });
}

/** What one release did: the actions, RSS right around them, and how long the allocators took. */
export interface Release {
  actions: TrimAction[];
  rssBefore?: number;
  rssAfter?: number;
  /** The trim call itself (malloc_trim holds each arena's lock meanwhile), in ms. */
  pauseMs?: number;
  /** The trim call's CPU time on this thread, in ms (absent without the addon's thread clock). */
  pauseCpuMs?: number;
}

/** Runs the allocators' release actions, measuring RSS right around them (a failure is a warning in `before`). */
export function release(o: ReadPlan, before: Snapshot): Release {
  const out: Release = { actions: [] };
  const binding = native();
  if (binding === undefined) return out;
  // RSS read right around the trim itself: the readings before and after allocate as they read
  // (and can touch again pages the trim just returned), which is not the trim's doing.
  try {
    const glibc = servingAllocator(before)?.allocator === "glibc";
    const rssBefore = exactRss(o);
    const t = process.hrtime.bigint();
    const cpu = threadCpu(binding);
    const done = binding.trim({ glibc });
    const cpuUsed = threadCpu(binding) - cpu;
    out.pauseMs = Number(process.hrtime.bigint() - t) / 1e6;
    if (Number.isFinite(cpuUsed)) out.pauseCpuMs = Math.min(out.pauseMs, cpuUsed / 1000);
    const rssAfter = exactRss(o);
    if (rssBefore !== undefined) out.rssBefore = rssBefore;
    if (rssAfter !== undefined) out.rssAfter = rssAfter;
    for (const inst of done.instances ?? []) {
      for (const [action, result] of Object.entries(inst.actions)) {
        if (isTrimAction(action))
          out.actions.push({ allocator: inst.allocator, library: inst.library, action, result });
      }
    }
  } catch (error) {
    before.warnings.push({
      source: "native",
      code: "NATIVE_TRIM_FAILED",
      message: `trimming failed: ${errorText(error)}`,
    });
  }
  return out;
}

/** smaps_rollup's Rss of this process, or undefined when it cannot be read. */
function exactRss(o: ReadPlan): number | undefined {
  try {
    return parseSmapsTotals(readProcFile(o.procRoot, o.pid, "smaps_rollup")).rssBytes;
  } catch {
    return undefined;
  }
}

/** An action name the addon returned, checked against the closed set trim() documents. */
function isTrimAction(name: string): name is TrimActionName {
  return (TRIM_ACTIONS as readonly string[]).includes(name);
}
