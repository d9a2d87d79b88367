/**
 * Derived figures every face reads, computed here once. The reading's RSS is `process.rssBytes`
 * (collect() chose it); what is derived from several fields lives in this module.
 */
import type { AllocatorName, Snapshot } from "./types";
import { servingAllocator } from "./views";

/** The native heap as one figure, and which counter it is. */
export interface NativeHeapFigure {
  bytes: number;
  /** `allocated` (what the program holds) or, for mimalloc 2.0 which has no such counter, `committed`. */
  counter: "allocated" | "committed";
  allocator: AllocatorName;
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
