/**
 * A ring buffer of compact snapshots, read on a timer: what the /debug/memory chart and
 * `?format=json&history=1` show. The timer is unref'd (it never keeps a process alive). Its cost is
 * bounded twice: glibc's walk backs off by its own cost (collect()), and when a standard reading
 * (smaps_rollup, a page-table walk) costs more than 1% of the interval, the sampler reads the fast
 * tier instead and tries the chosen one again after 2, 4, … 64 intervals.
 */
import {
  collectRepeated,
  type Finding,
  type FindingId,
  is,
  keyFigures,
  PeakConsumer,
  partKey,
  type Snapshot,
  TIERS,
  type Tier,
} from "../core";

/** One sample: the breakdown of RSS at a moment. */
export interface Sample {
  time: string;
  tier: Tier;
  rssBytes?: number;
  /** Breakdown part name → bytes (only the parts measured in that reading). */
  parts: Record<string, number>;
  unattributedBytes?: number;
  /** The serving allocator's allocated bytes (absent under mimalloc 2.0, which has none). */
  allocatedBytes?: number;
  /** mimalloc's committed bytes, where there is no allocated figure: never labelled allocated. */
  committedBytes?: number;
  /** The native heap no one claims (native-unclassified): what the leak finding follows. */
  nativeUnclassifiedBytes?: number;
  /** The peak RSS since the previous sample (with resetPeak), else since the last reset or the process start. */
  peakRssBytes?: number;
  /** The findings of that reading, by id and severity (their messages are in the snapshot); absent when it judged none. */
  findings?: Array<{ id: FindingId; severity: Finding["severity"] }>;
  costMicros: number;
}

export interface SamplerOptions {
  /** Milliseconds between readings (default 5000, at least 100, below 2³¹). */
  intervalMs?: number;
  /** Samples kept (default 360: half an hour at 5 s; at most 100 000). */
  size?: number;
  /** Tier of each reading (default "standard"; see the class comment for the 1% bound). */
  tier?: Tier;
  /**
   * Reset the process's peak RSS (VmHWM) at each sample, so each sample's `peakRssBytes` is the
   * peak since the previous one (default false: the reset is process-wide; other readers of
   * VmHWM then see the peak since the last sample).
   */
  resetPeak?: boolean;
}

export interface Sampler {
  readonly intervalMs: number;
  readonly size: number;
  /** Oldest first. */
  samples(): Sample[];
  /** The last full snapshot read. */
  latest(): Snapshot | undefined;
  readonly running: boolean;
  stop(): void;
}

const BUDGET = 0.01;

export function compact(s: Snapshot): Sample {
  const parts: Record<string, number> = {};
  for (const p of s.breakdown?.parts ?? []) parts[partKey(p)] = p.bytes;
  const k = keyFigures(s);
  const sample: Sample = {
    time: k.time,
    tier: k.tier,
    parts,
    ...(s.findings ? { findings: s.findings.map((f) => ({ id: f.id, severity: f.severity })) } : {}),
    costMicros: s.costMicros,
  };
  if (k.rssBytes !== undefined) sample.rssBytes = k.rssBytes;
  if (k.unattributedBytes !== undefined) sample.unattributedBytes = k.unattributedBytes;
  if (k.nativeHeap?.counter === "allocated") sample.allocatedBytes = k.nativeHeap.bytes;
  if (k.nativeHeap?.counter === "committed") sample.committedBytes = k.nativeHeap.bytes;
  if (k.nativeUnclassifiedBytes !== undefined) sample.nativeUnclassifiedBytes = k.nativeUnclassifiedBytes;
  // The sampler follows peaks between its samples: a peak of another window is not this sample's.
  if (k.peakSince !== undefined && k.peakRssBytes !== undefined) sample.peakRssBytes = k.peakRssBytes;
  return sample;
}

export const SAMPLER_KEYS = ["intervalMs", "size", "tier", "resetPeak"] as const;

/** Checks sampler options without starting one (createHandler checks its `sampler` option at construction). */
export function samplerOptions(
  options: unknown,
  where = "startSampler(options)",
): { intervalMs: number; size: number; tier: Tier; resetPeak: boolean } {
  const o = is.optionsObject(where, options, SAMPLER_KEYS);
  return {
    intervalMs: is.intervalMs(where, "intervalMs", o.intervalMs, 5000, 100),
    size: is.integer(where, "size", o.size, 360, 1, 100_000),
    tier: is.oneOf(where, "tier", o.tier, "standard", TIERS),
    resetPeak: is.bool(where, "resetPeak", o.resetPeak, false),
  };
}

/**
 * Starts reading every `intervalMs` into a ring buffer of `size` samples.
 * @example
 * const sampler = startSampler({ intervalMs: 5000, size: 720 });
 * // … later
 * sampler.stop();
 */
export function startSampler(options?: SamplerOptions): Sampler {
  const { intervalMs, size, tier, resetPeak } = samplerOptions(options);
  const peaks = new PeakConsumer(resetPeak);
  const ring: Sample[] = [];
  let latest: Snapshot | undefined;
  let running = true;
  let current: Tier = tier;
  // Intervals to wait before the chosen tier is tried again, and those left.
  let wait = 1;
  let due = 0;

  const read = () => {
    try {
      const s = collectRepeated({ tier: current });
      peaks.take(s);
      latest = s;
      ring.push(compact(s));
      if (ring.length > size) ring.splice(0, ring.length - size);
      // Fall back to the fast tier while the chosen one costs more than 1% of the interval, and
      // try the chosen tier again after 2, 4, … 64 intervals while it stays too costly (never
      // every other sample: a history that alternates tiers alternates what it can show).
      const budget = intervalMs * 1000 * BUDGET;
      if (current === tier && tier !== "fast") {
        if (s.costMicros > budget) {
          current = "fast";
          wait = Math.min(64, wait * 2);
          due = wait;
        } else {
          wait = 1;
        }
      } else if (current !== tier && --due <= 0) {
        current = tier;
      }
    } catch {
      // collect() turns unreadable sources into warnings; anything else must not kill the timer.
    }
  };
  read();
  const timer = setInterval(read, intervalMs);
  timer.unref();
  return {
    intervalMs,
    size,
    samples: () => ring.slice(),
    latest: () => latest,
    get running() {
      return running;
    },
    stop() {
      clearInterval(timer);
      peaks.close();
      running = false;
    },
  };
}
