/**
 * Findings: the verdict, in plain words, with the numbers behind it. Each rule is small and
 * documented in the README's table; thresholds are here, named.
 */
import type { AllocatorState, Breakdown, BreakdownPart, Finding, PartName, Snapshot } from "../model/types";

export { FINDING_IDS } from "../model/types";

import { formatBytes } from "../base/units";
import { nativeHeap, nativeUnclassifiedBytes } from "../model/figures";
import { servingAllocator } from "../model/views";
import type { Baseline } from "./baseline";
import type { PersistentDirty } from "./jemalloc-decay";
import type { Trend } from "./trend";

const MiB = 1024 * 1024;
/** glibc free-but-resident memory worth a trim: at least this much and this share of RSS. */
const RETAINED_MIN = 64 * MiB;
const RETAINED_SHARE = 0.1;
/** Usage at or above this share of the cgroup limit is "near". */
const NEAR_LIMIT = 0.9;
const LAZY_MIN = 16 * MiB;
const LAZY_SHARE = 0.1;
const UNATTRIBUTED_MIN = 64 * MiB;
const UNATTRIBUTED_SHARE = 0.25;

/**
 * Whether memory an allocator holds and the program does not (glibc's free resident memory,
 * jemalloc's dirty pages or slack) is large enough for a finding; for glibc, what asks the kernel
 * to confirm it.
 */
export function glibcFreeWorthConfirming(bytes: number, rss: number | undefined): boolean {
  return bytes >= RETAINED_MIN && (rss === undefined || bytes >= rss * RETAINED_SHARE);
}

const preloadNames: Array<[RegExp, string]> = [
  [/jemalloc/, "jemalloc"],
  [/tcmalloc/, "tcmalloc"],
  [/mimalloc/, "mimalloc"],
];

function pct(a: number, b: number): string {
  return `${Math.round((a / b) * 100)}%`;
}

export interface FindingContext {
  /** The environment of the process read (only known for the process itself). */
  env?: NodeJS.ProcessEnv | undefined;
  /** native-unclassified across this process's readings. */
  trend?: Trend | undefined;
  /** Whether this reading split the native heap (its native-unclassified is the trend's last point or near it). */
  trendCurrent?: boolean | undefined;
  /** The baseline set by setBaseline(), with its budgets. */
  baseline?: Baseline | undefined;
  /** jemalloc's dirty pages kept through its whole decay time, across this process's readings. */
  jemallocDirty?: PersistentDirty | undefined;
}

