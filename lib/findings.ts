/**
 * Findings: the verdict, in plain words, with the numbers behind it. Each rule is small and
 * documented in the README's table; thresholds are here, named.
 */
import type { AllocatorState, Breakdown, BreakdownPart, Finding, PartName, Snapshot } from "./types";

export { FINDING_IDS } from "./types";

import { formatBytes } from "./units";
import { servingAllocator } from "./views";

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

/** Whether glibc free memory of this size would be worth a finding: what asks the kernel to confirm it. */
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
}

export function findings(s: Snapshot, b: Breakdown | undefined, ctx: FindingContext): Finding[] {
  const out: Finding[] = [];
  const rss = b?.rssBytes ?? s.process?.rssBytes;
  const heap = servingAllocator(s);

  glibcFindings(out, b, heap, s.time);

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
        ? ` Up to ${formatBytes(bound.atMostBytes)} of it may be glibc's free memory, which this tier does not measure (${bound.confirm}).`
        : "";
    const readText =
      read.length > 0 ? `the allocators heapstate read (${read.join(", ")})` : "the allocator (it could not be read)";
    out.push({
      id: "high-unattributed",
      severity: "info",
      message: negative
        ? `The parts add up to ${formatBytes(-b.unattributedBytes)} more than RSS: an allocator counts memory that is reserved or allocated but not resident (untouched pages).`
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

function partOf(b: Breakdown | undefined, name: PartName): BreakdownPart | undefined {
  return b?.parts.find((p) => p.name === name);
}

function age(part: BreakdownPart, time: string | undefined): string {
  if (part.asOf === undefined || time === undefined) return "";
  const seconds = Math.max(0, (Date.parse(time) - Date.parse(part.asOf)) / 1000);
  return ` (glibc's figures are from ${seconds.toFixed(1)} s earlier: not raised as a warning)`;
}

/**
 * glibc's free memory: what trim() returns (measured and estimated from evidence), what it cannot
 * (pieces smaller than a page), and, when only an upper bound is known, a hint that says how to
 * measure it. A warning needs measured, fresh figures: a reused glibc reading raises at most info.
 */
function glibcFindings(out: Finding[], b: Breakdown | undefined, heap: AllocatorState | undefined, time: string): void {
  if (heap?.allocator !== "glibc" || !b) return;
  const rss = b.rssBytes;
  const releasable = partOf(b, "native-free-releasable");
  const fragmented = partOf(b, "native-free-fragmented");
  const whole = partOf(b, "native-free");
  const evidence = (p: BreakdownPart): Record<string, number | string> => ({
    rssBytes: rss,
    fordblks: heap.pages?.freeBytes ?? "unknown",
    ...(heap.pages?.dirtyBytes !== undefined ? { freeResidentBytes: heap.pages.dirtyBytes } : {}),
    ...(releasable ? { releasableBytes: releasable.bytes } : {}),
    ...(fragmented ? { fragmentedBytes: fragmented.bytes } : {}),
    ...(heap.arenas !== undefined ? { arenas: heap.arenas } : {}),
    source: p.source,
    ...(p.asOf !== undefined ? { asOf: p.asOf } : {}),
  });
  const severity = (p: BreakdownPart) => (p.asOf === undefined ? "warn" : "info");
  if (releasable && glibcFreeWorthConfirming(releasable.bytes, rss)) {
    out.push({
      id: "glibc-retains-freed-memory",
      severity: severity(releasable),
      message: `glibc keeps about ${formatBytes(releasable.bytes)} of freed memory resident in whole pages (${pct(releasable.bytes, rss)} of RSS); trim() would give about that much back (estimated from malloc_info's free-chunk sizes and the arenas' resident pages, within 25%).${age(releasable, time)}`,
      evidence: evidence(releasable),
    });
  } else if (whole && glibcFreeWorthConfirming(whole.bytes, rss)) {
    out.push({
      id: "glibc-retains-freed-memory",
      severity: severity(whole),
      message: `glibc keeps about ${formatBytes(whole.bytes)} of freed memory resident (${pct(whole.bytes, rss)} of RSS); how much of it trim() can return needs malloc_info (the deep tier).${age(whole, time)}`,
      evidence: evidence(whole),
    });
  }
  if (fragmented && glibcFreeWorthConfirming(fragmented.bytes, rss)) {
    out.push({
      id: "glibc-free-fragmented",
      severity: severity(fragmented),
      message: `glibc keeps ${formatBytes(fragmented.bytes)} of free memory resident in pieces smaller than a page (${pct(fragmented.bytes, rss)} of RSS): trim() cannot return it. Fewer arenas (MALLOC_ARENA_MAX) or another allocator (jemalloc through LD_PRELOAD) can.${age(fragmented, time)}`,
      evidence: evidence(fragmented),
    });
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
