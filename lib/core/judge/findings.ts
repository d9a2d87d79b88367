/**
 * Findings: the verdict, in plain words, with the numbers behind it. Each rule is small and
 * documented in the README's table; thresholds are here, named.
 */
import { formatBytes } from "../base/units";
import { nativeHeap, nativeUnclassifiedBytes } from "../model/figures";
import type { AllocatorState, Breakdown, Finding, Snapshot } from "../model/types";
import { servingAllocator } from "../model/views";
import { jemallocFindings, mimallocFindings, tcmallocFindings } from "./allocator-findings";
import type { Baseline } from "./baseline";
import { type FindingContext, MiB, pct } from "./finding-base";
import { glibcFindings } from "./glibc-findings";
import { leakFinding } from "./leak-finding";

export { FINDING_IDS } from "../model/types";
export { type FindingContext, glibcFreeWorthConfirming } from "./finding-base";
export { recommendedArenaMax } from "./glibc-findings";

/** Usage at or above this share of the cgroup limit is "near". */
const NEAR_LIMIT = 0.9;
const LAZY_MIN = 16 * MiB;
const LAZY_SHARE = 0.1;
const UNATTRIBUTED_MIN = 64 * MiB;
const UNATTRIBUTED_SHARE = 0.25;

const preloadNames: Array<[RegExp, string]> = [
  [/jemalloc/, "jemalloc"],
  [/tcmalloc/, "tcmalloc"],
  [/mimalloc/, "mimalloc"],
];

export function findings(s: Snapshot, b: Breakdown | undefined, ctx: FindingContext): Finding[] {
  const out: Finding[] = [];
  const rss = s.process?.rssBytes;
  const heap = servingAllocator(s);

  glibcFindings(out, s, b, rss, heap, ctx);
  jemallocFindings(out, b, rss, heap, ctx);
  tcmallocFindings(out, b, rss, heap, ctx);
  mimallocFindings(out, rss, heap, ctx);
  preloadFindings(out, heap, ctx.env?.LD_PRELOAD);
  cgroupFindings(out, s, rss);
  leakFinding(out, ctx.trend, ctx.trendCurrent !== false, s.time, rss, ctx.sites, heap);
  baselineFindings(out, s, ctx.baseline);
  pageFindings(out, s, rss);
  if (b && rss !== undefined) unattributedFinding(out, s, b, rss);
  return out;
}

/** LD_PRELOAD names an allocator that does not serve malloc: the preload is not in effect. */
function preloadFindings(out: Finding[], heap: AllocatorState | undefined, preload: string | undefined): void {
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
}

/** The cgroup's limit: V8 allowed above it, use near it, OOM kills in it. */
function cgroupFindings(out: Finding[], s: Snapshot, rss: number | undefined): void {
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
}

/** What RSS overstates or hides: external memory above it, lazily freed pages in it, swapped pages out of it. */
function pageFindings(out: Finding[], s: Snapshot, rss: number | undefined): void {
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
}

/** A large remainder, above or below RSS, with what could explain it. */
function unattributedFinding(out: Finding[], s: Snapshot, b: Breakdown, rss: number): void {
  if (Math.abs(b.unattributedBytes) >= UNATTRIBUTED_MIN && Math.abs(b.unattributedBytes) >= rss * UNATTRIBUTED_SHARE) {
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
        : `${formatBytes(b.unattributedBytes)} of RSS (${pct(b.unattributedBytes, rss)}) is not explained by V8, ${readText} or the kernel's file and shared mappings: other threads' V8 heaps (workers), heap pages V8's collector freed but has not returned to the kernel yet (V8 does not count them), an allocator heapstate cannot see (one inside a Rust addon), or mmap by native code. The deep tier lists the regions.${boundText}`,
      evidence: {
        unattributedBytes: b.unattributedBytes,
        rssBytes: rss,
        ...(bound ? { glibcFreeAtMostBytes: bound.atMostBytes } : {}),
      },
    });
  }
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
