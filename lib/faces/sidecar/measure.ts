/** start() and stop() around a unit of work, in the process that runs it: two readings and the record between them. */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { threadId } from "node:worker_threads";
import {
  keyFigures as coreKeyFigures,
  defaultProcess,
  diff,
  is,
  PeakConsumer,
  readPlan,
  type Snapshot,
  servingAllocator,
  TIERS,
  type Tier,
} from "../../core";
import type { FileRecord, Growth, KeyFigures } from "./types";

/** A reading's key figures (the core's `keyFigures`), as a sidecar file records them. */
export function keyFigures(s: Snapshot): KeyFigures {
  const f = coreKeyFigures(s);
  const k: KeyFigures = { time: f.time };
  const set = <K extends keyof KeyFigures>(key: K, v: KeyFigures[K] | undefined) => {
    if (v !== undefined) k[key] = v;
  };
  set("allocator", servingAllocator(s)?.allocator);
  set("rssBytes", f.rssBytes);
  if (f.nativeHeap) {
    k.nativeHeapBytes = f.nativeHeap.bytes;
    k.nativeHeapSource = `${f.nativeHeap.allocator} ${f.nativeHeap.counter}`;
  }
  set("v8HeapUsedBytes", f.v8HeapUsedBytes);
  set("v8ExternalBytes", f.v8ExternalBytes);
  set("arrayBuffersBytes", f.arrayBuffersBytes);
  set("unattributedBytes", f.unattributedBytes);
  set("peakRssBytes", f.peakRssBytes);
  return k;
}

let gcFunction: (() => void) | undefined;
/** How the collections were had: `exposed` (--expose-gc, as the Vitest plugin sets it) or `flag` (set at run time). */
export let gcVia: "exposed" | "flag" | undefined;

/**
 * A full garbage collection, so Buffers a file dropped are freed before its end reading and do
 * not count as growth. Uses global.gc when exposed, else obtains it at run time.
 */
export function fullGc(): void {
  if (gcFunction === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === "function") {
      gcFunction = g;
      gcVia = "exposed";
    } else {
      setFlagsFromString("--expose-gc");
      gcFunction = runInNewContext("gc") as () => void;
      gcVia = "flag";
    }
  }
  gcFunction();
}

/**
 * A sidecar reading: one-shot (glibc walked afresh: a reused figure would hide the change being
 * measured), and never confirming glibc's free memory from smaps, so that the start and the stop
 * of every file cost and allocate alike.
 */
function reading(tier: Tier): Snapshot {
  return defaultProcess.read(readPlan({ tier }), { reuse: false, confirmGlibc: "never" });
}

/** A measurement under way. */
export interface Measurement {
  name: string;
  startMs: number;
  snapshot: Snapshot;
  tier: Tier;
  gc: boolean;
  /** Follows the peak RSS from start to stop. */
  peaks: PeakConsumer;
}

export interface MeasureOptions {
  /** What to read (default "standard": smaps_rollup gives the exact RSS). */
  tier?: Tier;
  /** A full GC before each reading (default true). */
  gc?: boolean;
  /**
   * Reset the process's peak RSS (VmHWM) at start, so the record's peak is the unit's own (default
   * true: in Vitest's forks pool the process is the file's; in a shared process the peak is the
   * process's since the start, and the record says the file shared it).
   */
  resetPeak?: boolean;
}

/**
 * Starts measuring a unit of work in this process.
 * @example
 * const m = start("test/db.test.js"); await runTests(); records.push(stop(m));
 */
export function start(name: string, options?: MeasureOptions): Measurement {
  const where = "sidecar start(name, options)";
  is.text(where, "name", name === undefined ? null : name);
  const o = is.optionsObject(where, options, ["tier", "gc", "resetPeak"]);
  const gc = is.bool(where, "gc", o.gc, true);
  const resetPeak = is.bool(where, "resetPeak", o.resetPeak, true);
  const tier = is.oneOf(where, "tier", o.tier, "standard", TIERS);
  if (gc) fullGc();
  // Fresh: a glibc walk in its back-off would give the figure of an earlier moment, and a file's
  // native-heap growth would read as 0 (it did, under vitest's threads pool on a loaded machine).
  const snapshot = reading(tier);
  const peaks = new PeakConsumer(resetPeak);
  peaks.take(snapshot);
  return { name, startMs: performance.now(), snapshot, tier, gc, peaks };
}

/** Ends a measurement: the record to send to wherever results are gathered. */
export function stop(m: Measurement): FileRecord {
  if (m.gc) fullGc();
  const end = reading(m.tier);
  m.peaks.take(end);
  m.peaks.close();
  const a = keyFigures(m.snapshot);
  const b = keyFigures(end);
  const growth: Growth = {};
  const grow = (key: keyof Growth) => {
    const x = a[key];
    const y = b[key];
    if (typeof x === "number" && typeof y === "number") growth[key] = y - x;
  };
  grow("rssBytes");
  grow("nativeHeapBytes");
  grow("v8HeapUsedBytes");
  grow("v8ExternalBytes");
  const record: FileRecord = {
    file: m.name,
    pid: process.pid,
    threadId,
    durationMs: Math.round(performance.now() - m.startMs),
    start: a,
    end: b,
    growth,
    topGrowers: diff(m.snapshot, end).topGrowers,
  };
  if (m.gc && gcVia) record.gcVia = gcVia;
  if (end.peak) {
    record.peakRssBytes = end.peak.rssBytes;
    record.peakSince = end.peak.since;
  } else if (b.peakRssBytes !== undefined) record.peakRssBytes = b.peakRssBytes;
  const warnings = [...m.snapshot.warnings, ...end.warnings].map((w) => `${w.code}: ${w.message}`);
  if (warnings.length) record.warnings = [...new Set(warnings)];
  return record;
}
