/**
 * collect(): one reading of every source, merged into a Snapshot, reconciled, with findings.
 * snapshot(): the same behind a time-to-live cache for hot callers. trim(): give free memory back
 * and measure what left RSS.
 */
import { allocatorsFromReading } from "./allocators/index";
import { buildBreakdown } from "./breakdown";
import { HeapstateError } from "./errors";
import { findings } from "./findings";
import { native, nativeProblem } from "./native";
import { locate, readCgroup } from "./procfs/cgroup-read";
import { DEFAULT_PROC_ROOT, processError, readProcFile, streamProcFile } from "./procfs/read";
import { parseSmapsTotals, SmapsParser, type SmapsTotals } from "./procfs/smaps";
import { parseStatus } from "./procfs/status";
import { RegionAccumulator } from "./regions";
import type {
  AllocatorState,
  CollectOptions,
  RegionSummary,
  Snapshot,
  Tier,
  TrimAction,
  TrimResult,
  Warning,
} from "./types";
import { TIERS } from "./types";
import { readV8 } from "./v8";
import * as is from "./validate";
import { optionsObject } from "./validate";

const optionNames = ["tier", "pid", "includeAddresses", "procRoot", "fsRoot"] as const;

interface Resolved {
  tier: Tier;
  pid: number;
  self: boolean;
  includeAddresses: boolean;
  procRoot: string;
  fsRoot: string;
}

function resolveOptions(options: unknown, where = "collect(options)"): Resolved {
  const o = optionsObject(where, options, optionNames);
  const pid = is.pid(where, o.pid, process.pid);
  return {
    tier: is.oneOf(where, "tier", o.tier, "standard", TIERS),
    pid,
    self: pid === process.pid,
    includeAddresses: is.bool(where, "includeAddresses", o.includeAddresses, false),
    procRoot: is.text(where, "procRoot", o.procRoot, DEFAULT_PROC_ROOT),
    fsRoot: is.text(where, "fsRoot", o.fsRoot, "/"),
  };
}

function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Reads the process now: allocator counters (own process only), V8, the kernel's figures and the
 * memory cgroup; reconciles them into a breakdown of RSS and states findings. Advances jemalloc's
 * epoch exactly once. A source that cannot be read becomes a warning and the rest stands; throws
 * {@link HeapstateError} for bad options, and for another `pid` that does not exist, exits while
 * being read, or may not be read.
 * @example
 * const s = collect();                    // tier "standard"
 * console.log(s.heap?.allocator, s.breakdown?.unattributedBytes, s.findings);
 * collect({ tier: "deep" }).regions;      // smaps regions by category
 */
export function collect(options?: CollectOptions): Snapshot {
  return collectWith(resolveOptions(options), false);
}

/**
 * collect() that walks glibc's heap even inside the walk's back-off: for readings that bound a
 * measurement (trim, the sidecar's start and stop), where a reused figure would hide the change
 * being measured. Not part of the public API.
 */
export function collectFresh(options?: CollectOptions): Snapshot {
  return collectWith(resolveOptions(options), true);
}