export function findings(s: Snapshot, b: Breakdown | undefined, ctx: FindingContext): Finding[] {
  const out: Finding[] = [];
  const rss = b?.rssBytes ?? s.process?.rssBytes;
  const heap = servingAllocator(s);

  glibcFindings(out, s, b, heap, ctx);
  jemallocFindings(out, b, heap, ctx);
  tcmallocFindings(out, b, heap, ctx);

  const preload = ctx.env?.LD_PRELOAD;
  if (preload) {
    for (const [pattern, name] of preloadNames) {
      const lib = preload.split(/[\s:]+/).find((p) => pattern.test(p));
      if (lib && heap?.allocator !== name) {
        out.push({
          id: "preload-not-serving-malloc",
          severity: "warn",
          message: `LD_PRELOAD names ${name} (${lib}), but malloc is served by ${heap ? `${heap.allocator} in ${heap.library}` : "an allocator heapstate could not identify"}: the preload is not in effect.`,
          evidence: { ldPreload: preload, servedBy: heap?.library ?? "unknown" },
        });
      }
    }
  }

  const cg = s.cgroup;
  const limit = cg?.limitBytes;
  if (cg && limit !== undefined) {
    const v8Limit = s.v8?.heapLimitBytes;
    if (v8Limit !== undefined && v8Limit > limit) {
      out.push({
        id: "v8-limit-above-cgroup-limit",
        severity: "warn",
        message: `V8 may grow its heap to ${formatBytes(v8Limit)}, above the cgroup's limit of ${formatBytes(limit)}: the kernel will kill the process before V8 collects hard. Set --max-old-space-size below the limit.`,
        evidence: { heapLimitBytes: v8Limit, cgroupLimitBytes: limit },
      });
    }
    const used = Math.max(cg.usageBytes, rss ?? 0);
    if (used >= limit * NEAR_LIMIT) {
      out.push({
        id: "near-cgroup-limit",
        severity: "warn",
        message: `Memory use is ${formatBytes(used)}, ${pct(used, limit)} of the cgroup's limit of ${formatBytes(limit)}.`,
        evidence: {
          cgroupUsageBytes: cg.usageBytes,
          ...(rss !== undefined ? { rssBytes: rss } : {}),
          cgroupLimitBytes: limit,
        },
      });
    }
  }
  if (cg?.oomKillEvents) {
    out.push({
      id: "cgroup-oom-kills",
      severity: "warn",
      message: `The kernel has OOM-killed ${cg.oomKillEvents} process(es) in this cgroup.`,
      evidence: { oomKillEvents: cg.oomKillEvents },
    });
  }

  leakFinding(out, ctx.trend, ctx.trendCurrent !== false, s.time, rss);
  baselineFindings(out, s, ctx.baseline);

  const external = s.v8?.arrayBuffersBytes ?? s.v8?.externalBytes;
  if (external !== undefined && rss !== undefined && external > rss) {
    out.push({
      id: "external-above-rss",
      severity: "info",
      message: `V8 counts ${formatBytes(external)} of external memory (Buffers, ArrayBuffers), more than the whole RSS of ${formatBytes(rss)}: much of it is allocated but never touched (zero-filled calloc pages cost nothing until written).`,
      evidence: { externalBytes: external, rssBytes: rss },
    });
  }

  const lazy = s.process?.lazyFreeBytes;
  if (lazy !== undefined && rss !== undefined && lazy >= LAZY_MIN && lazy >= rss * LAZY_SHARE) {
    out.push({
      id: "lazy-free-in-rss",
      severity: "info",
      message: `${formatBytes(lazy)} of RSS (${pct(lazy, rss)}) is memory already freed with MADV_FREE: the kernel reclaims it when it needs to, so RSS overstates what the process uses.`,
      evidence: { lazyFreeBytes: lazy, rssBytes: rss },
    });
  }

  const swap = s.process?.swapBytes;
  if (swap !== undefined && swap > 0) {
    out.push({
      id: "swap-in-use",
      severity: rss !== undefined && swap >= rss * 0.1 ? "warn" : "info",
      message: `${formatBytes(swap)} of this process is swapped out; touching it again will be slow.`,
      evidence: { swapBytes: swap, ...(rss !== undefined ? { rssBytes: rss } : {}) },
    });
  }

  if (
    b &&
    Math.abs(b.unattributedBytes) >= UNATTRIBUTED_MIN &&
    Math.abs(b.unattributedBytes) >= b.rssBytes * UNATTRIBUTED_SHARE
  ) {
    const negative = b.unattributedBytes < 0;
    const read = [...new Set(s.allocators.map((a) => a.allocator))];
    const bound = b.bounds?.find((x) => x.name === "native-free");
    const boundText =
      bound && bound.atMostBytes > 0
        ? ` Up to ${formatBytes(bound.atMostBytes)} of it may be glibc's free memory, which is not measured (${bound.confirm}).`
        : "";
    const readText =
      read.length > 0 ? `the allocators heapstate read (${read.join(", ")})` : "the allocator (it could not be read)";
    out.push({
      id: "high-unattributed",
      severity: "info",
      message: negative
        ? `The parts add up to ${formatBytes(-b.unattributedBytes)} more than RSS: an allocator counts memory that is reserved or allocated but not resident (untouched pages).${untouchedText(b)}`
        : `${formatBytes(b.unattributedBytes)} of RSS (${pct(b.unattributedBytes, b.rssBytes)}) is not explained by V8, ${readText} or the kernel's file and shared mappings: other threads' V8 heaps (workers), heap pages V8's collector freed but has not returned to the kernel yet (V8 does not count them), an allocator heapstate cannot see (one inside a Rust addon), or mmap by native code. The deep tier lists the regions.${boundText}`,
      evidence: {
        unattributedBytes: b.unattributedBytes,
        rssBytes: b.rssBytes,
        ...(bound ? { glibcFreeAtMostBytes: bound.atMostBytes } : {}),
      },
    });
  }
  return out;
}

