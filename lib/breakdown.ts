/**
 * Reconciliation: RSS split into parts that add up to it exactly, and a signed remainder that
 * nobody accounts for (as Firefox's heap-unclassified). Each part says where its figure comes from
 * and whether it is derived. Nothing is counted twice: ArrayBuffer backing stores and V8's own
 * malloc'd memory are inside the allocator's figures, so they appear only there.
 */
import type { AllocatorState, Breakdown, BreakdownPart, ProcessState, RegionSummary, V8State } from "./types";

export interface BreakdownInput {
  heap?: AllocatorState;
  v8?: V8State;
  process?: ProcessState;
  /** smaps_rollup (or summed smaps) Rss: the exact total, when read. */
  exactRssBytes?: number;
  regions?: RegionSummary[];
}

function regionRss(regions: RegionSummary[] | undefined, ...categories: string[]): number | undefined {
  if (!regions) return undefined;
  let sum = 0;
  for (const r of regions) if (categories.includes(r.category)) sum += r.rssBytes ?? 0;
  return sum;
}

/**
 * glibc's free-but-resident memory. mallinfo2 cannot tell trimmed free memory from resident free
 * memory; only the kernel can. Deep tier: Rss of the arena mappings − in-use chunks. Otherwise:
 * anonymous RSS − V8's heap − malloc in use, which also catches other anonymous memory, so it is
 * an upper bound. Both are clamped to [0, fordblks] and marked estimated.
 */
export function glibcFreeResident(input: BreakdownInput): BreakdownPart | undefined {
  const heap = input.heap;
  if (heap?.allocator !== "glibc") return undefined;
  const fordblks = heap.pages?.freeBytes;
  const uordblks = heap.raw?.uordblks;
  if (fordblks === undefined || typeof uordblks !== "number") return undefined;
  const clamp = (n: number) => Math.max(0, Math.min(fordblks, n));
  const arenaRss = regionRss(input.regions, "malloc-main-arena", "malloc-arena");
  if (arenaRss !== undefined) {
    return {
      name: "native-free",
      bytes: clamp(arenaRss - uordblks),
      source: "smaps Rss of [heap] and arena heaps − mallinfo2 uordblks, within fordblks",
      estimated: true,
    };
  }
  const anon = input.process?.rssAnonBytes;
  const v8 = input.v8?.physicalBytes;
  if (anon === undefined || v8 === undefined || heap.allocatedBytes === undefined) return undefined;
  return {
    name: "native-free",
    bytes: clamp(anon - v8 - heap.allocatedBytes),
    source: "status RssAnon − V8 physical − mallinfo2 in use, within fordblks (an upper bound)",
    estimated: true,
  };
}

function nativeParts(input: BreakdownInput): BreakdownPart[] {
  const heap = input.heap;
  if (!heap) return [];
  const parts: BreakdownPart[] = [];
  const add = (name: string, bytes: number | undefined, source: string, estimated = false) => {
    if (bytes !== undefined) parts.push({ name, bytes, source, ...(estimated ? { estimated } : {}) });
  };
  switch (heap.allocator) {
    case "jemalloc":
      // active ⊇ allocated (the gap is fragmentation inside pages); dirty pages are free and resident;
      // muzzy pages are counted by the kernel's LazyFree below.
      add("native-in-use", heap.activeBytes, "jemalloc stats.active");
      add("native-free", heap.pages?.dirtyBytes, "jemalloc pdirty × page (all arenas)");
      add("native-metadata", heap.metadataBytes, "jemalloc stats.metadata");
      break;
    case "glibc": {
      add("native-in-use", heap.allocatedBytes, "glibc mallinfo2 uordblks + hblkhd");
      const free = glibcFreeResident(input);
      if (free) parts.push(free);
      break;
    }
    case "tcmalloc": {
      add("native-in-use", heap.allocatedBytes, "tcmalloc generic.current_allocated_bytes");
      const dirty = heap.pages?.dirtyBytes;
      const cached = heap.pages?.cachedBytes;
      add(
        "native-free",
        dirty === undefined || cached === undefined ? undefined : dirty + cached,
        "tcmalloc pageheap_free_bytes + central, transfer and thread cache free bytes",
      );
      const { residentBytes, mappedBytes } = heap;
      const released = heap.pages?.releasedBytes;
      if (residentBytes !== undefined && mappedBytes !== undefined && released !== undefined) {
        const meta = residentBytes - (mappedBytes - released);
        if (meta >= 0) {
          add("native-metadata", meta, "tcmalloc total_physical_bytes − (heap_size − pageheap_unmapped_bytes)", true);
        }
      }
      break;
    }
    case "mimalloc":
      // mimalloc 2.0 gives no in-use figure. What it has committed is the closest it says: live
      // blocks plus free committed pages, of which untouched ones are not resident.
      add(
        "native-committed",
        heap.committedBytes,
        "mimalloc current_commit (in use + free committed; no in-use figure in 2.0)",
        true,
      );
      break;
  }
  return parts;
}

export function buildBreakdown(input: BreakdownInput): Breakdown | undefined {
  const exact = input.exactRssBytes;
  const rss = exact ?? input.process?.rssBytes;
  if (rss === undefined) return undefined;
  const parts: BreakdownPart[] = [];
  const add = (name: string, bytes: number | undefined, source: string) => {
    if (bytes !== undefined) parts.push({ name, bytes, source });
  };
  add("v8-heap", input.v8?.physicalBytes, "v8.getHeapStatistics() total_physical_size (this isolate)");
  parts.push(...nativeParts(input));
  add("lazy-free", input.process?.lazyFreeBytes, "smaps_rollup LazyFree (MADV_FREE'd, reclaimable)");
  if (input.regions) {
    add("stacks", regionRss(input.regions, "stack", "thread-stack"), "smaps Rss of [stack] and thread stacks");
    add("code", regionRss(input.regions, "code"), "smaps Rss of the program's and libraries' mappings");
    add("file", regionRss(input.regions, "file"), "smaps Rss of other file mappings");
    add("shmem", regionRss(input.regions, "shmem"), "smaps Rss of shared memory");
  } else {
    add("file", input.process?.rssFileBytes, "status RssFile (code and other file mappings)");
    add("shmem", input.process?.rssShmemBytes, "status RssShmem");
  }
  const attributed = parts.reduce((sum, p) => sum + p.bytes, 0);
  const breakdown: Breakdown = {
    rssBytes: rss,
    rssSource: exact !== undefined ? "smaps_rollup" : "status",
    parts,
    unattributedBytes: rss - attributed,
  };
  const heap = input.heap;
  if (heap && (heap.allocatedBytes !== undefined || heap.residentBytes !== undefined)) {
    const { allocatedBytes, activeBytes, residentBytes } = heap;
    const ratio = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 1000) / 1000;
    const chain: NonNullable<Breakdown["chain"]> = { rssBytes: rss };
    if (allocatedBytes !== undefined) chain.allocatedBytes = allocatedBytes;
    if (activeBytes !== undefined) chain.activeBytes = activeBytes;
    if (residentBytes !== undefined) chain.residentBytes = residentBytes;
    const activeRatio = ratio(activeBytes, allocatedBytes);
    const residentRatio = ratio(residentBytes, activeBytes ?? allocatedBytes);
    const fragmentationRatio = ratio(rss, allocatedBytes);
    if (activeRatio !== undefined) chain.activeRatio = activeRatio;
    if (residentRatio !== undefined) chain.residentRatio = residentRatio;
    if (fragmentationRatio !== undefined) chain.fragmentationRatio = fragmentationRatio;
    breakdown.chain = chain;
  }
  return breakdown;
}
