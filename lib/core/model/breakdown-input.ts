/** What a breakdown is built from, and the sums over smaps regions that several of its parts use. */
import type { AllocatorState, Claim, ProcessState, RegionSummary, V8State, Warning } from "./types";

export interface BreakdownInput {
  /** The process read is this one: V8 and the allocators were read in it. */
  self: boolean;
  /** Every allocator instance reported, the one serving malloc first. */
  allocators: AllocatorState[];
  v8?: V8State | undefined;
  /** The reading's one RSS is process.rssBytes (its source in process.rssSource). */
  process?: ProcessState | undefined;
  regions?: RegionSummary[] | undefined;
  /** What memory reporters claimed in this reading (this process only). */
  claims?: Claim[] | undefined;
  /** Where a problem found while splitting a part goes (children that exceed their part). */
  warnings?: Warning[] | undefined;
}

export function regionRss(regions: RegionSummary[] | undefined, ...categories: string[]): number | undefined {
  if (!regions) return undefined;
  let sum = 0;
  for (const r of regions) if (categories.includes(r.category)) sum += r.rssBytes ?? 0;
  return sum;
}

/** Σ Size of the regions of these categories (undefined without regions). */
export function regionSize(regions: RegionSummary[] | undefined, ...categories: string[]): number | undefined {
  if (!regions) return undefined;
  let sum = 0;
  for (const r of regions) if (categories.includes(r.category)) sum += r.sizeBytes;
  return sum;
}

/** Σ Rss of glibc's arena mappings (`[heap]` and the 64 MiB heaps), from smaps. */
export function arenaRss(regions: RegionSummary[] | undefined): number | undefined {
  return regionRss(regions, "malloc-main-arena", "malloc-arena");
}
