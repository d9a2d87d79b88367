/**
 * glibc's verdicts: its free memory by cause (arena pile-up, each thread's arena at its peak, the
 * main arena's fragments, whole pages trim() returns now), each with the remedy its counterfactual
 * test measured, or the totals and the bound where the arenas were not looked into.
 */
import { formatBytes } from "../base/units";
import type { GlibcBase, GlibcTotals } from "../model/evidence";
import type { AllocatorState, ArenaGroup, Breakdown, BreakdownPart, Finding, PartName, Snapshot } from "../model/types";
import { type FindingContext, glibcFreeWorthConfirming, MiB, pct } from "./finding-base";

export function partOf(b: Breakdown | undefined, name: PartName): BreakdownPart | undefined {
  return b?.parts.find((p) => p.name === name);
}

function age(asOf: string | undefined, time: string | undefined): string {
  if (asOf === undefined || time === undefined) return "";
  const seconds = Math.max(0, (Date.parse(time) - Date.parse(asOf)) / 1000);
  return ` (glibc's figures are from ${seconds.toFixed(1)} s earlier: not raised as a warning)`;
}

/** Whether glibc's arena limit came from the process's environment (MALLOC_ARENA_MAX, the tunable), not glibc's default. */
function isUserArenaLimit(source: string): boolean {
  return source === "MALLOC_ARENA_MAX" || source.startsWith("GLIBC_TUNABLES");
}

/** The arena count at which glibc is "near" its limit: three quarters of it (at least 4). */
const NEAR_ARENA_LIMIT = 0.75;

/**
 * MALLOC_ARENA_MAX for a process that piles up arenas: two per CPU it may use (the cgroup's quota
 * when there is one, else the online CPUs), at least 2. Threads that run at once contend for an
 * arena's lock; more runnable threads than CPUs do not run at once, so two arenas a CPU keep
 * contention low while capping how many arenas hold free memory.
 */
export function recommendedArenaMax(quotaCpus: number | undefined, onlineCpus: number | undefined): number | undefined {
  const cpus = quotaCpus ?? onlineCpus;
  return cpus === undefined ? undefined : Math.max(2, 2 * Math.ceil(cpus));
}

/** What every glibc verdict of one reading shares. */
interface Glibc {
  s: Snapshot;
  b: Breakdown;
  heap: AllocatorState;
  ctx: FindingContext;
  rss: number;
  severity: Finding["severity"];
  /** Said after each message when glibc's figures were reused from an earlier reading. */
  stale: string;
  worth: (bytes: number) => boolean;
  base: () => GlibcBase;
}

/** What the thread arenas' verdicts share: the limit, the advised one, and the free memory in words. */
interface Threads {
  threads: ArenaGroup;
  arenas: number;
  limit: AllocatorState["arenaLimit"];
  near: boolean;
  followed: boolean;
  quota: number | undefined;
  online: number | undefined;
  n: number;
  held: string;
  topResident: number | undefined;
}

/**
 * glibc's free memory, by cause. Where its arenas were looked into (malloc_info with their
 * resident pages), each cause has its verdict and the remedy that works for it:
 * - the other threads' arenas hold free memory and their number is near glibc's limit: arena
 *   pile-up, MALLOC_ARENA_MAX from the CPU quota;
 * - they hold it and are not near the limit: each thread's arena kept at its peak, naming the
 *   threads and UV_THREADPOOL_SIZE;
 * - the main arena holds free memory in pieces smaller than a page: fragmentation that neither
 *   trim() nor MALLOC_ARENA_MAX can undo, and no allocator is predicted to (the counterfactual tests
 *   in test/truth/remedies.test.ts: another allocator held more where survivors were scattered
 *   among freed blocks of their size); how many pages hold live data says why;
 * - the main arena holds whole free pages: trim() returns them now.
 * Without per-arena figures, the totals say what trim() would return and what it cannot, without
 * a cause; where only an upper bound is known, a hint says how to measure it. A warning needs
 * measured, fresh figures: a reused glibc reading raises at most info.
 */
