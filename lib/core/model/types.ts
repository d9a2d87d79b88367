/**
 * The snapshot's shape: schema "heapstate/3" (docs/schema.md). A key that was not measured is
 * absent, never 0, null or undefined (the compiler holds this: exactOptionalPropertyTypes). Byte
 * counts are in bytes and their keys end in `Bytes`. The closed sets are the `const` arrays below,
 * and the types are built from them, so a new name is added in one place.
 */

import type { FindingEvidence } from "./evidence";

/** The schema written now. */
export const SCHEMA = "heapstate/3";

/** Allocators heapstate can read. */
export const ALLOCATOR_NAMES = ["glibc", "jemalloc", "tcmalloc", "mimalloc"] as const;
export type AllocatorName = (typeof ALLOCATOR_NAMES)[number];

/** The tiers, cheapest first. */
export const TIERS = ["fast", "standard", "deep"] as const;

/** What was read: `fast` for hot paths, `standard` (default), `deep` for a full picture. */
export type Tier = (typeof TIERS)[number];

/**
 * The breakdown's part names. `native-*` belong to the allocator that serves malloc, `other-*` to
 * another instance that holds memory (the part's `allocator` and `library` say which).
 */
export const PART_NAMES = [
  "v8-heap",
  "native-in-use",
  "native-free",
  "native-free-releasable",
  "native-free-fragmented",
  "native-metadata",
  "native-committed",
  "other-in-use",
  "other-free",
  "other-free-releasable",
  "other-free-fragmented",
  "other-metadata",
  "other-committed",
  "reported",
  "lazy-free",
  "anon-mappings",
  "malloc-arenas",
  "stacks",
  "code",
  "file",
  "shmem",
] as const;
export type PartName = (typeof PART_NAMES)[number];

/**
 * The names of parts within a part (`children`): who owns the native heap (V8's own malloc'd
 * memory, ArrayBuffer backing stores, what reporters claim, the allocator's slack inside its
 * pages, and the unclassified rest), and V8's heap by space.
 */
export const CHILD_NAMES = [
  "native-v8",
  "native-array-buffers",
  "native-reported",
  "native-allocator-slack",
  "native-not-resident",
  "native-unclassified",
  "v8-space",
] as const;
export type ChildName = (typeof CHILD_NAMES)[number];

/** Every finding's id (docs/findings.md). */
export const FINDING_IDS = [
  "glibc-releasable-now",
  "glibc-main-arena-fragmentation",
  "glibc-arena-pile-up",
  "glibc-thread-arena-high-water",
  "glibc-retains-freed-memory",
  "glibc-free-fragmented",
  "glibc-may-retain-freed-memory",
  "jemalloc-dirty-pages-kept",
  "jemalloc-partly-used-slabs",
  "tcmalloc-free-pages-kept",
  "mimalloc-free-pages-kept",
  "preload-not-serving-malloc",
  "v8-limit-above-cgroup-limit",
  "near-cgroup-limit",
  "cgroup-oom-kills",
  "external-above-rss",
  "lazy-free-in-rss",
  "swap-in-use",
  "high-unattributed",
  "native-unclassified-growing",
  "baseline-budget-exceeded",
] as const;
export type FindingId = (typeof FINDING_IDS)[number];

/** Every warning's code (docs/schema.md, Warnings). */
export const WARNING_CODES = [
  "NATIVE_DISABLED",
  "NATIVE_NOT_LOADED",
  "NATIVE_WRONG_SHAPE",
  "NATIVE_UNSUPPORTED_PLATFORM",
  "NATIVE_UNSUPPORTED_LIBC",
  "NATIVE_READ_FAILED",
  "NATIVE_SITES_UNAVAILABLE",
  "NATIVE_TRIM_FAILED",
  "MALLOC_OWNER_UNKNOWN",
  "ALLOCATOR_UNSUPPORTED",
  "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE",
  "JEMALLOC_STATS_DISABLED",
  "JEMALLOC_UNUSED_UNKNOWN",
  "MIMALLOC_COUNTER_INVALID",
  "MIMALLOC_WALK_INCOMPLETE",
  "GLIBC_MALLINFO_32BIT",
  "GLIBC_NO_MALLINFO",
  "GLIBC_WALK_HELD",
  "GLIBC_ARENA_OUTSIDE_HEAP",
  "MALLOC_INFO_UNPARSED",
  "PROCFS_UNREADABLE",
  "RESOURCE_EXHAUSTED",
  "SOURCE_FAILED",
  "CGROUP_UNREADABLE",
  "CGROUP_NOT_FOUND",
  "INVALID_FIELD",
  "NEWER_SCHEMA",
  "UPGRADED_SCHEMA",
  "REPORTER_FAILED",
  "REPORTER_SLOW",
  "REPORTER_INVALID",
  "REPORTER_SKIPPED",
  "CHILDREN_EXCEED_PART",
  "GLIBC_WALK_INCOMPLETE",
  "AGENT_NOT_USED",
] as const;
export type WarningCode = (typeof WARNING_CODES)[number];

