/**
 * A process's heapstate: everything that lasts from one reading to the next (glibc's back-off and
 * confirmation state, the trend of native-unclassified, jemalloc's dirty history, the baseline,
 * the memory reporters, the cached fast reading, the running auto-trim and agent) in one object. The module
 * functions (collect(), snapshot(), setBaseline(), registerMemoryReporter(), …) are those of one
 * default instance; a test or a library that wants its own history makes its own with
 * createProcess(), and two instances share none of it.
 *
 * What stays process-wide on purpose: the kernel keeps one VmHWM (the peaks' reset is the whole
 * process's, so peak consumers are told of each other in judge/peaks.ts), the addon is loaded
 * once, procfs descriptors are kept once, and a wrapped mimalloc counter stays untrusted; none of
 * them is history a second instance could keep apart.
 */
import { assertSnapshot } from "../base/errors";
import * as is from "../base/validate";
import { type BaselineBudgets, BaselineStore } from "../judge/baseline";
import { DirtyHistory } from "../judge/jemalloc-decay";
import { UnclassifiedTrend } from "../judge/trend";
import type { AutoTrimState, CollectOptions, Snapshot } from "../model/types";
import { AllocatorReader, type ReadPolicy } from "./allocator-reading";
import { type ReadState, read, refuseInsideReading } from "./collect";
import { type ReadPlan, readPlan } from "./options";
import { defaultReporters, type MemoryReporter, type MemoryReporterOptions, ReporterRegistry } from "./reporters";

/** What a process keeps of a running auto-trim (act/autotrim.ts sets and clears it). */
export interface AutoTrimSlot {
  readonly running: boolean;
  state(): AutoTrimState;
  stop(): void;
}

export class HeapProcess implements ReadState {
  readonly allocators = new AllocatorReader();
  readonly trend = new UnclassifiedTrend();
  readonly dirty = new DirtyHistory();
  readonly baselines = new BaselineStore();
  readonly sites: ReadState["sites"] = {};
  readonly reporters: ReporterRegistry;
  readonly asksWorkers: boolean;
  /** The auto-trim running on this process, if any. */
  autoTrimmer: AutoTrimSlot | undefined;
  /** The agent serving this process's readings (faces/agent/server.ts sets it), if one runs. */
  agent: { readonly path: string; stop(): void } | undefined;
  private cached: Snapshot | undefined;
  private cachedAt = 0;

  /** @internal Only the default process answers and asks worker threads (they register with their own default). */
  constructor(shared?: { reporters: ReporterRegistry; asksWorkers: boolean }) {
    this.reporters = shared?.reporters ?? new ReporterRegistry();
    this.asksWorkers = shared?.asksWorkers ?? false;
  }

  autoTrimState(): AutoTrimState | undefined {
    return this.autoTrimmer?.running ? this.autoTrimmer.state() : undefined;
  }

  /** One reading of a checked plan, keeping its history here (`policy`: whether glibc's walk may be reused, and its confirmation). */
  read(plan: ReadPlan, policy: ReadPolicy): Snapshot {
    return read(this, plan, policy);
  }

  /** A one-shot reading (see {@link collect}). */
  collect(options?: CollectOptions): Snapshot {
    return this.read(readPlan(options), { reuse: false });
  }

  /** A reading for a reader that repeats (sampler, handler, metrics): glibc's walk may be reused within its back-off. */
  collectRepeated(options?: CollectOptions): Snapshot {
    return this.read(readPlan(options), { reuse: true });
  }

  /** The cached fast reading (see {@link snapshot}). */
  snapshot(options?: { maxAgeMs?: number }): Snapshot {
    // Even a cached answer: a reporter that reads is refused the same way every time, not only when the cache is old.
    refuseInsideReading("snapshot()");
    const o = is.optionsObject("snapshot(options)", options, ["maxAgeMs"]);
    const maxAgeMs = is.maxAgeMs("snapshot(options)", o.maxAgeMs, 1000);
    const now = performance.now();
    if (this.cached === undefined || now - this.cachedAt > maxAgeMs) {
      this.cached = this.collectRepeated({ tier: "fast" });
      this.cachedAt = now;
    }
    return this.cached;
  }

  /** Sets the baseline (see {@link setBaseline}). */
  setBaseline(options?: { snapshot?: Snapshot; budgets?: BaselineBudgets }): Snapshot {
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
    const s = (o.snapshot as Snapshot | undefined) ?? this.collect();
    this.baselines.store(s, o.budgets, where);
    return s;
  }

  /** The baseline set by setBaseline(), or undefined. */
  baseline(): Snapshot | undefined {
    return this.baselines.current()?.snapshot;
  }

  /** Registers a memory reporter with this process (see {@link registerMemoryReporter}). */
  registerMemoryReporter(name: string, report: MemoryReporter, options?: MemoryReporterOptions): () => void {
    return this.reporters.register(name, report, options);
  }
}

/** The process every module function reads and keeps history in. */
export const defaultProcess = new HeapProcess({ reporters: defaultReporters, asksWorkers: true });

/**
 * A process state of its own: readings made through it keep their own back-off, trend, dirty
 * history, baseline, reporters and cache, apart from the module functions' (tests, a library
 * that must not share the application's history). Worker threads' reporters reach only the
 * default process.
 */
export function createProcess(): HeapProcess {
  return new HeapProcess();
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
  return defaultProcess.collect(options);
}

/** collect() for a reader that repeats (sampler, handler, metrics): glibc's walk may be reused within its back-off. */
export function collectRepeated(options?: CollectOptions): Snapshot {
  return defaultProcess.collectRepeated(options);
}

/**
 * The last snapshot if it is younger than `maxAgeMs` (default 1000), else a new `fast` one.
 * For metrics scrapes and log lines that may run often. A repeated reader: glibc's costly walk is
 * reused within its back-off (the reading says so in `heap.asOf`).
 * @example
 * app.get("/health", () => ({ rss: snapshot({ maxAgeMs: 5000 }).process?.rssBytes }));
 */
export function snapshot(options?: { maxAgeMs?: number }): Snapshot {
  return defaultProcess.snapshot(options);
}

/**
 * Sets this process's baseline: `snapshot`, or a standard reading now, with optional budgets for
 * growth over it (bytes or "100MiB") that every later reading checks. Returns the baseline.
 * @example
 * setBaseline({ budgets: { nativeUnclassifiedBytes: "100MiB" } }); // after warm-up
 * // later: formatDiff(diff(baseline(), collect()))
 */
export function setBaseline(options?: { snapshot?: Snapshot; budgets?: BaselineBudgets }): Snapshot {
  return defaultProcess.setBaseline(options);
}

/** The baseline set by setBaseline(), or undefined. */
export function baseline(): Snapshot | undefined {
  return defaultProcess.baseline();
}

/** Forgets the baseline. */
export function clearBaseline(): void {
  defaultProcess.baselines.clear();
}
