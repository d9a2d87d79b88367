/** jemalloc's and tcmalloc's own waste, where it is large: what their decay or release left, and what no setting returns. */
import { formatBytes } from "../base/units";
import type { AllocatorState, Breakdown, Finding } from "../model/types";
import { type FindingContext, glibcFreeWorthConfirming, pct } from "./finding-base";

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
export function jemallocFindings(
  out: Finding[],
  b: Breakdown | undefined,
  rss: number | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  if (heap?.allocator !== "jemalloc" || !b || rss === undefined) return;
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
export function tcmallocFindings(
  out: Finding[],
  b: Breakdown | undefined,
  rss: number | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  if (heap?.allocator !== "tcmalloc" || !heap.servesMalloc || !b || rss === undefined) return;
  const free = heap.pages?.dirtyBytes;
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

/**
 * mimalloc 2.0's freed memory kept committed and resident: free spans of its segments and segments
 * freed whole (its cache), measured from its segment headers and pagemap, and held by every reading
 * of the last second. It decommits them `decommit_delay` ms after their freeing (25 by default) only
 * when the segment's thread frees or allocates there again, so a quiet segment keeps them. The
 * remedy, applied in test/truth/remedies.test.ts to two shapes: MIMALLOC_DECOMMIT_DELAY=0, under
 * which a freed span is decommitted at once. trim() (mi_collect(true)) surely returns the cached
 * segments (its promise); free spans of segments in use only where it frees a page (none to 58 % of
 * them across runs), which is said and not promised.
 */
export function mimallocFindings(
  out: Finding[],
  rss: number | undefined,
  heap: AllocatorState | undefined,
  ctx: FindingContext,
): void {
  const kept = ctx.mimallocKept;
  if (heap?.allocator !== "mimalloc" || !heap.servesMalloc || rss === undefined || !kept) return;
  if (!glibcFreeWorthConfirming(kept.bytes, rss)) return;
  const cached = Math.min(kept.bytes, heap.pages?.releasableBytes ?? 0);
  const delay = (ctx.env?.MIMALLOC_DECOMMIT_DELAY ?? ctx.env?.MIMALLOC_RESET_DELAY)?.trim();
  const preload = ctx.env?.LD_PRELOAD ? " (the LD_PRELOAD as now)" : "";
  const trimSays =
    cached > 0
      ? `trim() returns the ${formatBytes(cached)} of whole segments now; of the free spans in segments still in use, only those of segments where it frees a page, which no figure here predicts.`
      : "trim() returns whole free segments, and of the free spans in segments still in use only those of segments where it frees a page, which no figure here predicts (between none and 60 % of them in heapstate's tests).";
  out.push({
    id: "mimalloc-free-pages-kept",
    severity: "warn",
    message:
      delay === "0"
        ? `mimalloc has kept ${formatBytes(kept.bytes)} of freed memory committed and resident (${pct(kept.bytes, rss)} of RSS; ${kept.readings} readings since ${kept.since}) although MIMALLOC_DECOMMIT_DELAY=0: ${trimSays}`
        : `mimalloc has kept ${formatBytes(kept.bytes)} of freed memory committed and resident (${pct(kept.bytes, rss)} of RSS; ${kept.readings} readings since ${kept.since}): free spans of its segments${cached > 0 ? `, ${formatBytes(cached)} of them whole segments in its cache` : ""}. mimalloc 2.0 decommits freed memory ${delay ? `${delay} ms` : "25 ms"} after its freeing (MIMALLOC_DECOMMIT_DELAY), but only when the thread that owns the segment frees or allocates there again, so a quiet segment keeps it. Start node with MIMALLOC_DECOMMIT_DELAY=0${preload}: a span freed is decommitted at once (a madvise call for each), about ${formatBytes(kept.bytes)} here. ${trimSays}`,
    evidence: {
      rssBytes: rss,
      keptBytes: kept.bytes,
      cachedSegmentBytes: cached,
      since: kept.since,
      readings: kept.readings,
      decommitDelay: delay ?? "default",
    },
  });
}

/** Steady growth of native-unclassified: at least this many readings, this long, this straight a line. */