/** What a warning is about: a source of the reading, or one memory reporter (`reporter NAME`). */
export const WARNING_SOURCES = [
  "native",
  "heap",
  "allocators",
  "glibc",
  "jemalloc",
  "tcmalloc",
  "mimalloc",
  "v8",
  "status",
  "smaps_rollup",
  "smaps",
  "procfs",
  "cgroup",
  "cpu",
  "breakdown",
  "reporters",
  "peak",
  "agent",
  "parseSnapshot",
] as const;
export type WarningSource = (typeof WARNING_SOURCES)[number] | `reporter ${string}`;

/**
 * Region categories of smaps (deep tier; lib/core/read/regions.ts says how each is told), and
 * `anon:NAME` for regions named with PR_SET_VMA_ANON_NAME.
 */
export const REGION_CATEGORIES = [
  "malloc-main-arena",
  "malloc-arena",
  "thread-stack",
  "stack",
  "code",
  "shmem",
  "file",
  "anon",
] as const;
export type RegionCategory = (typeof REGION_CATEGORIES)[number] | `anon:${string}`;

/** The release actions trim() runs, by allocator. */
export const TRIM_ACTIONS = [
  "malloc_trim",
  "thread.tcache.flush",
  "arena.4096.purge",
  "MallocExtension_ReleaseFreeMemory",
  "mi_collect",
] as const;
export type TrimActionName = (typeof TRIM_ACTIONS)[number];

/** A scalar an allocator reported, under its own name. */
export type RawValue = string | number | boolean;

/**
 * Page states, in the vocabulary of the design notes (jemalloc's active and retained pages are the
 * allocator's `activeBytes` and `retainedBytes`, stored once there):
 * - `dirtyBytes`: free pages still resident, reusable at once (jemalloc `pdirty`, tcmalloc
 *   `pageheap_free_bytes`; glibc: the Rss of its arena mappings − in-use chunks, measured from the
 *   kernel's smaps, within `fordblks`).
 * - `releasableBytes`: of the dirty bytes, those a trim returns (glibc: resident whole pages inside
 *   free chunks and the main arena's top, estimated from malloc_info's free-chunk sizes and the
 *   arenas' resident pages). The rest of the dirty bytes are fragmented: free pieces smaller than a
 *   page, which only a different allocator or fewer arenas can recover.
 * - `muzzyBytes`: given back with MADV_FREE; resident until the kernel needs them (jemalloc `pmuzzy`).
 * - `releasedBytes`: unmapped or decommitted, not resident (tcmalloc `pageheap_unmapped_bytes`;
 *   glibc: `fordblks` − dirty, the free memory already trimmed).
 * - `freeBytes`: free, resident or already trimmed; the allocator cannot tell which (glibc `fordblks`).
 * - `topReleasableBytes`: the main arena's top chunk, what trimming the top would return (glibc `keepcost`).
 * - `cachedBytes`: free objects held in caches (tcmalloc central + transfer + thread caches).
 * - `inUseAbsentBytes`: in-use bytes on pages that are not resident (blocks malloc'd and never
 *   written). glibc, where its chunks were walked: dirty and releasable bytes are then measured page
 *   by page (the walk's free chunks on resident pages), not Rss − in use.
 */
