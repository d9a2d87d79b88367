/**
 * glibc's thread arenas' verdicts: arena pile-up near glibc's limit (fewer arenas return what the
 * advised limit leaves, where the threads' peaks come at different times) and each thread's arena
 * kept at its peak (one threadpool thread fewer lowers the sum of the peaks), each saying what its
 * remedy returns, as test/truth/remedies.test.ts measured it.
 */
import { formatBytes } from "../base/units";
import type { AllocatorState, ArenaGroup, Finding } from "../model/types";
import { type Glibc, MiB, pct } from "./finding-base";

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

/** The thread arenas' free memory: pile-up near the limit (fewer arenas return some), else each thread's high water. */
export function threadArenaFinding(
  out: Finding[],
  g: Glibc,
  groups: NonNullable<AllocatorState["arenaGroups"]>,
): boolean {
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
