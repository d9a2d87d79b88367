/**
 * gperftools tcmalloc: MallocExtension numeric properties → AllocatorState. Sources:
 * allocated ← `generic.current_allocated_bytes`; mapped ← `generic.heap_size` (the page heap);
 * resident ← `heap_size − pageheap_unmapped_bytes` (the page heap's resident pages, so that
 * resident ≤ mapped holds: both describe the page heap); metadata ←
 * `generic.total_physical_bytes − (heap_size − pageheap_unmapped_bytes)` (total_physical counts
 * tcmalloc's own metadata, which heap_size does not);
 * pages.dirtyBytes ← `tcmalloc.pageheap_free_bytes` (free, still mapped and resident);
 * pages.releasedBytes ← `tcmalloc.pageheap_unmapped_bytes` (MADV_DONTNEED'd);
 * pages.cachedBytes ← central + transfer + thread cache free bytes.
 */

import type { NativeReadInstance } from "../addon/native";
import type { AllocatorState } from "../model/types";
import { bytes, defined, str, sum, unmapped } from "./values";

function difference(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || a < b ? undefined : a - b;
}

export function tcmallocState(inst: NativeReadInstance): AllocatorState {
  const v = inst.values;
  const version = str(v, "tc_version");
  const aggressive = bytes(v, "tcmalloc.aggressive_memory_decommit");
  const resident = difference(bytes(v, "generic.heap_size"), bytes(v, "tcmalloc.pageheap_unmapped_bytes"));
  return {
    allocator: "tcmalloc",
    library: inst.library,
    servesMalloc: inst.servesMalloc,
    ...defined({
      version: version?.replace(/^gperftools\s+/, ""),
      allocatedBytes: bytes(v, "generic.current_allocated_bytes"),
      mappedBytes: bytes(v, "generic.heap_size"),
      residentBytes: resident,
      metadataBytes: difference(bytes(v, "generic.total_physical_bytes"), resident),
      pages: defined({
        dirtyBytes: bytes(v, "tcmalloc.pageheap_free_bytes"),
        releasedBytes: bytes(v, "tcmalloc.pageheap_unmapped_bytes"),
        cachedBytes: sum(
          bytes(v, "tcmalloc.central_cache_free_bytes"),
          bytes(v, "tcmalloc.transfer_cache_free_bytes"),
          bytes(v, "tcmalloc.thread_cache_free_bytes"),
        ),
      }),
      config: defined({
        maxTotalThreadCacheBytes: bytes(v, "tcmalloc.max_total_thread_cache_bytes"),
        aggressiveMemoryDecommit: aggressive === undefined ? undefined : aggressive !== 0,
        heapLimitMb: bytes(v, "tcmalloc.heap_limit_mb"),
      }),
    }),
    raw: unmapped(v, [
      "tc_version",
      "generic.current_allocated_bytes",
      "generic.heap_size",
      "tcmalloc.pageheap_free_bytes",
      "tcmalloc.pageheap_unmapped_bytes",
      "tcmalloc.max_total_thread_cache_bytes",
      "tcmalloc.aggressive_memory_decommit",
      "tcmalloc.heap_limit_mb",
    ]),
  };
}
