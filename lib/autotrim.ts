/**
 * Auto-trim: give free memory back on a timer, only when it is worth it, and say what each trim
 * did. The precedents are the JDK's TrimNativeHeapInterval, Deno's trim after start-up and
 * OpenResty's lua_malloc_trim; this one trims on evidence instead of blindly.
 *
 * Each check reads what a trim would release now (the same reading trim() promises from: glibc's
 * free memory measured from the kernel, jemalloc's dirty and muzzy pages, tcmalloc's free
 * page-heap pages). Below `minReleasableBytes` it does nothing. Otherwise it predicts the pause
 * and does not trim when the prediction is above `maxPauseMs`:
 * - glibc's malloc_trim walks every arena's free lists holding that arena's lock, as the reading's
 *   own walk just did, and makes one madvise call per free chunk that holds a whole page: the
 *   pause is predicted as the walk's time + those chunks (counted from malloc_info) × the cost of
 *   one, which starts at 100 µs (measured here: 32 000 such chunks of a fragmented 1 GiB heap, 2.4 to 2.9 s) and becomes the largest seen;
 * - jemalloc's and tcmalloc's release is predicted from the bytes to release × the largest cost
 *   per MiB seen (0.1 ms to begin with).
 * A trim's pause and release are measured (the trim call's time; smaps_rollup right before and
 * after) and kept; while trims release less than half the floor the interval doubles, up to 16
 * times the one asked for (and never past 2³¹ − 1 ms, the longest delay a Node timer takes: Node
 * turns a longer one into 1 ms), and a good trim resets it.
 */
import { type MallocInfo, trimmableChunks } from "./allocators/malloc-info";
import { setAutoTrimState } from "./autotrim-state";
import { HeapstateError } from "./errors";
import { readPlan } from "./options";
import { promiseOf, promiseReading, release } from "./trim";
import type { AutoTrimState } from "./types";
import * as is from "./validate";

export interface AutoTrimOptions {
  /** Between checks (default 60 000 ms, at least 100 ms). */
  intervalMs?: number;
  /** Trim only when at least this much would be released (default 64 MiB). */
  minReleasableBytes?: number;
  /** Do not trim when the predicted pause is longer (default 50 ms). */
  maxPauseMs?: number;
}

export interface AutoTrimmer {
  readonly running: boolean;
  /** What it has done so far (also in every reading of this process, as `autoTrim`). */
  state(): AutoTrimState;
  stop(): void;
}

const MiB = 1024 * 1024;
/** What one madvise of malloc_trim costs, in ms, before a trim has been measured. */
const PRIOR_MS_PER_CHUNK = 0.1;
/** What releasing a MiB costs jemalloc or tcmalloc, in ms, before a trim has been measured. */
const PRIOR_MS_PER_MIB = 0.1;
const MAX_BACKOFF = 16;

let running: AutoTrimmer | undefined;

/**
 * The interval after a trim: doubled while trims release less than half the floor (or cannot be
 * measured), up to 16 times the one asked for and never past 2³¹ − 1 ms, the longest delay a Node
 * timer takes (a longer one becomes 1 ms: checks back to back); back to the one asked for after a
 * good trim.
 */
export function nextIntervalMs(
  currentMs: number,
  baseMs: number,
  releasedBytes: number | undefined,
  minReleasableBytes: number,
): number {
  if (releasedBytes !== undefined && releasedBytes >= minReleasableBytes / 2) return baseMs;
  return Math.min(currentMs * 2, baseMs * MAX_BACKOFF, is.MAX_TIMER_MS);
}

/**
 * Starts trimming on a timer (unref'd: it never keeps the process alive). One at a time: stop the
 * running one before starting another.
 * @example
 * const auto = startAutoTrim({ intervalMs: 60_000, minReleasableBytes: 64 * 1024 * 1024, maxPauseMs: 50 });
 * // … auto.state().releasedBytes, or heapstate_autotrim_* in the metrics
 */