export function glibcFindings(
  out: Finding[],
  s: Snapshot,
  b: Breakdown | undefined,
  rss: number | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  if (heap?.allocator !== "glibc" || !b || rss === undefined) return;
  const g: Glibc = {
    s,
    b,
    heap,
    ctx,
    rss,
    severity: heap.asOf === undefined ? "warn" : "info",
    stale: age(heap.asOf, s.time),
    worth: (bytes: number) => glibcFreeWorthConfirming(bytes, rss),
    base: () => ({
      rssBytes: rss,
      ...(heap.arenas !== undefined ? { arenas: heap.arenas } : {}),
      ...(heap.asOf !== undefined ? { asOf: heap.asOf } : {}),
    }),
  };
  if (heap.arenaGroups) arenaFindings(out, g, heap.arenaGroups);
  else totalsFindings(out, g);
  boundFinding(out, g);
}

/** Where the arenas were looked into: a verdict per cause, or the total when no cause holds enough. */
function arenaFindings(out: Finding[], g: Glibc, groups: NonNullable<AllocatorState["arenaGroups"]>): void {
  const { main, threads } = groups;
  const said = [threadArenaFinding(out, g, groups), mainFragmentation(out, g, main), releasableNow(out, g, main)];
  const { rss, stale, worth, base } = g;
  const total = main.freeResidentBytes + threads.freeResidentBytes;
  if (!said.some(Boolean) && worth(total)) {
    out.push({
      id: "glibc-retains-freed-memory",
      severity: "info",
      message: `glibc keeps ${formatBytes(total)} of free memory resident (${pct(total, rss)} of RSS): ${formatBytes(main.freeResidentBytes)} in the main arena, ${formatBytes(threads.freeResidentBytes)} in ${threads.arenas} thread arenas; no one cause holds enough of it for a warning. trim() returns ${formatBytes(main.releasableBytes + threads.releasableBytes)} of it.${stale}`,
      evidence: {
        ...base(),
        freeResidentBytes: total,
        releasableBytes: main.releasableBytes + threads.releasableBytes,
      },
    });
  }
}

/** The thread arenas' free memory: pile-up near the limit (fewer arenas return some), else each thread's high water. */
function threadArenaFinding(out: Finding[], g: Glibc, groups: NonNullable<AllocatorState["arenaGroups"]>): boolean {
  const { s, heap } = g;
  const { main, threads } = groups;
  if (!g.worth(threads.freeResidentBytes)) return false;
  const arenas = main.arenas + threads.arenas;
  const limit = heap.arenaLimit;
  const near = limit !== undefined && arenas >= Math.max(4, Math.ceil(limit.arenas * NEAR_ARENA_LIMIT));
  const quota = s.cpu?.quotaCpus;
  const online = s.cpu?.onlineCpus;
  const n = recommendedArenaMax(quota, online) ?? 2;
  // A limit the process was started with (MALLOC_ARENA_MAX, glibc.malloc.arena_max) at or below
  // what would be advised: that advice is followed already, and is never given again.
  const followed = limit !== undefined && isUserArenaLimit(limit.source) && limit.arenas <= n;
  // The thread arenas' tops are not shrunk by malloc_trim, and are not pieces: said as what they are.
  const tops = threads.topBytes !== undefined && threads.topBytes >= MiB;
  // Walked, the tops' resident bytes are measured apart from the pieces; else they are said together.
  const topResident = threads.topResidentBytes;
  const held =
    topResident !== undefined
      ? `${formatBytes(threads.freeResidentBytes)} free and resident (${formatBytes(threads.releasableBytes)} in whole pages inside free chunks, ${formatBytes(topResident)} in the arenas' top chunks, which malloc_trim does not shrink, ${formatBytes(threads.fragmentedBytes - topResident)} in pieces smaller than a page)`
      : `${formatBytes(threads.freeResidentBytes)} free and resident (${formatBytes(threads.releasableBytes)} in whole pages inside free chunks, ${formatBytes(threads.fragmentedBytes)} in pieces smaller than a page${tops ? ` and in the arenas' top chunks, which hold ${formatBytes(threads.topBytes as number)} free` : ""})`;
  const t: Threads = { threads, arenas, limit, near, followed, quota, online, n, held, topResident };
  if (!pileUp(out, g, t)) highWater(out, g, t);
  return true;
}

/**
 * Arena pile-up: near glibc's limit, not already limited by the user, and fewer arenas would return
 * something. What fewer arenas could return: the free memory of all but the thread arenas the advised
 * limit leaves (it counts the main arena), shared evenly over the arenas. Only as far as the
 * threads' peaks come at different times (a later thread reuses, in a shared arena, what an earlier
 * one freed); threads that hold their peaks at once need the memory in any arena.
 */
