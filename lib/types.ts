/**
 * The snapshot's shape: schema "heapstate/1" (see SCHEMA.md in the design notes). A key that was
 * not measured is absent, never 0 or null. Byte counts are in bytes and their keys end in `Bytes`.
 */

/** Allocators heapstate can read. */
export type AllocatorName = "glibc" | "jemalloc" | "tcmalloc" | "mimalloc";

/** What was read: `fast` for hot paths, `standard` (default), `deep` for a full picture. */
export type Tier = "fast" | "standard" | "deep";

/** A scalar an allocator reported, under its own name. */
export type RawValue = string | number | boolean;

/**
 * Page states, in the vocabulary of the design notes:
 * - `activeBytes`: pages holding live allocations (jemalloc `pactive`).
 * - `dirtyBytes`: free pages still resident, reusable at once (jemalloc `pdirty`, tcmalloc `pageheap_free_bytes`).
 * - `muzzyBytes`: given back with MADV_FREE; resident until the kernel needs them (jemalloc `pmuzzy`).
 * - `retainedBytes`: given back with MADV_DONTNEED, virtual only (jemalloc `stats.retained`).
 * - `releasedBytes`: unmapped or decommitted, not resident (tcmalloc `pageheap_unmapped_bytes`).
 * - `freeBytes`: free, resident or already trimmed; the allocator cannot tell which (glibc `fordblks`).
 * - `topReleasableBytes`: the main arena's top chunk, what trimming the top would return (glibc `keepcost`).
 * - `cachedBytes`: free objects held in caches (tcmalloc central + transfer + thread caches).
 */
export interface PageStates {
  activeBytes?: number;
  dirtyBytes?: number;
  muzzyBytes?: number;
  retainedBytes?: number;
  releasedBytes?: number;
  freeBytes?: number;
  topReleasableBytes?: number;
  cachedBytes?: number;
}

/** One allocator instance in the process: its library, and what it holds. */
export interface AllocatorState {
  allocator: AllocatorName;
  /** The shared object the allocator lives in. */
  library: string;
  /** True for the one that answers the process's `malloc`. */
  servesMalloc: boolean;
  version?: string;
  allocatedBytes?: number;
  activeBytes?: number;
  residentBytes?: number;
  mappedBytes?: number;
  metadataBytes?: number;
  retainedBytes?: number;
  /** Memory the allocator has committed (mimalloc's own statistic). */
  committedBytes?: number;
  arenas?: number;
  pages?: PageStates;
  /** Tunables in force, as the allocator reports them. */
  config?: Record<string, RawValue>;
  /** The allocator's own counters under their own names. */
  raw?: Record<string, unknown>;
}

/** A source that could not be read, and why. */
export interface Warning {
  source: string;
  code: string;
  message: string;
}

/** Process figures from the kernel (`/proc/<pid>/status`). */
export interface ProcessState {
  rssBytes?: number;
  rssAnonBytes?: number;
  rssFileBytes?: number;
  rssShmemBytes?: number;
  peakRssBytes?: number;
  vmSizeBytes?: number;
  swapBytes?: number;
  pssBytes?: number;
  privateDirtyBytes?: number;
  lazyFreeBytes?: number;
  anonHugePagesBytes?: number;
}

/** One reading of a process. */
export interface Snapshot {
  schema: "heapstate/1";
  /** ISO-8601 UTC time of the reading. */
  time: string;
  pid: number;
  tier: Tier;
  /** How long collecting this snapshot took, in microseconds. */
  costMicros: number;
  /** The allocator that serves this process's malloc; absent when unknown, with a warning. */
  heap?: AllocatorState;
  /** Every allocator instance that serves allocations, heap first. */
  allocators: AllocatorState[];
  process?: ProcessState;
  warnings: Warning[];
}

/** Options of {@link collect}. */
export interface CollectOptions {
  tier?: Tier;
  /** Another process: read from procfs only (no allocator state). */
  pid?: number;
}

/** One release action an allocator ran during {@link trim}. */
export interface TrimAction {
  allocator: AllocatorName;
  library: string;
  action: string;
  result: RawValue;
}

/** What {@link trim} did: snapshots around it and the RSS it gave back. */
export interface TrimResult {
  before: Snapshot;
  after: Snapshot;
  /** `before.process.rssBytes − after.process.rssBytes` (negative if RSS grew meanwhile); absent if RSS was not measured. */
  releasedBytes?: number;
  actions: TrimAction[];
}
