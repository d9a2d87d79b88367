/**
 * What each finding's `evidence` holds (docs/findings.md): the measured figures its sentence is
 * built from, typed per finding id, so a verdict and its numbers cannot drift apart unnoticed.
 * Byte figures end in `Bytes`; a figure that was not measured is absent.
 */

/** A least-squares line through a figure's readings (judge/trend.ts fits it). */
export interface Trend {
  /** Bytes per hour (the fitted slope). */
  ratePerHourBytes: number;
  /** Growth along the line over the window. */
  growthBytes: number;
  windowSeconds: number;
  points: number;
  /** How well a straight line fits (1: exactly). */
  r2: number;
  /** The first and the last reading on the line. */
  from: string;
  to: string;
  /** The line through the most recent readings (see the file's comment), when there are 3. */
  recent?: { ratePerHourBytes: number; windowSeconds: number; points: number };
  /** RSS's slope over the same readings (bytes an hour), where every one of them had RSS. */
  rssRatePerHourBytes?: number;
}

/** What every glibc verdict carries: the RSS it is judged against, the arena count, and, for reused figures, when they were read. */
export interface GlibcBase {
  rssBytes: number;
  arenas?: number;
  asOf?: string;
}

/** A thread-arena verdict's figures of the other threads' arenas. */
interface ThreadArenas extends GlibcBase {
  threadArenas: number;
  threadArenasFreeResidentBytes: number;
  threadArenasReleasableBytes: number;
  threadArenasTopBytes?: number;
  threadArenasTopResidentBytes?: number;
}

/** glibc's totals, where its arenas were not looked into one by one. */
export interface GlibcTotals extends GlibcBase {
  /** mallinfo2 fordblks, or "unknown". */
  fordblks: number | string;
  freeResidentBytes?: number;
  releasableBytes?: number;
  fragmentedBytes?: number;
  /** The breakdown part's source the verdict is about. */
  source: string;
}

export interface FindingEvidence {
  "glibc-releasable-now": GlibcBase & {
    releasableBytes: number;
    mainArenaFreeResidentBytes: number;
    mainArenaResidentBytes: number;
  };
  "glibc-main-arena-fragmentation": GlibcBase & {
    mainArenaFragmentedBytes: number;
    mainArenaFreeResidentBytes: number;
    mainArenaInUseBytes: number;
    mainArenaResidentBytes: number;
    mainArenaLivePages: number;
    mainArenaResidentPages: number;
    pageBytes: number;
  };
  "glibc-arena-pile-up": ThreadArenas & {
    arenaLimit: number;
    arenaLimitSource: string;
    onlineCpus?: number;
    cpuQuota?: number;
    threadArenasFragmentedBytes: number;
    recommendedArenaMax: number;
    /** What the advised limit returns where the threads' peaks come at different times (nothing where at once). */
    fewerArenasReturnAtMostBytes: number;
  };
  "glibc-thread-arena-high-water": ThreadArenas & {
    threadArenasSystemBytes: number;
    threadArenasPeakSystemBytes: number;
    threadArenasInUseBytes: number;
    threads?: number;
    libuvThreads?: number;
    workerThreads?: number;
    /** UV_THREADPOOL_SIZE as set, or "4 (default)". */
    uvThreadpoolSize: string;
    poolThreads: number;
    perPoolThreadFreeResidentBytes: number;
    /** A limit the process was started with, recognised as followed advice. */
    arenaLimit?: number;
    arenaLimitSource?: string;
  };
  /** Either the arenas' total (no one cause large enough), or the totals where they were not looked into. */
  "glibc-retains-freed-memory": (GlibcBase & { freeResidentBytes: number; releasableBytes: number }) | GlibcTotals;
  "glibc-free-fragmented": GlibcTotals;
  "glibc-may-retain-freed-memory": { glibcFreeAtMostBytes: number; rssBytes: number; source: string };
  "jemalloc-dirty-pages-kept": {
    rssBytes: number;
    keptDirtyBytes: number;
    since: string;
    readings: number;
    dirtyDecayMs: number;
    backgroundThread: "on" | "off";
  };
  "jemalloc-partly-used-slabs": { rssBytes: number; slackBytes: number; activeBytes: number; allocatedBytes: number };
  "mimalloc-free-pages-kept": {
    rssBytes: number;
    keptBytes: number;
    cachedSegmentBytes: number;
    since: string;
    readings: number;
    decommitDelay: string;
  };
  "tcmalloc-free-pages-kept": { rssBytes: number; pageheapFreeBytes: number; aggressiveMemoryDecommit: "on" | "off" };
  "preload-not-serving-malloc": { ldPreload: string; servedBy: string };
  "v8-limit-above-cgroup-limit": { heapLimitBytes: number; cgroupLimitBytes: number };
  "near-cgroup-limit": { cgroupUsageBytes: number; rssBytes?: number; cgroupLimitBytes: number };
  "cgroup-oom-kills": { oomKillEvents: number };
  "external-above-rss": { externalBytes: number; rssBytes: number };
  "lazy-free-in-rss": { lazyFreeBytes: number; rssBytes: number };
  "swap-in-use": { swapBytes: number; rssBytes?: number };
  "high-unattributed": { unattributedBytes: number; rssBytes: number; glibcFreeAtMostBytes?: number };
  "native-unclassified-growing": Pick<
    Trend,
    "ratePerHourBytes" | "growthBytes" | "windowSeconds" | "points" | "r2" | "from" | "to"
  > & {
    recentRatePerHourBytes: number;
    recentWindowSeconds: number;
    rssRatePerHourBytes?: number;
    /** Set when the reading did not split the native heap: the line is of earlier readings, up to then. */
    asOf?: string;
    /** The unclaimed native allocation sites that grew since `sitesSince` (a reading with sites), with their ±. */
    grownSites?: string;
    sitesSince?: string;
    /** Without an earlier reading with sites: the unclaimed sites holding most now. */
    largestSites?: string;
  };
  "baseline-budget-exceeded": {
    /** The budget's figure: rssBytes, nativeHeapBytes, nativeUnclassifiedBytes or v8HeapBytes. */
    figure: string;
    baselineBytes: number;
    nowBytes: number;
    budgetBytes: number;
    baselineTime: string;
  };
}
