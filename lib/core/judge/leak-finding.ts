/**
 * native-unclassified-growing: a leak V8 cannot see, found by the trend of the native heap no one
 * claims, and named, where the reading carries native allocation sites, by the code that grew.
 */
import { formatBytes } from "../base/units";
import type { FindingEvidence } from "../model/evidence";
import type { AllocatorState, Finding } from "../model/types";
import { type FindingContext, MiB } from "./finding-base";
import type { Trend } from "./trend";

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
export function leakFinding(
  out: Finding[],
  trend: Trend | undefined,
  current: boolean,
  time: string,
  rss: number | undefined,
  sites: FindingContext["sites"],
  heap: AllocatorState | undefined,
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
  const evidence: FindingEvidence["native-unclassified-growing"] = {
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
    message: `The native heap no one claims (native-unclassified) grew steadily by ${formatBytes(trend.growthBytes)} ${when} (${trend.points} readings, R² ${trend.r2}), and still grows over the last ${recent.windowSeconds} s: about ${formatBytes(trend.ratePerHourBytes)} an hour${resident}. A leak V8's heap snapshots cannot see: in an addon, a library or Node's own native structures. ${whichCode(sites, evidence, heap)}`,
    evidence,
  });
}

/** Sites no owner's figure claims: an addon's without a reporter, or unclassified. */
const unclaimed = (owner: string) => owner === "addon" || owner === "unclassified";

/**
 * What the native allocation sites say of the leak, said and put in the evidence: the sites that
 * grew since the last reading that had them (by more than twice the change's ±), else the largest
 * unclaimed sites now; without sites, how to get them.
 */
function whichCode(
  sites: FindingContext["sites"],
  evidence: FindingEvidence["native-unclassified-growing"],
  heap: AllocatorState | undefined,
): string {
  const grew = (sites?.changes ?? [])
    .filter((c) => unclaimed(c.owner) && c.delta !== undefined && c.delta > 2 * (c.plusMinus ?? 0) && c.delta > 0)
    .slice(0, 3);
  if (sites?.since !== undefined && grew.length > 0) {
    const list = grew.map((c) => `${c.site} +${formatBytes(c.delta)} ± ${formatBytes(c.plusMinus)}`);
    evidence.grownSites = list.join("; ");
    evidence.sitesSince = sites.since;
    return `By the allocator's samples, the sites that grew since ${sites.since}: ${list.join("; ")}. registerMemoryReporter for that code, once known, keeps its memory claimed.`;
  }
  const largest = (sites?.now.sites ?? []).filter((x) => unclaimed(x.owner)).slice(0, 3);
  if (largest.length > 0) {
    const list = largest.map((x) => {
      const f = x.frames[0];
      return `${f?.symbol ?? f?.address ?? "?"}${f?.library ? ` (${f.library})` : ""} ${formatBytes(x.bytes)} ± ${formatBytes(x.plusMinusBytes)}`;
    });
    evidence.largestSites = list.join("; ");
    return `By the allocator's samples, the unclaimed sites holding most now: ${list.join("; ")} (a later reading with sites says which grew).`;
  }
  return `${howToSites(heap)} registerMemoryReporter for the addons in use names whose it is; setBaseline() and diff(baseline(), collect()) show what else grew.`;
}

/** How this process can have its native allocation sites read, by the allocator serving malloc. */
function howToSites(heap: AllocatorState | undefined): string {
  const ask = 'collect({ tier: "deep", nativeSites: true }) (or heapstate --pid P --sites through the agent)';
  if (heap?.allocator === "jemalloc" && heap.config?.prof === true)
    return `${ask} names the code that allocated it from jemalloc's profile, on here.`;
  if (heap?.allocator === "jemalloc")
    return `Restarted with MALLOC_CONF=prof:true,prof_active:false,lg_prof_sample:19 (jemalloc's sampled profile; prof.active switched on when wanted), ${ask} names the code that allocated it.`;
  if (heap?.allocator === "tcmalloc")
    return `Restarted with TCMALLOC_SAMPLE_PARAMETER=524288 (gperftools' full libtcmalloc.so.4; tcmalloc_minimal does not sample), ${ask} names the code that allocated it.`;
  if (heap?.allocator === "glibc")
    return `Restarted with heapstate's sampler in front of glibc's malloc (LD_PRELOAD=$(npx heapstate sampler-path), one sample per 512 KiB), ${ask} names the code that allocated it (docs/diagnosis.md).`;
  return `Restarted with jemalloc preloaded and sampling (LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=prof:true,lg_prof_sample:19), ${ask} names the code that allocated it (docs/diagnosis.md).`;
}
