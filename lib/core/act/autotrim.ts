/**
 * Auto-trim: give free memory back on a timer, only when it is worth it, and say what each trim
 * did. The precedents are the JDK's TrimNativeHeapInterval, Deno's trim after start-up and
 * OpenResty's lua_malloc_trim; this one trims on evidence instead of blindly.
 *
 * Each check reads what a trim would release now (the same reading trim() promises from: glibc's
 * free memory measured from the kernel, jemalloc's dirty and muzzy pages, tcmalloc's free
 * page-heap pages). Below `minReleasableBytes` it does nothing. Otherwise it predicts the pause
 * and does not trim when the prediction is above `maxPauseMs`. What a release costs, measured in
 * this thread's CPU time on this kind of machine (malloc_trim on seven heap shapes, from 8 free
 * chunks releasing 513 MiB to 8 million free chunks releasing nothing):
 * - one madvise call per free chunk that holds a whole page, while the arena's lock is held:
 *   4 µs a call (on the machine of 2026-12-07, whose system calls cost more: the README's heap,
 *   about 12 300 calls, took 57–85 ms where an earlier machine took 22–25; 1.7 µs fitted that one,
 *   and the larger figure over-predicts there, the side that holds a trim back rather than
 *   letting it stall the service longer than `maxPauseMs`);
 * - the pages each call gives back: 0.33 µs a page (a 513 MiB chunk, 44 ms);
 * - glibc first moves every fastbin chunk to the unsorted bin and walks it: 4 ns a chunk (8 million
 *   of them, 34–51 ms with the walk below);
 * - it then walks the free chunks of the unsorted bin (the fastbins' among them) and of the bins of
 *   a page or more, for those that hold a whole page: 1.1 ns a chunk (8 million small chunks that a
 *   large malloc's consolidation had left in the unsorted bin: 9 ms, where a model without this term
 *   predicted 0.3; sorted into the small bins, which it passes over, 1.5 ms);
 * so glibc's pause is predicted from malloc_info's chunks and bytes (on the machine of 2026-12-07:
 * the README's heap 57–85 ms against 63 predicted, one large chunk 35–52 against 43, 1 GiB of small
 * free chunks 0.9–3.1 ms against 0.3; on the earlier machine the README's heap took 22–25 and the
 * fragmented 1 GiB heap 105–113 against 88 with 1.7 µs a call);
 * jemalloc's and tcmalloc's from their pages alone. After each trim the prediction is scaled by
 * what the last trim measured against what was predicted for it (between ¼ and 8 times): a
 * machine twice as slow predicts twice as long from its second trim on.
 * A trim's pause (its CPU time, and its wall time) and release (smaps_rollup right before and
 * after) are measured and kept; while trims release less than half the floor the interval doubles,
 * up to 16 times the one asked for (and never past 2³¹ − 1 ms, the longest delay a Node timer takes:
 * Node turns a longer one into 1 ms), and a good trim resets it.
 */
import { type MallocInfo, trimmableBytes, trimmableChunks, walkedChunks } from "../allocators/malloc-info";
import { HeapstateError } from "../base/errors";
import * as is from "../base/validate";
import { trimPromise } from "../model/figures";
import type { AutoTrimState, Snapshot } from "../model/types";
import { type ReadPlan, readPlan } from "../read/options";
import { defaultProcess } from "../read/process";
import { promiseReading, release } from "./trim";

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
/** What a release costs, in µs of this thread's CPU time, measured here (the file's comment). */
export const TRIM_COST = {
  perChunkMicros: 4,
  perPageMicros: 0.33,
  perFastChunkMicros: 0.004,
  perBinChunkMicros: 0.0011,
} as const;
/** The bounds of the scale the last trim's measure sets. */
const SCALE_MIN = 0.25;
const SCALE_MAX = 8;
const MAX_BACKOFF = 16;