/**
 * jemalloc's own waste, where it is large (64 MiB and 10 % of RSS, as glibc's):
 * - dirty pages its decay has left in place through its whole decay time (measured across readings:
 *   one reading's dirty pages may be about to be purged). Without a background thread, jemalloc's
 *   decay advances only when the process allocates, so an idle process keeps them: the remedy, applied
 *   in test/truth/remedies.test.ts, is its background thread (MALLOC_CONF=background_thread:true),
 *   and trim() purges them now;
 * - room inside its active pages that holds no allocation (active − allocated), mostly free regions
 *   of slabs that still hold live ones: no remedy can be predicted, as for glibc's fragments.
 */
function jemallocFindings(
  out: Finding[],
  b: Breakdown | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  if (heap?.allocator !== "jemalloc" || !b) return;
  const rss = b.rssBytes;
  const worth = (bytes: number) => glibcFreeWorthConfirming(bytes, rss);
  const kept = ctx.jemallocDirty;
  const decayMs = heap.config?.dirtyDecayMs;
  if (kept && typeof decayMs === "number" && worth(kept.bytes)) {
    const background = heap.config?.backgroundThread === true;
    const conf = ctx.env?.MALLOC_CONF?.trim();
    const setting = conf ? `MALLOC_CONF=${conf},background_thread:true` : "MALLOC_CONF=background_thread:true";
    const seconds = `${Math.round(decayMs / 100) / 10} s`;
    out.push({
      id: "jemalloc-dirty-pages-kept",
      severity: "warn",
      message: background
        ? `jemalloc has kept at least ${formatBytes(kept.bytes)} of freed memory in dirty pages (${pct(kept.bytes, rss)} of RSS) through its whole decay time (dirty_decay_ms ${decayMs}, ${kept.readings} readings since ${kept.since}), although its background thread runs: trim() purges them now (about that much).`
        : `jemalloc has kept at least ${formatBytes(kept.bytes)} of freed memory in dirty pages (${pct(kept.bytes, rss)} of RSS) through its whole decay time (dirty_decay_ms ${decayMs}, ${kept.readings} readings since ${kept.since}): without its background thread, jemalloc's decay advances only when the process allocates, so a quiet process keeps them. Start node with ${setting} (the LD_PRELOAD as now): its background thread purges dirty pages within ${seconds} of their freeing, busy or idle, about ${formatBytes(kept.bytes)} here; trim() purges them now.`,
      evidence: {
        rssBytes: rss,
        keptDirtyBytes: kept.bytes,
        since: kept.since,
        readings: kept.readings,
        dirtyDecayMs: decayMs,
        backgroundThread: background ? "on" : "off",
      },
    });
  }
  if (heap.activeBytes !== undefined && heap.allocatedBytes !== undefined) {
    const slack = heap.activeBytes - heap.allocatedBytes;
    if (worth(slack)) {
      out.push({
        id: "jemalloc-partly-used-slabs",
        severity: "warn",
        message: `jemalloc keeps ${formatBytes(slack)} of its active pages free (${pct(slack, rss)} of RSS; active − allocated: mostly free regions of slabs that still hold live ones, ${formatBytes(heap.allocatedBytes)} in use). No allocator gives back a page that still holds a live block, and no setting of jemalloc's does: no remedy can be predicted. What helps: fewer long-lived small objects, or allocating them together (at start-up, or from a pool), so that slabs come free whole.`,
        evidence: {
          rssBytes: rss,
          slackBytes: slack,
          activeBytes: heap.activeBytes,
          allocatedBytes: heap.allocatedBytes,
        },
      });
    }
  }
}

