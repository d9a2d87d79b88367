/**
 * V8's numbers. Per isolate: heap figures and `arrayBuffers` describe the thread that collects,
 * while allocator and kernel figures are process-wide. Every tier reads v8.getHeapStatistics()
 * (about 2 µs) and process.memoryUsage() (about 4 µs: it also reads /proc/self/stat) for
 * `arrayBuffers`, which the split of the native heap needs; standard and deep add the heap spaces.
 */
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";
import { errorCode } from "../base/errors";
import type { Tier, V8State, Warning } from "../model/types";

function size(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

type HeapStatistics = ReturnType<typeof getHeapStatistics> & { external_memory?: number };

/**
 * The heap's statistics and, past the fast tier, its spaces, read back to back: a collection in
 * between (an allocation can start one) changes the pages, and the spaces no longer add up to the
 * total. Such a pair is read once more.
 */
function readHeap(tier: Tier): { h: HeapStatistics; spaces?: ReturnType<typeof getHeapSpaceStatistics> } {
  let h = getHeapStatistics() as HeapStatistics;
  if (tier === "fast") return { h };
  let spaces = getHeapSpaceStatistics();
  const sum = () => spaces.reduce((n, s) => n + s.physical_space_size, 0);
  if (sum() !== h.total_physical_size) {
    h = getHeapStatistics() as HeapStatistics;
    spaces = getHeapSpaceStatistics();
  }
  return { h, spaces };
}

/** Sets `key` when `v` is a size (a function, not a closure made per reading). */
function put(out: V8State, key: keyof Omit<V8State, "spaces">, v: unknown): void {
  const n = size(v);
  if (n !== undefined) out[key] = n;
}

/** V8's figures; what process.memoryUsage() could not give (it reads /proc/self/stat) is a warning. */
export function readV8(tier: Tier, warnings: Warning[]): V8State {
  const { h, spaces } = readHeap(tier);
  const out: V8State = {};
  put(out, "heapTotalBytes", h.total_heap_size);
  put(out, "heapUsedBytes", h.used_heap_size);
  put(out, "externalBytes", h.external_memory);
  put(out, "physicalBytes", h.total_physical_size);
  put(out, "heapLimitBytes", h.heap_size_limit);
  put(out, "mallocedBytes", h.malloced_memory);
  try {
    const m = process.memoryUsage();
    put(out, "externalBytes", m.external);
    put(out, "arrayBuffersBytes", m.arrayBuffers);
  } catch (error) {
    warnings.push({
      source: "v8",
      code: "SOURCE_FAILED",
      message: `process.memoryUsage() failed (${errorCode(error)}): arrayBuffers is not measured in this reading`,
    });
  }
  if (spaces) {
    out.spaces = spaces.map((s) => ({
      name: s.space_name,
      sizeBytes: s.space_size,
      usedBytes: s.space_used_size,
      availableBytes: s.space_available_size,
      physicalBytes: s.physical_space_size,
    }));
  }
  return out;
}