export interface PageStates {
  dirtyBytes?: number;
  releasableBytes?: number;
  muzzyBytes?: number;
  releasedBytes?: number;
  freeBytes?: number;
  topReleasableBytes?: number;
  cachedBytes?: number;
  inUseAbsentBytes?: number;
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
  /** jemalloc: bytes in pages holding live allocations (stats.active). */
  activeBytes?: number;
  residentBytes?: number;
  mappedBytes?: number;
  metadataBytes?: number;
  /** jemalloc: pages given back with MADV_DONTNEED, virtual only (stats.retained). */
  retainedBytes?: number;
  /** Memory the allocator has committed (mimalloc's own statistic). */
  committedBytes?: number;
  arenas?: number;
  pages?: PageStates;
  /**
   * glibc: its arenas in two groups, the main arena (`[heap]`, the main thread's) and the arenas
   * of other threads, from malloc_info with their mappings' resident pages (smaps). Read where
   * glibc's free memory is measured (the deep tier, and the standard tier when it is confirmed).
   */
  arenaGroups?: { main: ArenaGroup; threads: ArenaGroup };
  /** glibc: how many arenas it may create, and why (MALLOC_ARENA_MAX, the tunable, or 8 × online CPUs). */
  arenaLimit?: { arenas: number; source: string };
  /** Tunables in force, as the allocator reports them. */
  config?: Record<string, RawValue>;
  /** The allocator's own counters under their own names. */
  raw?: Record<string, unknown>;
  /**
   * Set when these figures are older than the snapshot: glibc's walk of its free lists is repeated
   * at most as often as its own cost allows (see collect()), in between its last reading is kept.
   */
  asOf?: string;
}

/** A group of glibc arenas: what they hold from the OS, in use, and free (resident or not). */
export interface ArenaGroup {
  arenas: number;
  /** malloc_info `<system type="current">`: bytes the arenas hold from the OS. */
  systemBytes: number;
  /** malloc_info `<system type="max">`: the most they ever held (their high-water). */
  peakSystemBytes: number;
  /** systemBytes − free chunks: what the program holds in them. */
  inUseBytes: number;
  /** Free chunks (fastbins, bins and the top), resident or not. */
  freeBytes: number;
  /** smaps Rss of the group's mappings (`[heap]`; the 64 MiB arena heaps). */
  residentBytes: number;
  /** Free and resident: residentBytes − inUseBytes, within freeBytes. */
  freeResidentBytes: number;
  /** Of those, whole pages inside free chunks: what malloc_trim returns (estimated from the chunks' sizes). */
  releasableBytes: number;
  /**
   * The rest: free pieces smaller than a page, which no trim returns, and (other threads' arenas)
   * what of their top chunks is resident: malloc_trim does not shrink those tops.
   */
  fragmentedBytes: number;
  /**
   * The free top chunks at the ends of the arenas' heaps (malloc_info's `rest` less its bins),
   * resident or not. The main arena's is within releasableBytes (trim shrinks the break).
   */
  topBytes?: number;
  /**
   * "chunk-walk": freeResidentBytes and releasableBytes were measured page by page from a walk of
   * the group's chunks (/proc/self/mem) and their pages' residency (/proc/self/pagemap); absent:
   * estimated as residentBytes − inUseBytes, which assumes every in-use byte is resident.
   */
  measuredBy?: "chunk-walk";
  /** With a walk: in-use bytes on pages that are not resident. */
  inUseAbsentBytes?: number;
  /** With a walk: resident pages holding a byte of an in-use chunk (no allocator can give those back). */
  livePages?: number;
  /** With a walk, other threads' arenas: the resident bytes of their top chunks (within fragmentedBytes; malloc_trim leaves them). */
  topResidentBytes?: number;
}

/** The CPUs the process may use: what glibc sizes its arenas by, and what the cgroup allows. */
export interface CpuState {
  /** /sys/devices/system/cpu/online: the CPUs glibc counts for its arena limit. */
  onlineCpus?: number;
  /** The cgroup's CPU quota in CPUs (cpu.max, v1 cpu.cfs_quota_us ÷ cpu.cfs_period_us); absent when unlimited. */
  quotaCpus?: number;
}

/** A source that could not be read, and why. */
export interface Warning {
  source: WarningSource;
  code: WarningCode;
  message: string;
}