export function startAutoTrim(options?: AutoTrimOptions): AutoTrimmer {
  const where = "startAutoTrim(options)";
  const o = is.optionsObject(where, options, ["intervalMs", "minReleasableBytes", "maxPauseMs"]);
  const baseIntervalMs = is.intervalMs(where, "intervalMs", o.intervalMs, 60_000, 100);
  const minReleasableBytes = is.integer(where, "minReleasableBytes", o.minReleasableBytes, 64 * MiB, 0, 2 ** 52);
  const maxPauseMs = is.finite(where, "maxPauseMs", o.maxPauseMs, 50, 0, 60_000);
  if (running?.running) {
    throw new HeapstateError("INVALID_OPTION", `${where}: an auto-trim is already running; stop() it first`);
  }
  const plan = readPlan(undefined, where);
  const state: AutoTrimState = {
    baseIntervalMs,
    intervalMs: baseIntervalMs,
    minReleasableBytes,
    maxPauseMs,
    checks: 0,
    trims: 0,
    skippedBelowFloor: 0,
    skippedPause: 0,
    skippedUnmeasured: 0,
    releasedBytes: 0,
  };
  let msPerChunk = PRIOR_MS_PER_CHUNK;
  let msPerMiB = PRIOR_MS_PER_MIB;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const check = () => {
    state.checks++;
    const time = new Date().toISOString();
    const before = promiseReading(plan);
    const releasable = promiseOf(before);
    if (releasable === undefined) {
      // Nothing to hold a trim to: mimalloc promises nothing, and glibc's free memory may not be
      // measurable here (GLIBC_ARENA_OUTSIDE_HEAP, or the walk held back): no trim on a guess.
      state.skippedUnmeasured++;
      state.lastSkip = { time, reason: "unmeasured" };
      return;
    }
    if (releasable < minReleasableBytes) {
      state.skippedBelowFloor++;
      state.lastSkip = { time, reason: "below-floor", releasableBytes: releasable };
      return;
    }
    // glibc: the reading's walk of the same lists, and one madvise per chunk holding a whole page.
    const walkMs = (before.sourceCostMicros?.allocators ?? 0) / 1000;
    const heap = before.heap;
    const info = heap?.allocator === "glibc" ? (heap.raw?.malloc_info as MallocInfo | undefined) : undefined;
    const page = typeof heap?.raw?.page_size === "number" ? heap.raw.page_size : 4096;
    const chunks = info && Array.isArray(info.arenas) ? trimmableChunks(info, page) : undefined;
    const predictedPauseMs =
      chunks !== undefined ? walkMs + chunks * msPerChunk : walkMs + (releasable / MiB) * msPerMiB;
    if (predictedPauseMs > maxPauseMs) {
      state.skippedPause++;
      state.lastSkip = { time, reason: "pause", releasableBytes: releasable, predictedPauseMs };
      return;
    }
    const done = release(plan, before);
    const pauseMs = done.pauseMs ?? 0;
    const released =
      done.rssBefore !== undefined && done.rssAfter !== undefined ? done.rssBefore - done.rssAfter : undefined;
    state.trims++;
    if (released !== undefined && released > 0) state.releasedBytes += released;
    state.maxObservedPauseMs = Math.max(state.maxObservedPauseMs ?? 0, pauseMs);
    state.lastTrim = {
      time,
      promisedBytes: releasable,
      ...(released !== undefined ? { releasedBytes: released } : {}),
      pauseMs,
      predictedPauseMs,
    };
    // What this trim says one chunk (or MiB) costs; the largest seen is what predicts the next.
    if (chunks !== undefined && chunks >= 100) msPerChunk = Math.max(msPerChunk, (pauseMs - walkMs) / chunks);
    if (chunks === undefined && releasable >= 16 * MiB) msPerMiB = Math.max(msPerMiB, pauseMs / (releasable / MiB));
    state.intervalMs = nextIntervalMs(state.intervalMs, baseIntervalMs, released, minReleasableBytes);
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      try {
        check();
      } catch {
        // A reading turns what it cannot read into warnings; anything else must not end the timer.
      }
      schedule();
    }, state.intervalMs);
    timer.unref();
  };

  const trimmer: AutoTrimmer = {
    get running() {
      return !stopped;
    },
    state: () => structuredClone(state),
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (running === trimmer) {
        running = undefined;
        setAutoTrimState(undefined);
      }
    },
  };
  running = trimmer;
  setAutoTrimState(() => structuredClone(state));
  schedule();
  return trimmer;
}
