/**
 * glibc's verdicts: its free memory by cause (arena pile-up, each thread's arena at its peak, the
 * main arena's fragments, whole pages trim() returns now), each with the remedy its counterfactual
 * test measured, or the totals and the bound where the arenas were not looked into.
 */
import { formatBytes } from "../base/units";
import type { GlibcTotals } from "../model/evidence";
import type { AllocatorState, ArenaGroup, Breakdown, BreakdownPart, Finding, PartName, Snapshot } from "../model/types";
import { type FindingContext, type Glibc, glibcFreeWorthConfirming, pct } from "./finding-base";
import { threadArenaFinding } from "./glibc-thread-findings";

export { recommendedArenaMax } from "./glibc-thread-findings";

export function partOf(b: Breakdown | undefined, name: PartName): BreakdownPart | undefined {
  return b?.parts.find((p) => p.name === name);
}

function age(asOf: string | undefined, time: string | undefined): string {
  if (asOf === undefined || time === undefined) return "";
  const seconds = Math.max(0, (Date.parse(time) - Date.parse(asOf)) / 1000);
  return ` (glibc's figures are from ${seconds.toFixed(1)} s earlier: not raised as a warning)`;
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