function collectWith(o: Resolved, freshGlibc: boolean): Snapshot {
  const start = nowMicros();
  const time = new Date().toISOString();
  const warnings: Warning[] = [];
  const costs: Record<string, number> = {};
  const snap: Snapshot = {
    schema: "heapstate/1",
    time,
    pid: o.pid,
    tier: o.tier,
    costMicros: 0,
    allocators: [],
    warnings,
  };
  // Each source stands alone: whatever one of them throws (a descriptor table that is full, a
  // failed allocation, process.memoryUsage() failing, a bug) becomes a warning naming it, and the
  // rest of the reading stands. Only another process's "gone" and "not yours" are thrown: they are
  // the answer, not a missing part of it.
  const guard = (source: string, fn: () => void) => {
    const t = nowMicros();
    try {
      fn();
    } catch (error) {
      if (error instanceof HeapstateError && !o.self) throw error;
      warnings.push(sourceWarning(o, source, error));
    } finally {
      costs[source] = (costs[source] ?? 0) + (nowMicros() - t);
    }
  };

  if (o.self) {
    guard("allocators", () => readAllocators(snap, o.tier, freshGlibc, warnings));
    guard("v8", () => {
      snap.v8 = readV8(o.tier, warnings);
    });
  } else {
    warnings.push({
      source: "heap",
      code: "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE",
      message: `allocator counters live inside process ${o.pid} and cannot be read from outside; call heapstate's collect() in that process`,
    });
  }

  guard("status", () => {
    let text: string;
    try {
      text = readProcFile(o.procRoot, o.pid, "status");
    } catch (error) {
      throw o.self ? error : otherProcessError(o, "status", error);
    }
    if (!o.self) refuseWithoutMemory(o.pid, text);
    snap.process = parseStatus(text);
  });

  guard("cgroup", () => {
    const loc = locate(o.procRoot, o.fsRoot, o.pid, warnings);
    const cg = loc && readCgroup(loc, o.tier, warnings, o.self);
    if (cg) snap.cgroup = cg;
  });

  let exactRss: number | undefined;
  if (o.tier !== "fast") {
    guard("smaps_rollup", () => {
      const totals = readTotals(o, warnings);
      if (!totals) return;
      exactRss = totals.rssBytes;
      snap.process ??= {};
      const p = snap.process;
      if (totals.pssBytes !== undefined) p.pssBytes = totals.pssBytes;
      if (totals.privateDirtyBytes !== undefined) p.privateDirtyBytes = totals.privateDirtyBytes;
      if (totals.lazyFreeBytes !== undefined) p.lazyFreeBytes = totals.lazyFreeBytes;
      if (totals.anonHugePagesBytes !== undefined) p.anonHugePagesBytes = totals.anonHugePagesBytes;
    });
  }
  if (o.tier === "deep") {
    guard("smaps", () => {
      const regions = readRegions(o, warnings);
      if (regions) snap.regions = regions;
    });
  }

  guard("breakdown", () => {
    const breakdown = buildBreakdown({
      heap: snap.heap,
      v8: snap.v8,
      process: snap.process,
      exactRssBytes: exactRss,
      regions: snap.regions,
    });
    if (breakdown) snap.breakdown = breakdown;
    snap.findings = findings(snap, breakdown, { env: o.self ? process.env : undefined });
  });
  snap.sourceCostMicros = costs;
  snap.costMicros = nowMicros() - start;
  return snap;
}

/** Errors that say the machine or the process ran short (descriptors, memory), not that the file is wrong. */
const EXHAUSTED = new Set(["EMFILE", "ENFILE", "ENOMEM", "ENOBUFS", "EAGAIN"]);

function sourceWarning(o: Resolved, source: string, error: unknown): Warning {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === "string" && EXHAUSTED.has(code)) {
    return {
      source,
      code: "RESOURCE_EXHAUSTED",
      message: `${source} could not be read (${code}: ${code === "EMFILE" || code === "ENFILE" ? "the descriptor table is full" : "out of memory"}); the next reading tries again`,
    };
  }
  if (["status", "smaps_rollup", "smaps"].includes(source)) return procWarning(o, source, error);
  return { source, code: "SOURCE_FAILED", message: `${source} could not be read: ${message}` };
}

/**
 * Another process that has no user memory to show: a kernel thread (its smaps say "no such
 * process", which would read as "does not exist") or a zombie (it has exited; only its status
 * entry is left until its parent reaps it).
 */