/** Process figures from the kernel (`/proc/<pid>/status`, and smaps_rollup from the standard tier). */
export interface ProcessState {
  /** The reading's one RSS: smaps_rollup's exact Rss when it was read (standard, deep), else status VmRSS. */
  rssBytes?: number;
  /** Where rssBytes comes from. */
  rssSource?: "smaps_rollup" | "status";
  /** status VmRSS, kept beside an exact rssBytes: the kernel's cached counter, off by a few pages. */
  statusRssBytes?: number;
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
  /** status Threads. */
  threads?: number;
  /** Threads by name (/proc/<pid>/task/<tid>/comm), where a reading looked (deep, and glibc's measured free memory). */
  threadNames?: Record<string, number>;
}

/** The process's memory cgroup (v1 or v2 files). */
export interface CgroupState {
  version: 1 | 2;
  /** The cgroup's path as /proc/<pid>/cgroup shows it. */
  path: string;
  usageBytes: number;
  limitBytes?: number;
  highBytes?: number;
  peakBytes?: number;
  anonBytes?: number;
  fileBytes?: number;
  kernelBytes?: number;
  shmemBytes?: number;
  oomEvents?: number;
  oomKillEvents?: number;
}

/** V8's view (per isolate: the thread that collected). */
export interface V8State {
  heapTotalBytes?: number;
  heapUsedBytes?: number;
  /** Memory held outside the V8 heap by JS objects (Buffers' backing stores), as V8 counts it. */
  externalBytes?: number;
  /** ArrayBuffer backing stores (inside malloc, so inside the allocator's figures). */
  arrayBuffersBytes?: number;
  /** Committed and resident V8 heap pages. */
  physicalBytes?: number;
  heapLimitBytes?: number;
  /** V8's own malloc'd memory (zones, string table): inside the allocator's figures. */
  mallocedBytes?: number;
  spaces?: Array<{ name: string; sizeBytes: number; usedBytes: number; availableBytes: number; physicalBytes: number }>;
}

/** One smaps category (deep tier). */
export interface RegionSummary {
  category: RegionCategory;
  count: number;
  sizeBytes: number;
  rssBytes?: number;
  pssBytes?: number;
  privateDirtyBytes?: number;
  lazyFreeBytes?: number;
  swapBytes?: number;
  /** Only with `includeAddresses`: they defeat ASLR. */
  mappings?: Array<{ start: string; end: string; perms: string; path?: string; sizeBytes: number; rssBytes?: number }>;
}

/** One part of RSS. */
export interface BreakdownPart {
  name: PartName;
  bytes: number;
  /** Where the figure comes from. */
  source: string;
  /** True when the figure is derived rather than read (the source says from what). */
  estimated?: boolean;
  /** The allocator instance the part belongs to (native and other-allocator parts). */
  allocator?: AllocatorName;
  /** That instance's library (a file name when redacted). */
  library?: string;
  /** Set when the figure is an earlier moment's (a reused glibc reading): when it was read. */
  asOf?: string;
  /** The reporter's name, for a `reported` part (memory a reporter holds outside malloc). */
  label?: string;
  /**
   * What the part holds, by owner, adding up to `bytes` exactly: the native heap's in-use part (V8's
   * own malloc'd memory, ArrayBuffers, reporters' claims, the unclassified rest) and V8's heap by space.
   */
  children?: BreakdownChild[];
}

/** A part within a part: the children of a part add up to it exactly. */
export interface BreakdownChild {
  name: ChildName;
  bytes: number;
  source: string;
  /** The reporter's name (`native-reported`) or V8's space (`v8-space`). */
  label?: string;
  estimated?: boolean;
}

/** A figure that is inside the unattributed remainder but could only be bounded, not measured. */
export interface BreakdownBound {
  name: PartName;
  /** At most this much of the remainder is this part. */
  atMostBytes: number;
  source: string;
  /** How to measure it instead, or why no tier can in this process. */
  confirm: string;
}

/**
 * The reading's RSS (`process.rssBytes`, from `process.rssSource`) split into parts that add up to
 * it exactly, with a signed remainder. The RSS is stored once, in `process`.
 */
export interface Breakdown {
  parts: BreakdownPart[];
  /** process.rssBytes − Σ parts: what nobody accounts for (negative: parts counted memory that is not resident). */
  unattributedBytes: number;
  /** Upper bounds on what the remainder may hold (glibc's free memory when it was not measured). */
  bounds?: BreakdownBound[];
  /**
   * The ratios along allocated → active → resident → RSS (the figures themselves are the serving
   * allocator's and process.rssBytes).
   */
  chain?: {
    /** active / allocated: pages held for the live bytes (jemalloc). */
    activeRatio?: number;
    /** resident / active (or / allocated): the allocator's own overhead and free pages. */
    residentRatio?: number;
    /** RSS / allocated, as Redis's mem_fragmentation_ratio. */
    fragmentationRatio?: number;
  };
}