/**
 * The pause a release is predicted to take, in ms of CPU time, before any scale: from glibc's
 * malloc_info (the chunks malloc_trim madvises, the pages they give back, the fastbin chunks it
 * first consolidates), or, for another allocator, from the bytes it would release.
 */
export function predictedReleaseMs(info: MallocInfo | undefined, releasableBytes: number, page: number): number {
  if (info !== undefined && Array.isArray(info.arenas)) {
    let fast = 0;
    for (const a of info.arenas) fast += a.fastFreeChunks ?? 0;
    const micros =
      trimmableChunks(info, page) * TRIM_COST.perChunkMicros +
      (trimmableBytes(info, page) / page) * TRIM_COST.perPageMicros +
      fast * TRIM_COST.perFastChunkMicros +
      walkedChunks(info, page) * TRIM_COST.perBinChunkMicros;
    return micros / 1000;
  }
  return ((releasableBytes / page) * TRIM_COST.perPageMicros) / 1000;
}

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

/** One auto-trim's checks: what a trim would release now, whether its pause is allowed, and the trim. */
class AutoTrimChecks {
  /** What the last trim measured against what was predicted for it: later predictions are scaled by it. */
  private scale = 1;

  constructor(
    private readonly plan: ReadPlan,
    private readonly state: AutoTrimState,
  ) {}

  check(): void {
    const state = this.state;
    state.checks++;
    const time = new Date().toISOString();
    const before = promiseReading(this.plan);
    const releasable = trimPromise(before);
    if (releasable === undefined) {
      // Nothing to hold a trim to: glibc's free memory may not be measurable here
      // (GLIBC_ARENA_OUTSIDE_HEAP, or the walk held back), and mimalloc's segments are walked only
      // in 2.0: no trim on a guess.
      state.skippedUnmeasured++;
      state.lastSkip = { time, reason: "unmeasured" };
      return;
    }
    if (releasable < state.minReleasableBytes) {
      state.skippedBelowFloor++;
      state.lastSkip = { time, reason: "below-floor", releasableBytes: releasable };
      return;
    }
    const heap = before.heap;
    const info = heap?.allocator === "glibc" ? (heap.raw?.malloc_info as MallocInfo | undefined) : undefined;
    const page = typeof heap?.raw?.page_size === "number" ? heap.raw.page_size : 4096;
    const modelMs = predictedReleaseMs(info, releasable, page);
    const predictedPauseMs = Math.round(modelMs * this.scale * 100) / 100;
    if (predictedPauseMs > state.maxPauseMs) {
      state.skippedPause++;
      state.lastSkip = { time, reason: "pause", releasableBytes: releasable, predictedPauseMs };
      return;
    }
    this.trim(time, before, releasable, modelMs, predictedPauseMs);
  }

  private trim(time: string, before: Snapshot, releasable: number, modelMs: number, predictedPauseMs: number): void {
    const state = this.state;
    const done = release(this.plan, before);
    const pauseMs = done.pauseMs ?? 0;
    const cpuMs = done.pauseCpuMs;
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
      ...(cpuMs !== undefined ? { pauseCpuMs: cpuMs } : {}),
      predictedPauseMs,
    };
    // The model scaled to this machine by what this trim cost (its CPU time: time descheduled is not
    // the trim's), when both are large enough to say anything.
    const measured = cpuMs ?? pauseMs;
    if (modelMs >= 1 && measured >= 1) this.scale = Math.min(SCALE_MAX, Math.max(SCALE_MIN, measured / modelMs));
    state.intervalMs = nextIntervalMs(state.intervalMs, state.baseIntervalMs, released, state.minReleasableBytes);
  }
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
  if (defaultProcess.autoTrimmer?.running) {
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
  const checks = new AutoTrimChecks(plan, state);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      try {
        checks.check();
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
      if (defaultProcess.autoTrimmer === trimmer) defaultProcess.autoTrimmer = undefined;
    },
  };
  defaultProcess.autoTrimmer = trimmer;
  schedule();
  return trimmer;
}