function pileUp(out: Finding[], g: Glibc, t: Threads): boolean {
  const { rss, severity, stale, base } = g;
  const { threads, arenas, limit, near, followed, quota, online, n, held, topResident } = t;
  const keptArenas = Math.max(0, n - 1);
  const fewerReturn = threads.arenas > keptArenas ? threads.freeResidentBytes * (1 - keptArenas / threads.arenas) : 0;
  if (!(near && limit && !followed && fewerReturn > 0)) return false;
  const cpus =
    quota !== undefined
      ? `while the cgroup's CPU quota allows ${quota} CPU${quota === 1 ? "" : "s"}`
      : `on ${online ?? "the host's"} online CPU${online === 1 ? "" : "s"}`;
  out.push({
    id: "glibc-arena-pile-up",
    severity,
    message: `glibc has ${arenas} arenas, near its limit of ${limit.arenas} (${limit.source}) ${cpus}, and the ${threads.arenas} thread arenas keep ${held}, ${pct(threads.freeResidentBytes, rss)} of RSS: glibc gives threads arenas of their own up to that limit, and each keeps its free memory. With MALLOC_ARENA_MAX=${n} (two per CPU ${quota !== undefined ? "the quota allows" : "online"}) they would share ${keptArenas} thread arena${keptArenas === 1 ? "" : "s"}, which returns up to about ${formatBytes(fewerReturn)} here where the threads' peaks come at different times (a later thread reuses what an earlier one freed), and nothing where they hold their peaks at once; one reading cannot tell which (docs/diagnosis.md has both measured). trim() returns the ${formatBytes(threads.releasableBytes)} in whole pages now.${stale}`,
    evidence: {
      ...base(),
      arenaLimit: limit.arenas,
      arenaLimitSource: limit.source,
      ...(online !== undefined ? { onlineCpus: online } : {}),
      ...(quota !== undefined ? { cpuQuota: quota } : {}),
      threadArenas: threads.arenas,
      threadArenasFreeResidentBytes: threads.freeResidentBytes,
      threadArenasFragmentedBytes: threads.fragmentedBytes,
      threadArenasReleasableBytes: threads.releasableBytes,
      ...(threads.topBytes !== undefined ? { threadArenasTopBytes: threads.topBytes } : {}),
      ...(topResident !== undefined ? { threadArenasTopResidentBytes: topResident } : {}),
      recommendedArenaMax: n,
      fewerArenasReturnAtMostBytes: Math.round(fewerReturn),
    },
  });
  return true;
}