function refuseWithoutMemory(pid: number, status: string): void {
  const state = /^State:\s*(\S)/m.exec(status)?.[1];
  const name = /^Name:\s*(.*)$/m.exec(status)?.[1]?.trim();
  const called = name ? ` (${name})` : "";
  if (state === "Z" || state === "X") {
    throw new HeapstateError(
      "ZOMBIE_PROCESS",
      `process ${pid}${called} is a zombie: it has exited and holds no memory; its parent has not reaped it yet`,
    );
  }
  // Kthread: since Linux 6.x; before it, a kernel thread is one with no VmSize whose parent is
  // kthreadd (2) or nobody (kthreadd itself). A truncated or broken status is neither.
  const kthread = /^Kthread:\s*(\d)/m.exec(status)?.[1];
  const ppid = /^PPid:\s*(\d+)/m.exec(status)?.[1];
  const oldKernelThread =
    kthread === undefined && state !== undefined && (ppid === "0" || ppid === "2") && !/^VmSize:/m.test(status);
  if (kthread === "1" || oldKernelThread) {
    throw new HeapstateError(
      "KERNEL_THREAD",
      `process ${pid}${called} is a kernel thread: it has no user memory to show`,
    );
  }
}

function procWarning(o: Resolved, file: string, error: unknown): Warning {
  return {
    source: file,
    code: "PROCFS_UNREADABLE",
    message: `${o.procRoot}/${o.pid}/${file} could not be read: ${(error as Error).message}`,
  };
}

/** For another process, an error from its files is the answer (gone, not readable), unless it says we ran short. */
function otherProcessError(o: Resolved, file: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && EXHAUSTED.has(code)) return error;
  return processError(o.pid, file, error);
}

/**
 * The deep tier's regions: smaps read by chunks and summed as it streams, so a process with tens
 * of thousands of mappings costs a chunk and a few mappings of memory, not the whole text.
 */
function readRegions(o: Resolved, warnings: Warning[]): RegionSummary[] | undefined {
  const acc = new RegionAccumulator(o.includeAddresses);
  const parser = new SmapsParser((m) => acc.push(m));
  try {
    streamProcFile(o.procRoot, o.pid, "smaps", (chunk) => parser.write(chunk));
  } catch (error) {
    if (!o.self) throw otherProcessError(o, "smaps", error);
    warnings.push(sourceWarning(o, "smaps", error));
    return undefined;
  }
  parser.end();
  return acc.finish();
}