/** A verdict: one sentence and the numbers behind it. */
export type Finding = { [K in FindingId]: FindingOf<K> }[FindingId];

/** One finding of a given id, its evidence typed for that id (model/evidence.ts). */
export interface FindingOf<K extends FindingId> {
  id: K;
  severity: "info" | "warn";
  message: string;
  evidence: FindingEvidence[K];
}

/** One reading of a process. */
export interface Snapshot {
  schema: typeof SCHEMA;
  /** ISO-8601 UTC time of the reading. */
  time: string;
  pid: number;
  tier: Tier;
  /** Who was read: the host's name and, for this process, the Node version (diff says when they differ). */
  identity?: { hostname?: string; node?: string };
  /** How long collecting this snapshot took, in microseconds. */
  costMicros: number;
  /**
   * The allocator that serves this process's malloc: a view of the `allocators` entry with
   * `servesMalloc` (not serialised; JSON holds it once, in `allocators`). Absent when unknown, with
   * a warning.
   */
  readonly heap?: AllocatorState;
  /** Every allocator instance that holds memory, the one serving malloc (`servesMalloc`) first. */
  allocators: AllocatorState[];
  v8?: V8State;
  process?: ProcessState;
  cgroup?: CgroupState;
  /** The CPUs (standard and deep tiers). */
  cpu?: CpuState;
  /** What a running auto-trim (startAutoTrim) has done so far. */
  autoTrim?: AutoTrimState;
  /**
   * The peak RSS since this consumer's previous reading (a sampler, a metrics registry, a
   * sidecar), or since the last reset of VmHWM before it, or since the process started: `since` says.
   */
  peak?: { rssBytes: number; since: string; source: string };
  regions?: RegionSummary[];
  /** The native heap by allocation site (deep tier, `nativeSites`), from the allocator's own sampled profile. */
  nativeSites?: NativeSites;
  breakdown?: Breakdown;
  findings?: Finding[];
  /** What each source cost to read, in microseconds. */
  sourceCostMicros?: Record<string, number>;
  warnings: Warning[];
}

/** Options of {@link collect}. */
export interface CollectOptions {
  /** fast: status, cgroup values, allocator counters, V8 heap statistics. standard (default): +
   * smaps_rollup, process.memoryUsage(), V8 spaces, memory.stat. deep: + smaps regions, malloc_info. */
  tier?: Tier;
  /** Another process: read from procfs only (no allocator state). */
  pid?: number;
  /** Region mappings with addresses and file paths (deep tier). Off by default: they defeat ASLR. */
  includeAddresses?: boolean;
  /** Where procfs is mounted (default "/proc"); for tests and unusual containers. */
  procRoot?: string;
  /** Prefix for the cgroup mount points read from mountinfo (default "/"); for tests. */
  fsRoot?: string;
  /**
   * Deep tier, this process: the native heap's top allocation sites from the allocator's own
   * sampled heap profile (jemalloc with `prof:true`), as `nativeSites`. `true` gives 10 sites.
   */
  nativeSites?: boolean | { top?: number };
}

/** One allocation site of the native heap, from the allocator's sampled heap profile. */
export interface NativeSite {
  /** Live bytes allocated there, estimated from the samples (unsampled as jeprof does). */
  bytes: number;
  /** One standard error of that estimate, from the sample count (bytes ÷ √samples). */
  plusMinusBytes: number;
  /** Live blocks, estimated the same way. */
  objects: number;
  /** The samples behind the estimate. */
  samples: number;
  /**
   * Who owns it, by its frames: `native-v8` (V8's own malloc: Malloced, Zone), `native-array-buffers`
   * (the ArrayBuffer allocator), `addon` (the first frame below the allocator is in a library other
   * than node, libc and libstdc++: `library` names it), else `unclassified`.
   */
  owner: "native-v8" | "native-array-buffers" | "addon" | "unclassified";
  library?: string;
  /** The first frames below the allocator, innermost first: the function's name, or its address. */
  frames: Array<{ symbol?: string; address?: string; library?: string }>;
}