/** Each thread's arena kept at its peak: who the threads are, and what one threadpool thread fewer returns. */
function highWater(out: Finding[], g: Glibc, t: Threads): void {
  const { s, rss, severity, stale, base, ctx } = g;
  const { threads, limit, near, followed, held, topResident } = t;
  const names = s.process?.threadNames;
  const libuv = names?.["libuv-worker"];
  const workers = names?.WorkerThread;
  const poolEnv = ctx.env?.UV_THREADPOOL_SIZE;
  const inForce =
    followed && limit
      ? ` ${limit.source === "MALLOC_ARENA_MAX" ? `MALLOC_ARENA_MAX=${limit.arenas}` : `glibc.malloc.arena_max=${limit.arenas}`} is in force already${near ? " and reached" : ""}: fewer arenas are not advised.`
      : "";
  const pool =
    poolEnv !== undefined && /^\d{1,4}$/.test(poolEnv.trim())
      ? `UV_THREADPOOL_SIZE=${poolEnv.trim()}`
      : "UV_THREADPOOL_SIZE=4, the default";
  const total = s.process?.threads;
  // What one threadpool thread fewer returns: the thread arenas' free memory over the pool's
  // threads (counted by name where Node names them, else the pool's size), as far as they are
  // what holds it; over all the thread arenas when there are fewer arenas than pool threads.
  const poolThreads =
    libuv ??
    (poolEnv !== undefined && /^\d{1,4}$/.test(poolEnv.trim())
      ? Math.min(1024, Math.max(1, Number(poolEnv.trim())))
      : 4);
  const perPoolThread = threads.freeResidentBytes / Math.max(1, Math.min(poolThreads, threads.arenas));
  const fewerThreads =
    poolThreads > 1
      ? ` Each threadpool thread fewer (UV_THREADPOOL_SIZE) lowers the sum of the peaks by about ${formatBytes(perPoolThread)} here (the thread arenas' free memory over the pool's ${poolThreads} threads, where they are what holds it), worker threads fewer likewise.`
      : " The threadpool has one thread already; worker threads fewer lower the sum of the peaks.";
  const who =
    libuv !== undefined
      ? `${libuv} libuv threadpool thread${libuv === 1 ? "" : "s"} (${pool})${workers !== undefined ? ` and ${workers} worker thread${workers === 1 ? "" : "s"}` : ""}${total !== undefined ? `, of ${total} threads in all` : ""}`
      : `${total ?? "several"} threads in all (this Node does not name them; the libuv threadpool has ${pool.replace("UV_THREADPOOL_SIZE=", "").replace(", the default", " threads, the default")})`;
  out.push({
    id: "glibc-thread-arena-high-water",
    severity,
    message: `glibc's ${threads.arenas} thread arena${threads.arenas === 1 ? "" : "s"} keep ${held}, ${pct(threads.freeResidentBytes, rss)} of RSS: each thread's arena grows to that thread's peak and stays there, since a heap cannot shrink below a live block at its top (they hold ${formatBytes(threads.systemBytes)} from the OS, ${formatBytes(threads.peakSystemBytes)} at their peaks, ${formatBytes(threads.inUseBytes)} in use). The threads: ${who}. trim() returns ${formatBytes(threads.releasableBytes)} now, until the next peak.${fewerThreads}${inForce}${stale}`,
    evidence: {
      ...base(),
      threadArenas: threads.arenas,
      threadArenasSystemBytes: threads.systemBytes,
      threadArenasPeakSystemBytes: threads.peakSystemBytes,
      threadArenasInUseBytes: threads.inUseBytes,
      threadArenasFreeResidentBytes: threads.freeResidentBytes,
      threadArenasReleasableBytes: threads.releasableBytes,
      ...(total !== undefined ? { threads: total } : {}),
      ...(libuv !== undefined ? { libuvThreads: libuv } : {}),
      ...(workers !== undefined ? { workerThreads: workers } : {}),
      uvThreadpoolSize: poolEnv?.trim() || "4 (default)",
      poolThreads,
      perPoolThreadFreeResidentBytes: Math.round(perPoolThread),
      ...(threads.topBytes !== undefined ? { threadArenasTopBytes: threads.topBytes } : {}),
      ...(topResident !== undefined ? { threadArenasTopResidentBytes: topResident } : {}),
      ...(followed && limit ? { arenaLimit: limit.arenas, arenaLimitSource: limit.source } : {}),
    },
  });
}

/** The main arena's free pieces smaller than a page: no remedy predicted, what helps said. */
function mainFragmentation(out: Finding[], g: Glibc, main: ArenaGroup): boolean {
  const { heap, rss, severity, stale, base } = g;
  if (!g.worth(main.fragmentedBytes)) return false;
  // The pages that hold live data: the arena's resident pages outside its whole free pages
  // (pieces smaller than a page lie on pages a live block shares).
  const page = typeof heap.raw?.page_size === "number" && heap.raw.page_size > 0 ? heap.raw.page_size : 4096;
  const residentPages = Math.round(main.residentBytes / page);
  // Counted page by page where glibc's chunks were walked; else estimated from the arena's figures.
  const walkedLive = main.livePages;
  const livePages = walkedLive ?? Math.max(0, Math.round((main.residentBytes - main.releasableBytes) / page));
  out.push({
    id: "glibc-main-arena-fragmentation",
    severity,
    message: `glibc's main arena ([heap]) keeps ${formatBytes(main.fragmentedBytes)} of free memory resident in pieces smaller than a page (${pct(main.fragmentedBytes, rss)} of RSS), between ${formatBytes(main.inUseBytes)} in use: about ${livePages} of its ${residentPages} resident pages (${pct(livePages, Math.max(1, residentPages))}) hold live data (${walkedLive !== undefined ? "counted by a walk of its chunks: the resident pages an in-use block touches" : "estimated: its resident pages outside its whole free pages"}). trim() returns only whole free pages, MALLOC_ARENA_MAX does not change the main arena, and no allocator gives back a page that still holds a live block: no remedy can be predicted from glibc's figures (another allocator helps only where the freed blocks differ in size from the survivors, which they do not tell; docs/diagnosis.md has what was measured). What helps: fewer long-lived small objects, or allocating them together (at start-up, or from a pool), so that what is freed comes in whole pages.${stale}`,
    evidence: {
      ...base(),
      mainArenaFragmentedBytes: main.fragmentedBytes,
      mainArenaFreeResidentBytes: main.freeResidentBytes,
      mainArenaInUseBytes: main.inUseBytes,
      mainArenaResidentBytes: main.residentBytes,
      mainArenaLivePages: livePages,
      mainArenaResidentPages: residentPages,
      pageBytes: page,
    },
  });
  return true;
}