/** smaps_rollup, or (kernels before 4.14) the same keys summed over smaps. */
function readTotals(o: Resolved, warnings: Warning[]): SmapsTotals | undefined {
  try {
    return parseSmapsTotals(readProcFile(o.procRoot, o.pid, "smaps_rollup"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      if (!o.self) throw otherProcessError(o, "smaps_rollup", error);
      warnings.push(sourceWarning(o, "smaps_rollup", error));
      return undefined;
    }
  }
  try {
    return parseSmapsTotals(readProcFile(o.procRoot, o.pid, "smaps"));
  } catch (error) {
    if (!o.self) throw otherProcessError(o, "smaps", error);
    const w = sourceWarning(o, "smaps_rollup", error);
    if (w.code === "PROCFS_UNREADABLE") {
      w.message = `${o.procRoot}/${o.pid}/smaps_rollup is missing and smaps could not be read either: ${(error as Error).message}`;
    }
    warnings.push(w);
    return undefined;
  }
}

let glibcServesMalloc: boolean | undefined;

/**
 * glibc's mallinfo2/malloc_info walk every free chunk while holding each arena's lock: 20 ms with
 * 500 k free chunks, stalling other threads' mallocs. A walk that cost 1 ms or more is repeated
 * at most every 10 s, or less often if its cost needs it to stay under 1% of one core (a 200 ms
 * walk: every 20 s); in between, the last glibc reading is reused and says so in `asOf`. A cheaper
 * walk (an idle Node takes a few µs) is simply repeated: at one reading a second it stays under
 * 0.1%, and fresh figures are worth more than that.
 */
const GLIBC_BUDGET = 0.01;
const GLIBC_BACKOFF_FROM_MICROS = 1000;
const GLIBC_BACKOFF_MIN_MS = 10_000;
let glibcMemo: { state: AllocatorState; time: string; atMs: number; costMicros: number } | undefined;

function readAllocators(snap: Snapshot, tier: Tier, fresh: boolean, warnings: Warning[]): void {
  const binding = native();
  if (binding === undefined) {
    const problem = nativeProblem();
    if (problem) warnings.push(problem);
    return;
  }
  try {
    // glibc's counters are read only when libc serves malloc: under a preload they describe an
    // empty arena. Which object serves malloc is fixed for the life of the process (objects
    // loaded later come after it in symbol-resolution order), so it is asked once.
    glibcServesMalloc ??= binding.discover().instances.some((i) => i.allocator === "glibc" && i.servesMalloc);
    const nowMs = performance.now();
    const walk =
      glibcServesMalloc &&
      (fresh ||
        glibcMemo === undefined ||
        glibcMemo.costMicros < GLIBC_BACKOFF_FROM_MICROS ||
        nowMs - glibcMemo.atMs >= Math.max(GLIBC_BACKOFF_MIN_MS, glibcMemo.costMicros / 1000 / GLIBC_BUDGET) ||
        (tier === "deep" && glibcMemo.state.arenas === undefined));
    const start = nowMicros();
    const reading = binding.read({ glibc: walk, mallocInfo: walk && tier === "deep" });
    const cost = nowMicros() - start;
    const { heap, allocators } = allocatorsFromReading(reading, warnings, walk ? undefined : glibcMemo?.state);
    if (walk && heap?.allocator === "glibc") {
      glibcMemo = { state: heap, time: snap.time, atMs: nowMs, costMicros: cost };
    }
    if (!walk && heap && heap === glibcMemo?.state) {
      const stale = { ...heap, asOf: glibcMemo.time };
      allocators[allocators.indexOf(heap)] = stale;
      snap.heap = stale;
    } else if (heap) {
      snap.heap = heap;
    }
    snap.allocators = allocators;
  } catch (error) {
    warnings.push({
      source: "native",
      code: "NATIVE_READ_FAILED",
      message: `reading the allocator failed: ${(error as Error).message}`,
    });
  }
}

let cached: Snapshot | undefined;
let cachedAt = 0;

/**
 * The last snapshot if it is younger than `maxAgeMs` (default 1000), else a new `fast` one.
 * For metrics scrapes and log lines that may run often.
 * @example
 * app.get("/health", () => ({ rss: snapshot({ maxAgeMs: 5000 }).process?.rssBytes }));
 */
export function snapshot(options?: { maxAgeMs?: number }): Snapshot {
  const o = optionsObject("snapshot(options)", options, ["maxAgeMs"]);
  const maxAgeMs = is.maxAgeMs("snapshot(options)", o.maxAgeMs, 1000);
  const now = performance.now();
  if (cached === undefined || now - cachedAt > maxAgeMs) {
    cached = collect({ tier: "fast" });
    cachedAt = now;
  }
  return cached;
}

/**
 * Gives free memory back to the OS: glibc `malloc_trim(0)`; jemalloc `thread.tcache.flush` and
 * `arena.4096.purge`; tcmalloc `MallocExtension_ReleaseFreeMemory`; mimalloc `mi_collect(true)`.
 * Returns snapshots before and after (both read afresh), and the RSS released as the kernel
 * counts it.
 * @example
 * const { releasedBytes } = trim();
 */
export function trim(): TrimResult {
  const o = resolveOptions(undefined, "trim()");
  const before = collectWith(o, true);
  const actions: TrimAction[] = [];
  const binding = native();
  if (binding !== undefined) {
    try {
      const glibc = before.heap?.allocator === "glibc";
      for (const inst of binding.trim({ glibc }).instances ?? []) {
        for (const [action, result] of Object.entries(inst.actions)) {
          actions.push({ allocator: inst.allocator, library: inst.library, action, result });
        }
      }
    } catch (error) {
      before.warnings.push({
        source: "native",
        code: "NATIVE_TRIM_FAILED",
        message: `trimming failed: ${(error as Error).message}`,
      });
    }
  }
  const after = collectWith(o, true);
  const b = before.process?.rssBytes;
  const a = after.process?.rssBytes;
  const result: TrimResult = { before, after, actions };
  if (a !== undefined && b !== undefined) result.releasedBytes = b - a;
  return result;
}