/** The native heap by allocation site (collect's `nativeSites`). */
export interface NativeSites {
  /** Where the profile came from. */
  source: "jemalloc prof.dump" | "tcmalloc GetHeapSample" | "heapstate sampler";
  /** The mean sample interval in bytes (2^lg_prof_sample, TCMALLOC_SAMPLE_PARAMETER or HEAPSTATE_SAMPLE_BYTES); 1 when every allocation is sampled. */
  sampleIntervalBytes: number;
  /** Σ of every stack's estimate: the live bytes the profile accounts for. */
  estimatedBytes: number;
  samples: number;
  /** The largest sites, by estimated bytes. */
  sites: NativeSite[];
  /** Whether `sites` lists every site of the profile (a site it lacks had no sample), not only the largest. */
  complete?: boolean;
  /** heapstate's sampler only: samples taken since it loaded that its tables could not keep (their sites are missing). */
  droppedSamples?: number;
  /** heapstate's sampler only: its tables' resident bytes (mincore), what it adds to RSS besides its code. */
  samplerResidentBytes?: number;
  /** Set by sampleNativeSites(): sampling was on only from `since`, for `durationMs` (what the window allocated and still holds). */
  window?: { since: string; durationMs: number };
  /** What the dump, parse and naming cost (µs). */
  costMicros: number;
}

/** A running auto-trim's settings and record (startAutoTrim). */
export interface AutoTrimState {
  /** The interval it started with, and the one in force (longer while trims release little). */
  baseIntervalMs: number;
  intervalMs: number;
  minReleasableBytes: number;
  maxPauseMs: number;
  /** Estimates made (a reading that measures what a trim would release). */
  checks: number;
  trims: number;
  /**
   * Checks that did not trim: too little to release, a pause predicted above maxPauseMs, or no
   * measure of what a trim would release (glibc's free memory not measurable here; mimalloc 2.1 and later).
   */
  skippedBelowFloor: number;
  skippedPause: number;
  skippedUnmeasured: number;
  /** RSS the trims released, in all (smaps_rollup right before and after each). */
  releasedBytes: number;
  /** The longest pause a trim took so far, in ms. */
  maxObservedPauseMs?: number;
  lastTrim?: {
    time: string;
    promisedBytes?: number;
    releasedBytes?: number;
    /** The trim call's wall time, in ms. */
    pauseMs: number;
    /** Its CPU time on the trimming thread, in ms: what the pause model is held to. */
    pauseCpuMs?: number;
    predictedPauseMs: number;
  };
  lastSkip?: {
    time: string;
    reason: "below-floor" | "pause" | "unmeasured";
    releasableBytes?: number;
    predictedPauseMs?: number;
  };
}

/** One release action an allocator ran during {@link trim}. */
export interface TrimAction {
  allocator: AllocatorName;
  library: string;
  action: TrimActionName;
  result: RawValue;
}

/** What {@link trim} did: snapshots around it and the RSS it gave back. */
export interface TrimResult {
  before: Snapshot;
  after: Snapshot;
  /**
   * smaps_rollup's Rss right before the trim − right after it, never negative: 0 when RSS rose
   * across the trim (then `rssGrewBytes` says by how much); from the two readings when the addon is
   * not loaded. Absent if RSS was not measured.
   */
  releasedBytes?: number;
  /**
   * How much RSS rose across the trim, when it did: something allocated while the trim ran (a
   * collection, another thread) more than the trim gave back, often when there was nothing to
   * trim. Absent when RSS fell or stayed.
   */
  rssGrewBytes?: number;
  /**
   * What the trim was expected to release, from the reading just before it: glibc's releasable
   * pages (its free memory measured from the kernel), jemalloc's dirty and muzzy pages, tcmalloc's
   * free page-heap pages. Absent when no allocator it trimmed can say (mimalloc).
   */
  promisedBytes?: number;
  actions: TrimAction[];
}

/** What a reporter's bytes are, and so where the reading counts them. */
export const REPORTER_KINDS = ["malloc", "array-buffers", "mapped"] as const;
export type ReporterKind = (typeof REPORTER_KINDS)[number];

/** One reporter's claim in one reading. */
export interface Claim {
  name: string;
  kind: ReporterKind;
  allocatedBytes: number;
  residentBytes?: number;
  asOf?: string;
}