/**
 * tcmalloc's free pages kept: its page heap's free spans, mapped and resident (pageheap_free_bytes).
 * gperftools returns them to the system only a little at a time as the process frees more
 * (TCMALLOC_RELEASE_RATE), never by time, so a quiet process keeps them. The remedy, applied in
 * test/truth/remedies.test.ts: TCMALLOC_AGGRESSIVE_DECOMMIT=true, under which a span freed is
 * returned at once; trim() (ReleaseFreeMemory) returns them now. With aggressive decommit on, the
 * free bytes are not kept, and nothing is said.
 */
function tcmallocFindings(
  out: Finding[],
  b: Breakdown | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  if (heap?.allocator !== "tcmalloc" || !heap.servesMalloc || !b) return;
  const free = heap.pages?.dirtyBytes;
  const rss = b.rssBytes;
  if (free === undefined || !glibcFreeWorthConfirming(free, rss)) return;
  const aggressive = heap.config?.aggressiveMemoryDecommit === true;
  const preload = ctx.env?.LD_PRELOAD ? " (the LD_PRELOAD as now)" : "";
  out.push({
    id: "tcmalloc-free-pages-kept",
    severity: "warn",
    message: aggressive
      ? `tcmalloc keeps ${formatBytes(free)} of free pages mapped and resident in its page heap (${pct(free, rss)} of RSS) although aggressive decommit is on: trim() returns them now (about that much).`
      : `tcmalloc keeps ${formatBytes(free)} of free pages mapped and resident in its page heap (${pct(free, rss)} of RSS; pageheap_free_bytes): it gives free pages back only a little at a time as the process frees more (TCMALLOC_RELEASE_RATE), never as time passes, so a quiet process keeps them. Start node with TCMALLOC_AGGRESSIVE_DECOMMIT=true${preload}: a span freed is given back at once, about ${formatBytes(free)} here; trim() returns them now.`,
    evidence: {
      rssBytes: rss,
      pageheapFreeBytes: free,
      aggressiveMemoryDecommit: aggressive ? "on" : "off",
    },
  });
}

/** Steady growth of native-unclassified: at least this many readings, this long, this straight a line. */
const LEAK_POINTS = 10;
const LEAK_SECONDS = 20;
const LEAK_R2 = 0.8;
const LEAK_MIN = 16 * MiB;
const LEAK_SHARE = 0.05;

/**
 * How long a trend stays a finding when the readings after it could not split the native heap (a
 * repeated reader reuses glibc's walk for 10 s at a time when walks are costly): longer than that
 * back-off, short enough that a finding is never shown long after its evidence stopped.
 */
const LEAK_FRESH_MS = 60_000;

/**
 * The recent line must still rise at this share of the long line's rate: a heap that grew during a
 * warm-up and then stopped still shows a rising long line for as long as the warm-up lasted, and a
 * leak is growth that goes on.
 */
const LEAK_RECENT_SHARE = 0.5;

/**
 * A leak V8 cannot see: the native heap no one claims, growing along a straight line, and still
 * growing over the most recent readings. The line is through measured readings only; when this
 * reading has no split of its own, the finding holds for a minute after the line's last reading
 * and says up to when it was measured (evidence.asOf). The rate is of allocated bytes (what the
 * allocator gave out); RSS's own slope over the same readings is said beside it, since pages never
 * written are allocated and not resident.
 */
