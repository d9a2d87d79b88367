/** What every finding module shares: the thresholds, the context a reading gives, the words for a share. */

import type { SiteChange } from "../model/diff-sites";
import type { GlibcBase } from "../model/evidence";
import type { AllocatorState, Breakdown, Finding, NativeSites, Snapshot } from "../model/types";
import type { Baseline } from "./baseline";
import type { PersistentDirty } from "./jemalloc-decay";
import type { Trend } from "./trend";

export const MiB = 1024 * 1024;
/** glibc free-but-resident memory worth a trim: at least this much and this share of RSS. */
const RETAINED_MIN = 64 * MiB;
const RETAINED_SHARE = 0.1;

/**
 * Whether memory an allocator holds and the program does not (glibc's free resident memory,
 * jemalloc's dirty pages or slack) is large enough for a finding; for glibc, what asks the kernel
 * to confirm it.
 */
export function glibcFreeWorthConfirming(bytes: number, rss: number | undefined): boolean {
  return bytes >= RETAINED_MIN && (rss === undefined || bytes >= rss * RETAINED_SHARE);
}

export function pct(a: number, b: number): string {
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
  /** mimalloc's free memory that every reading of the last second held (see collect.ts). */
  mimallocKept?: PersistentDirty | undefined;
  /**
   * This reading's native allocation sites, and their change since the last reading of this
   * process that had them (`since` its time), when it asked for them.
   */
  sites?: { now: NativeSites; since?: string; changes?: SiteChange[] } | undefined;
}

/** What every glibc verdict of one reading shares. */
export interface Glibc {
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
