/**
 * collect(): one reading of every source, merged into a Snapshot, reconciled, with findings.
 * snapshot(): the same behind a time-to-live cache for hot callers. trim(): give free memory back
 * and measure what left RSS.
 */
import { allocatorsFromReading } from "./allocators/index";
import { buildBreakdown } from "./breakdown";
import { describeType, HeapstateError } from "./errors";
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
import { readV8 } from "./v8";

const tiers: readonly Tier[] = ["fast", "standard", "deep"];
const optionNames = ["tier", "pid", "includeAddresses", "procRoot", "fsRoot"];

interface Resolved {
  tier: Tier;
  pid: number;
  self: boolean;
  includeAddresses: boolean;
  procRoot: string;
  fsRoot: string;
}

function invalid(message: string): HeapstateError {
  return new HeapstateError("INVALID_OPTION", `collect(options): ${message}`);
}

function resolveOptions(options: CollectOptions | undefined): Resolved {
  if (options !== undefined && (options === null || typeof options !== "object" || Array.isArray(options))) {
    throw invalid(`expected an object, received ${describeType(options)}`);
  }
  const o = (options ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!optionNames.includes(key)) throw invalid(`unknown option "${key}" (known: ${optionNames.join(", ")})`);
  }
  const tier = o.tier ?? "standard";
  if (!tiers.includes(tier as Tier)) {
    throw invalid(`tier must be one of ${tiers.join(", ")}, received ${JSON.stringify(tier)}`);
  }
  const pid = o.pid ?? process.pid;
  if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) {
    throw invalid(`pid must be a positive integer, received ${describeType(pid)} ${String(pid)}`);
  }
  const includeAddresses = o.includeAddresses ?? false;
  if (typeof includeAddresses !== "boolean") {
    throw invalid(`includeAddresses must be a boolean, received ${describeType(includeAddresses)}`);
  }
  const procRoot = o.procRoot ?? DEFAULT_PROC_ROOT;
  const fsRoot = o.fsRoot ?? "/";
  for (const [name, v] of [
    ["procRoot", procRoot],
    ["fsRoot", fsRoot],
  ] as const) {
    if (typeof v !== "string" || v === "")
      throw invalid(`${name} must be a non-empty string, received ${describeType(v)}`);
  }
  return {
    tier: tier as Tier,
    pid,
    self: pid === process.pid,
    includeAddresses,
    procRoot: procRoot as string,
    fsRoot: fsRoot as string,
  };
}

function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Per-source timing for sourceCostMicros. */
function timed<T>(costs: Record<string, number>, source: string, fn: () => T): T {
  const start = nowMicros();
  try {
    return fn();
  } finally {
    costs[source] = (costs[source] ?? 0) + (nowMicros() - start);
  }
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

  if (o.self) {
    timed(costs, "allocators", () => readAllocators(snap, o.tier, freshGlibc, warnings));
    snap.v8 = timed(costs, "v8", () => readV8(o.tier));
  } else {
    warnings.push({
      source: "heap",
      code: "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE",
      message: `allocator counters live inside process ${o.pid} and cannot be read from outside; call heapstate's collect() in that process`,
    });
  }

  timed(costs, "status", () => {
    try {
      snap.process = parseStatus(readProcFile(o.procRoot, o.pid, "status"));
    } catch (error) {
      if (!o.self) throw processError(o.pid, "status", error);
      warnings.push(procWarning(o, "status", error));
    }
  });

  timed(costs, "cgroup", () => {
    const loc = locate(o.procRoot, o.fsRoot, o.pid, warnings);
    const cg = loc && readCgroup(loc, o.tier, warnings, o.self);
    if (cg) snap.cgroup = cg;
  });

  let exactRss: number | undefined;
  if (o.tier !== "fast") {
    const totals = timed(costs, "smaps_rollup", () => readTotals(o, warnings));
    if (totals) {
      exactRss = totals.rssBytes;
      snap.process ??= {};
      const p = snap.process;
      if (totals.pssBytes !== undefined) p.pssBytes = totals.pssBytes;
      if (totals.privateDirtyBytes !== undefined) p.privateDirtyBytes = totals.privateDirtyBytes;
      if (totals.lazyFreeBytes !== undefined) p.lazyFreeBytes = totals.lazyFreeBytes;
      if (totals.anonHugePagesBytes !== undefined) p.anonHugePagesBytes = totals.anonHugePagesBytes;
    }
  }
  if (o.tier === "deep") {
    timed(costs, "smaps", () => {
      const regions = readRegions(o, warnings);
      if (regions) snap.regions = regions;
    });
  }

  const breakdown = buildBreakdown({
    heap: snap.heap,
    v8: snap.v8,
    process: snap.process,
    exactRssBytes: exactRss,
    regions: snap.regions,
  });
  if (breakdown) snap.breakdown = breakdown;
  snap.findings = findings(snap, breakdown, { env: o.self ? process.env : undefined });
  snap.sourceCostMicros = costs;
  snap.costMicros = nowMicros() - start;
  return snap;
}

function procWarning(o: Resolved, file: string, error: unknown): Warning {
  return {
    source: file,
    code: "PROCFS_UNREADABLE",
    message: `${o.procRoot}/${o.pid}/${file} could not be read: ${(error as Error).message}`,
  };
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
    if (!o.self) throw processError(o.pid, "smaps", error);
    warnings.push(procWarning(o, "smaps", error));
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
      if (!o.self) throw processError(o.pid, "smaps_rollup", error);
      warnings.push(procWarning(o, "smaps_rollup", error));
      return undefined;
    }
  }
  try {
    return parseSmapsTotals(readProcFile(o.procRoot, o.pid, "smaps"));
  } catch (error) {
    if (!o.self) throw processError(o.pid, "smaps", error);
    warnings.push({
      ...procWarning(o, "smaps_rollup", error),
      message: `${o.procRoot}/${o.pid}/smaps_rollup is missing and smaps could not be read either: ${(error as Error).message}`,
    });
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
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new HeapstateError(
      "INVALID_OPTION",
      `snapshot(options): expected an object, received ${describeType(options)}`,
    );
  }
  const maxAgeMs = options?.maxAgeMs ?? 1000;
  if (typeof maxAgeMs !== "number" || !(maxAgeMs >= 0)) {
    throw new HeapstateError(
      "INVALID_OPTION",
      `snapshot(options): maxAgeMs must be a number ≥ 0, received ${describeType(maxAgeMs)} ${String(maxAgeMs)}`,
    );
  }
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
  const o = resolveOptions(undefined);
  const before = collectWith(o, true);
  const actions: TrimAction[] = [];
  const binding = native();
  if (binding !== undefined) {
    try {
      const glibc = before.heap?.allocator === "glibc";
      for (const inst of binding.trim({ glibc }).instances) {
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