function leakFinding(
  out: Finding[],
  trend: Trend | undefined,
  current: boolean,
  time: string,
  rss: number | undefined,
): void {
  if (!trend || trend.points < LEAK_POINTS || trend.windowSeconds < LEAK_SECONDS || trend.r2 < LEAK_R2) return;
  if (trend.growthBytes < Math.max(LEAK_MIN, (rss ?? 0) * LEAK_SHARE)) return;
  const recent = trend.recent;
  if (recent === undefined || recent.ratePerHourBytes < trend.ratePerHourBytes * LEAK_RECENT_SHARE) return;
  const lagMs = Date.parse(time) - Date.parse(trend.to);
  if (!current && !(lagMs >= 0 && lagMs <= LEAK_FRESH_MS)) return;
  const when = current
    ? `over the last ${trend.windowSeconds} s`
    : `over ${trend.windowSeconds} s up to ${trend.to}, ${Math.round(lagMs / 1000)} s before this reading (which could not split the native heap)`;
  const evidence: Finding["evidence"] = {
    ratePerHourBytes: trend.ratePerHourBytes,
    growthBytes: trend.growthBytes,
    windowSeconds: trend.windowSeconds,
    points: trend.points,
    r2: trend.r2,
    from: trend.from,
    to: trend.to,
    recentRatePerHourBytes: recent.ratePerHourBytes,
    recentWindowSeconds: recent.windowSeconds,
  };
  if (trend.rssRatePerHourBytes !== undefined) evidence.rssRatePerHourBytes = trend.rssRatePerHourBytes;
  if (!current) evidence.asOf = trend.to;
  const resident =
    trend.rssRatePerHourBytes === undefined
      ? ""
      : ` (allocated bytes; RSS grew about ${formatBytes(trend.rssRatePerHourBytes)} an hour over the same readings${trend.rssRatePerHourBytes < trend.ratePerHourBytes * 0.8 ? ": much of what is allocated has not been written, and is not resident yet" : ""})`;
  out.push({
    id: "native-unclassified-growing",
    severity: "warn",
    message: `The native heap no one claims (native-unclassified) grew steadily by ${formatBytes(trend.growthBytes)} ${when} (${trend.points} readings, R² ${trend.r2}), and still grows over the last ${recent.windowSeconds} s: about ${formatBytes(trend.ratePerHourBytes)} an hour${resident}. A leak V8's heap snapshots cannot see: in an addon, a library or Node's own native structures. registerMemoryReporter for the addons in use names whose it is; setBaseline() and diff(baseline(), collect()) show what else grew.`,
    evidence,
  });
}

/** Growth over the baseline past its budgets. */
function baselineFindings(out: Finding[], s: Snapshot, base: Baseline | undefined): void {
  if (!base) return;
  const figures: Array<[keyof Baseline["budgets"], string, (x: Snapshot) => number | undefined]> = [
    ["rssBytes", "RSS", (x) => x.process?.rssBytes],
    ["nativeHeapBytes", "the native heap", (x) => nativeHeap(x)?.bytes],
    ["nativeUnclassifiedBytes", "the native heap no one claims (native-unclassified)", nativeUnclassifiedBytes],
    ["v8HeapBytes", "V8's heap", (x) => x.v8?.heapUsedBytes],
  ];
  for (const [key, label, figure] of figures) {
    const budget = base.budgets[key];
    const then = figure(base.snapshot);
    const now = figure(s);
    if (budget === undefined || then === undefined || now === undefined || now - then <= budget) continue;
    out.push({
      id: "baseline-budget-exceeded",
      severity: "warn",
      message: `${label[0]?.toUpperCase()}${label.slice(1)} grew by ${formatBytes(now - then)} since the baseline of ${base.snapshot.time}, over its budget of ${formatBytes(budget)}.`,
      evidence: {
        figure: key,
        baselineBytes: then,
        nowBytes: now,
        budgetBytes: budget,
        baselineTime: base.snapshot.time,
      },
    });
  }
}

/** When ArrayBuffers could explain parts above RSS: their zero-filled pages are allocated, not resident, until written. */
function untouchedText(b: Breakdown): string {
  let arrayBuffers = 0;
  for (const p of b.parts)
    for (const c of p.children ?? []) if (c.name === "native-array-buffers") arrayBuffers += c.bytes;
  if (arrayBuffers < -b.unattributedBytes / 2) return "";
  return ` ArrayBuffers hold ${formatBytes(arrayBuffers)} of it (native-array-buffers): their zero-filled (calloc'd) pages count as allocated and take no memory until written.`;
}

