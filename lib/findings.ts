/**
 * Findings: the verdict, in plain words, with the numbers behind it. Each rule is small and
 * documented in the README's table; thresholds are here, named.
 */
import { glibcFreeResident } from "./breakdown";
import type { Breakdown, Finding, Snapshot } from "./types";
import { formatBytes } from "./units";

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

/** Every finding id, for metrics that keep one series per id. */
export const FINDING_IDS = [
  "glibc-retains-freed-memory",
  "preload-not-serving-malloc",
  "v8-limit-above-cgroup-limit",
  "near-cgroup-limit",
  "cgroup-oom-kills",
  "external-above-rss",
  "lazy-free-in-rss",
  "swap-in-use",
  "high-unattributed",
] as const;

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
  env?: NodeJS.ProcessEnv;
}

export function findings(s: Snapshot, b: Breakdown | undefined, ctx: FindingContext): Finding[] {
  const out: Finding[] = [];
  const rss = b?.rssBytes ?? s.process?.rssBytes;
  const heap = s.heap;

  const free = glibcFreeResident({ heap, v8: s.v8, process: s.process, regions: s.regions });
  if (free && rss !== undefined && free.bytes >= RETAINED_MIN && free.bytes >= rss * RETAINED_SHARE) {
    out.push({
      id: "glibc-retains-freed-memory",
      severity: "warn",
      message: `glibc is keeping about ${formatBytes(free.bytes)} of freed memory resident (${pct(free.bytes, rss)} of RSS); trim() would give about that much back. If it keeps coming back: cap arenas with MALLOC_ARENA_MAX=2, or run with jemalloc through LD_PRELOAD.`,
      evidence: {
        freeResidentBytes: free.bytes,
        freeResidentSource: free.source,
        fordblks: heap?.pages?.freeBytes ?? "unknown",
        rssBytes: rss,
        ...(heap?.arenas !== undefined ? { arenas: heap.arenas } : {}),
      },
    });
  }

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
    out.push({
      id: "high-unattributed",
      severity: "info",
      message: negative
        ? `The parts add up to ${formatBytes(-b.unattributedBytes)} more than RSS: an allocator counts memory that is reserved or allocated but not resident (untouched pages).`
        : `${formatBytes(b.unattributedBytes)} of RSS (${pct(b.unattributedBytes, b.rssBytes)}) is not explained by V8, the allocator or the kernel's file and shared mappings${heap ? "" : " (the allocator could not be read)"}: other threads' V8 heaps, another allocator, or mmap by native code. The deep tier lists the regions.`,
      evidence: { unattributedBytes: b.unattributedBytes, rssBytes: b.rssBytes },
    });
  }
  return out;
}
