/**
 * Raw native readings → the snapshot's `heap` and `allocators`. Owns the policy: which instances
 * are reported (the "linked but unused" collapse) and which one is the heap.
 */

import type { NativeReadInstance, NativeReading } from "../addon/native";
import type { AllocatorState, Warning } from "../model/types";
import { glibcState } from "./glibc";
import { jemallocHoldsBytes, jemallocState } from "./jemalloc";
import { mimallocState } from "./mimalloc";
import { tcmallocState } from "./tcmalloc";
import { bytes } from "./values";

export interface AllocatorsResult {
  heap?: AllocatorState | undefined;
  allocators: AllocatorState[];
}

const ENOENT = 2;

/**
 * Whether an instance that does not serve malloc is reported: the "linked but unused" collapse
 * drops only one that holds no application bytes and no resident memory beyond its own bootstrap
 * (freed pages it keeps resident count). Reading a jemalloc that was only linked wakes it up and
 * gives the reading thread a tcache, so "0 bytes" is not the test; see jemallocHoldsBytes.
 * glibc's counters, when libc does not serve malloc, describe an empty arena nobody uses: never
 * reported.
 */
function reportedAside(inst: NativeReadInstance, warnings: Warning[]): boolean {
  switch (inst.allocator) {
    case "glibc":
      return false;
    case "jemalloc": {
      const holds = jemallocHoldsBytes(inst);
      if (holds === undefined) {
        warnings.push({
          source: "jemalloc",
          code: "JEMALLOC_UNUSED_UNKNOWN",
          message: `the jemalloc in ${inst.library} does not serve malloc and has no stats: whether it holds memory cannot be told; it is listed without byte counts`,
        });
        return true;
      }
      return holds;
    }
    case "tcmalloc": {
      // Application bytes, or free pages and cached objects it keeps resident.
      const v = inst.values;
      const held =
        (bytes(v, "generic.current_allocated_bytes") ?? 1) +
        (bytes(v, "tcmalloc.pageheap_free_bytes") ?? 0) +
        (bytes(v, "tcmalloc.central_cache_free_bytes") ?? 0) +
        (bytes(v, "tcmalloc.thread_cache_free_bytes") ?? 0);
      return held > 0;
    }
    case "mimalloc":
      return (bytes(inst.values, "current_commit") ?? 1) > 0;
  }
}

function toState(inst: NativeReadInstance, warnings: Warning[]): AllocatorState {
  switch (inst.allocator) {
    case "glibc":
      return glibcState(inst, warnings);
    case "jemalloc":
      if (inst.errors["stats.allocated"] === ENOENT) {
        warnings.push({
          source: "jemalloc",
          code: "JEMALLOC_STATS_DISABLED",
          message: `the jemalloc in ${inst.library} was built without stats (config.stats off): byte counters are absent, page counts are still read`,
        });
      }
      return jemallocState(inst);
    case "tcmalloc":
      return tcmallocState(inst);
    case "mimalloc":
      return mimallocState(inst, warnings);
  }
}

/**
 * @param glibcReused glibc's state from an earlier reading, used when this reading skipped the
 *   glibc walk (see the back-off in snapshot.ts).
 */
export function allocatorsFromReading(
  reading: NativeReading,
  warnings: Warning[],
  glibcReused?: AllocatorState,
): AllocatorsResult {
  const allocators: AllocatorState[] = [];
  let heap: AllocatorState | undefined;
  for (const inst of reading.instances) {
    if (!inst.servesMalloc && !reportedAside(inst, warnings)) continue;
    const state = inst.allocator === "glibc" && glibcReused ? glibcReused : toState(inst, warnings);
    if (inst.servesMalloc && heap === undefined) heap = state;
    else allocators.push(state);
  }
  if (heap) allocators.unshift(heap);
  else if (reading.mallocOwner === undefined) {
    warnings.push({
      source: "heap",
      code: "MALLOC_OWNER_UNKNOWN",
      message: "no loaded object could be shown to define malloc; allocator state is not reported",
    });
  } else {
    warnings.push({
      source: "heap",
      code: "ALLOCATOR_UNSUPPORTED",
      message: `malloc is served by ${reading.mallocOwner}, which heapstate cannot read (it knows glibc, jemalloc, gperftools tcmalloc and mimalloc)`,
    });
  }
  return { heap, allocators };
}