function partOf(b: Breakdown | undefined, name: PartName): BreakdownPart | undefined {
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
function glibcFindings(
  out: Finding[],
  s: Snapshot,
  b: Breakdown | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  if (heap?.allocator !== "glibc" || !b) return;
  const rss = b.rssBytes;
  const time = s.time;
  const worth = (bytes: number) => glibcFreeWorthConfirming(bytes, rss);
  const severity: Finding["severity"] = heap.asOf === undefined ? "warn" : "info";
  const stale = age(heap.asOf, time);
  const base = (): Record<string, number | string> => ({
    rssBytes: rss,
    ...(heap.arenas !== undefined ? { arenas: heap.arenas } : {}),
    ...(heap.asOf !== undefined ? { asOf: heap.asOf } : {}),
  });
  const groups = heap.arenaGroups;
  if (groups) {
    const { main, threads } = groups;
    const arenas = main.arenas + threads.arenas;
    const limit = heap.arenaLimit;
    const near = limit !== undefined && arenas >= Math.max(4, Math.ceil(limit.arenas * NEAR_ARENA_LIMIT));
    const quota = s.cpu?.quotaCpus;
    const online = s.cpu?.onlineCpus;
    const n = recommendedArenaMax(quota, online) ?? 2;
    // A limit the process was started with (MALLOC_ARENA_MAX, glibc.malloc.arena_max) at or below
    // what would be advised: that advice is followed already, and is never given again.
    const followed = limit !== undefined && isUserArenaLimit(limit.source) && limit.arenas <= n;
    let said = false;
    if (worth(threads.freeResidentBytes)) {
      said = true;
      // The thread arenas' tops are not shrunk by malloc_trim, and are not pieces: said as what they are.
      const tops = threads.topBytes !== undefined && threads.topBytes >= MiB;
      // Walked, the tops' resident bytes are measured apart from the pieces; else they are said together.
      const topResident = threads.topResidentBytes;
      const held =
        topResident !== undefined
          ? `${formatBytes(threads.freeResidentBytes)} free and resident (${formatBytes(threads.releasableBytes)} in whole pages inside free chunks, ${formatBytes(topResident)} in the arenas' top chunks, which malloc_trim does not shrink, ${formatBytes(threads.fragmentedBytes - topResident)} in pieces smaller than a page)`
          : `${formatBytes(threads.freeResidentBytes)} free and resident (${formatBytes(threads.releasableBytes)} in whole pages inside free chunks, ${formatBytes(threads.fragmentedBytes)} in pieces smaller than a page${tops ? ` and in the arenas' top chunks, which hold ${formatBytes(threads.topBytes as number)} free` : ""})`;
      // What fewer arenas could return: the free memory of all but the thread arenas the advised
      // limit leaves (it counts the main arena), shared evenly over the arenas. Only as far as the
      // threads' peaks come at different times (a later thread reuses, in a shared arena, what an
      // earlier one freed); threads that hold their peaks at once need the memory in any arena.
      const keptArenas = Math.max(0, n - 1);
      const fewerReturn =
        threads.arenas > keptArenas ? threads.freeResidentBytes * (1 - keptArenas / threads.arenas) : 0;
      if (near && limit && !followed && fewerReturn > 0) {
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
      } else {
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
    }
    if (worth(main.fragmentedBytes)) {
      said = true;
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
    }
    if (worth(main.releasableBytes)) {
      said = true;
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
    }
    const total = main.freeResidentBytes + threads.freeResidentBytes;
    if (!said && worth(total)) {
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
  } else {
    const releasable = partOf(b, "native-free-releasable");
    const fragmented = partOf(b, "native-free-fragmented");
    const whole = partOf(b, "native-free");
    const evidence = (p: BreakdownPart): Record<string, number | string> => ({
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
