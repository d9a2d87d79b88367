/**
 * The key figures of a reading, computed here once: every face (the sampler and its history, the
 * sidecar and its budgets, the log field, the watch line, the agent's rows, the metrics, the page)
 * and the findings read them from `keyFigures(s)`, and none derives its own. The reading's RSS is
 * `process.rssBytes` (collect() chose it and says from where).
 */
import type { AllocatorName, Snapshot, Tier } from "./types";
import { servingAllocator } from "./views";

/** The native heap as one figure, and which counter it is. */
export interface NativeHeapFigure {
  bytes: number;
  /** `allocated` (what the program holds) or, for mimalloc 2.0 which has no such counter, `committed`. */
  counter: "allocated" | "committed";
  allocator: AllocatorName;
}

/** The figures a face shows of one reading; each absent where the reading did not measure it. */
export interface KeyFigures {
  time: string;
  tier: Tier;
  /** The reading's one RSS, and its source (`smaps_rollup`, or `status` VmRSS in the fast tier). */
  rssBytes?: number;
  rssSource?: "smaps_rollup" | "status";
  /** The serving allocator's native heap (none from a reused glibc reading: an earlier moment's). */
  nativeHeap?: NativeHeapFigure;
  /** The native heap no one claims: what the leak finding follows. */
  nativeUnclassifiedBytes?: number;
  /** RSS less every part, signed. */
  unattributedBytes?: number;
  v8HeapUsedBytes?: number;
  v8ExternalBytes?: number;
  arrayBuffersBytes?: number;
  /**
   * The peak RSS: since this consumer's previous reading where it follows peaks (`peakSince` says
   * from when), else the process's VmHWM (since its last reset or the process start).
   */
  peakRssBytes?: number;
  peakSince?: string;
  /** What trim() would give back now, as it promises it (`trimPromise`). */
  trimPromiseBytes?: number;
}

/**
 * The serving allocator's allocated bytes, or its committed bytes when it has no allocated
 * counter (mimalloc 2.0). None from a reused glibc reading (`asOf`): it is an earlier moment's.
 */
export function nativeHeap(s: Snapshot): NativeHeapFigure | undefined {
  const heap = servingAllocator(s);
  if (heap === undefined || heap.asOf !== undefined) return undefined;
  if (heap.allocatedBytes !== undefined)
    return { bytes: heap.allocatedBytes, counter: "allocated", allocator: heap.allocator };
  if (heap.committedBytes !== undefined)
    return { bytes: heap.committedBytes, counter: "committed", allocator: heap.allocator };
  return undefined;
}

/** The breakdown's native-unclassified child (the native heap no one claims), if it was split. */
export function nativeUnclassifiedBytes(s: { breakdown?: Snapshot["breakdown"] | undefined }): number | undefined {
  for (const p of s.breakdown?.parts ?? [])
    for (const c of p.children ?? []) if (c.name === "native-unclassified") return c.bytes;
  return undefined;
}

/**
 * What a trim is expected to release, from each allocator it trims: glibc's releasable pages,
 * jemalloc's dirty and muzzy pages (a purge of every arena), tcmalloc's free page-heap pages
 * (ReleaseFreeMemory; its caches stay). Undefined when none of them can say.
 */
export function trimPromise(s: Snapshot): number | undefined {
  let total: number | undefined;
  const add = (n: number | undefined) => {
    if (n !== undefined) total = (total ?? 0) + n;
  };
  for (const a of s.allocators) {
    switch (a.allocator) {
      case "glibc":
        if (a.servesMalloc) add(a.pages?.releasableBytes);
        break;
      case "jemalloc":
        if (a.pages?.dirtyBytes !== undefined) add(a.pages.dirtyBytes + (a.pages.muzzyBytes ?? 0));
        break;
      case "tcmalloc":
        add(a.pages?.dirtyBytes);
        break;
      case "mimalloc":
        // mi_collect(true) returns its cached segments, not the free spans of segments in use.
        if (a.servesMalloc) add(a.pages?.releasableBytes);
        break;
    }
  }
  return total;
}

/** The key figures of `s`: a handful of field reads, derived here and nowhere else. */
export function keyFigures(s: Snapshot): KeyFigures {
  const k: KeyFigures = { time: s.time, tier: s.tier };
  const proc = s.process;
  if (proc?.rssBytes !== undefined) k.rssBytes = proc.rssBytes;
  if (proc?.rssSource !== undefined) k.rssSource = proc.rssSource;
  const heap = nativeHeap(s);
  if (heap) k.nativeHeap = heap;
  const unclassified = nativeUnclassifiedBytes(s);
  if (unclassified !== undefined) k.nativeUnclassifiedBytes = unclassified;
  if (s.breakdown) k.unattributedBytes = s.breakdown.unattributedBytes;
  if (s.v8?.heapUsedBytes !== undefined) k.v8HeapUsedBytes = s.v8.heapUsedBytes;
  if (s.v8?.externalBytes !== undefined) k.v8ExternalBytes = s.v8.externalBytes;
  if (s.v8?.arrayBuffersBytes !== undefined) k.arrayBuffersBytes = s.v8.arrayBuffersBytes;
  if (s.peak) {
    k.peakRssBytes = s.peak.rssBytes;
    k.peakSince = s.peak.since;
  } else if (proc?.peakRssBytes !== undefined) k.peakRssBytes = proc.peakRssBytes;
  const promise = trimPromise(s);
  if (promise !== undefined) k.trimPromiseBytes = promise;
  return k;
}
