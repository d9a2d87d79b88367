/**
 * collect(): one reading of every source, merged into a Snapshot. snapshot(): the same behind a
 * time-to-live cache for hot callers. trim(): give free memory back and measure what left RSS.
 */
import { allocatorsFromReading } from "./allocators/index";
import { describeType, HeapstateError } from "./errors";
import { native, nativeProblem } from "./native";
import { DEFAULT_PROC_ROOT, processError, readProcFile } from "./procfs/read";
import { parseStatus } from "./procfs/status";
import type { CollectOptions, Snapshot, Tier, TrimAction, TrimResult, Warning } from "./types";

const tiers: readonly Tier[] = ["fast", "standard", "deep"];

interface Resolved {
  tier: Tier;
  pid: number;
  self: boolean;
  procRoot: string;
}

function resolveOptions(options: CollectOptions | undefined): Resolved {
  if (options !== undefined && (options === null || typeof options !== "object" || Array.isArray(options))) {
    throw new HeapstateError(
      "INVALID_OPTION",
      `collect(options): expected an object, received ${describeType(options)}`,
    );
  }
  const o = (options ?? {}) as CollectOptions & { procRoot?: unknown };
  for (const key of Object.keys(o)) {
    if (!["tier", "pid", "procRoot"].includes(key)) {
      throw new HeapstateError(
        "INVALID_OPTION",
        `collect(options): unknown option "${key}" (known: tier, pid, procRoot)`,
      );
    }
  }
  const tier = o.tier ?? "standard";
  if (!tiers.includes(tier)) {
    throw new HeapstateError(
      "INVALID_OPTION",
      `collect(options): tier must be one of ${tiers.join(", ")}, received ${JSON.stringify(tier)}`,
    );
  }
  const pid = o.pid ?? process.pid;
  if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new HeapstateError(
      "INVALID_OPTION",
      `collect(options): pid must be a positive integer, received ${describeType(pid)} ${String(pid)}`,
    );
  }
  const procRoot = o.procRoot ?? DEFAULT_PROC_ROOT;
  if (typeof procRoot !== "string" || procRoot === "") {
    throw new HeapstateError("INVALID_OPTION", `collect(options): procRoot must be a non-empty string`);
  }
  return { tier, pid, self: pid === process.pid, procRoot };
}

function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Reads the process now: allocator counters (own process only), kernel figures, warnings.
 * Advances jemalloc's epoch exactly once. Never throws for a source that cannot be read (that
 * becomes a warning); throws {@link HeapstateError} for bad options, and for another `pid` that
 * does not exist or may not be read.
 * @example
 * const s = collect();
 * console.log(s.heap?.allocator, s.heap?.allocatedBytes, s.warnings);
 */
export function collect(options?: CollectOptions): Snapshot {
  const o = resolveOptions(options);
  const start = nowMicros();
  const time = new Date().toISOString();
  const warnings: Warning[] = [];
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
    readAllocators(snap, o.tier, warnings);
  } else {
    warnings.push({
      source: "heap",
      code: "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE",
      message: `allocator counters live inside process ${o.pid} and cannot be read from outside; call heapstate's collect() in that process`,
    });
  }

  try {
    snap.process = parseStatus(readProcFile(o.procRoot, o.pid, "status"));
  } catch (error) {
    if (!o.self) throw processError(o.pid, "status", error);
    warnings.push({
      source: "status",
      code: "PROCFS_UNREADABLE",
      message: `${o.procRoot}/${o.pid}/status could not be read: ${(error as Error).message}`,
    });
  }

  snap.costMicros = nowMicros() - start;
  return snap;
}

let glibcServesMalloc: boolean | undefined;

function readAllocators(snap: Snapshot, tier: Tier, warnings: Warning[]): void {
  const binding = native();
  if (binding === undefined) {
    const problem = nativeProblem();
    if (problem) warnings.push(problem);
    return;
  }
  try {
    // glibc's counters are read only when libc serves malloc: under a preload they describe an
    // empty arena, and the read walks every free chunk under each arena's lock. Which object
    // serves malloc is fixed for the life of the process (objects loaded later come after it in
    // symbol-resolution order), so it is asked once.
    glibcServesMalloc ??= binding.discover().instances.some((i) => i.allocator === "glibc" && i.servesMalloc);
    const glibc = glibcServesMalloc;
    const reading = binding.read({ glibc, mallocInfo: glibc && tier === "deep" });
    const { heap, allocators } = allocatorsFromReading(reading, warnings);
    if (heap) snap.heap = heap;
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
 * Returns snapshots before and after, and the RSS released as the kernel counts it.
 * @example
 * const { releasedBytes } = trim();
 */
export function trim(): TrimResult {
  const before = collect();
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
  const after = collect();
  const b = before.process?.rssBytes;
  const a = after.process?.rssBytes;
  const result: TrimResult = { before, after, actions };
  if (a !== undefined && b !== undefined) result.releasedBytes = b - a;
  return result;
}