/** The main arena's whole free pages: trim() returns them now. */
function releasableNow(out: Finding[], g: Glibc, main: ArenaGroup): boolean {
  const { rss, severity, stale, base } = g;
  if (!g.worth(main.releasableBytes)) return false;
  out.push({
    id: "glibc-releasable-now",
    severity,
    message: `glibc's main arena keeps about ${formatBytes(main.releasableBytes)} of freed memory resident in whole pages (${pct(main.releasableBytes, rss)} of RSS); trim() would give about that much back now (${main.measuredBy === "chunk-walk" ? "measured from a walk of its free chunks and their resident pages" : "estimated from malloc_info's free-chunk sizes and the arena's resident pages, within 25%"}), and startAutoTrim() does so when it is worth it.${stale}`,
    evidence: {
      ...base(),
      releasableBytes: main.releasableBytes,
      mainArenaFreeResidentBytes: main.freeResidentBytes,
      mainArenaResidentBytes: main.residentBytes,
    },
  });
  return true;
}

/** Without per-arena figures: what trim() would return and what it cannot, without a cause. */
function totalsFindings(out: Finding[], g: Glibc): void {
  const { b, heap, rss, severity, stale, worth, base } = g;
  const releasable = partOf(b, "native-free-releasable");
  const fragmented = partOf(b, "native-free-fragmented");
  const whole = partOf(b, "native-free");
  const evidence = (p: BreakdownPart): GlibcTotals => ({
    ...base(),
    fordblks: heap.pages?.freeBytes ?? "unknown",
    ...(heap.pages?.dirtyBytes !== undefined ? { freeResidentBytes: heap.pages.dirtyBytes } : {}),
    ...(releasable ? { releasableBytes: releasable.bytes } : {}),
    ...(fragmented ? { fragmentedBytes: fragmented.bytes } : {}),
    source: p.source,
  });
  if (releasable && worth(releasable.bytes)) {
    out.push({
      id: "glibc-retains-freed-memory",
      severity,
      message: `glibc keeps about ${formatBytes(releasable.bytes)} of freed memory resident in whole pages (${pct(releasable.bytes, rss)} of RSS); trim() would give about that much back (${heap.pages?.inUseAbsentBytes !== undefined ? "measured from a walk of its free chunks and their resident pages" : "estimated from malloc_info's free-chunk sizes and the arenas' resident pages, within 25%"}).${stale}`,
      evidence: evidence(releasable),
    });
  } else if (whole && worth(whole.bytes)) {
    out.push({
      id: "glibc-retains-freed-memory",
      severity,
      message: `glibc keeps about ${formatBytes(whole.bytes)} of freed memory resident (${pct(whole.bytes, rss)} of RSS); how much of it trim() can return, and why it is kept, needs malloc_info (the deep tier).${stale}`,
      evidence: evidence(whole),
    });
  }
  if (fragmented && worth(fragmented.bytes)) {
    out.push({
      id: "glibc-free-fragmented",
      severity,
      message: `glibc keeps ${formatBytes(fragmented.bytes)} of free memory resident in pieces smaller than a page (${pct(fragmented.bytes, rss)} of RSS): trim() cannot return it. Which arenas hold it (and so the remedy) needs the deep tier.${stale}`,
      evidence: evidence(fragmented),
    });
  }
}

/** Only an upper bound is known: a hint says how to measure it. */
function boundFinding(out: Finding[], g: Glibc): void {
  const { b, rss } = g;
  const bound = b.bounds?.find((x) => x.name === "native-free");
  if (bound && glibcFreeWorthConfirming(bound.atMostBytes, rss)) {
    out.push({
      id: "glibc-may-retain-freed-memory",
      severity: "info",
      message: `Up to ${formatBytes(bound.atMostBytes)} of the unattributed memory (${pct(bound.atMostBytes, rss)} of RSS) may be glibc's free memory: an upper bound, not a measurement (it also counts other threads' V8 heaps and other native memory); ${bound.confirm}.`,
      evidence: { glibcFreeAtMostBytes: bound.atMostBytes, rssBytes: rss, source: bound.source },
    });
  }
}
