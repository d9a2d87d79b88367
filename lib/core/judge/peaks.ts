/**
 * Peak RSS between one consumer's readings (a sampler's samples, a metrics registry's scrapes, a
 * sidecar's start and stop), not only since the process started. The kernel keeps one peak per
 * process, VmHWM, and resets it to the current RSS when "5" is written to /proc/self/clear_refs.
 * That reset is process-wide, so it is opt-in, and every consumer is told of it: before a reset,
 * the peak so far is folded into each consumer's running peak, so a reset by one consumer never
 * hides a peak from another.
 *
 * A consumer that resets at each of its readings gets the exact peak since its previous reading.
 * One that does not gets the peak since the last reset before its previous reading (or since the
 * process started), and the reading says which (`peak.since`).
 */
import { writeFileSync } from "node:fs";
import { errorCode } from "../base/errors";
import type { Snapshot, Warning } from "../model/types";

/** When the process started, as ISO time (the peak's "since" when nothing was reset). */
const processStart = new Date(Date.now() - process.uptime() * 1000).toISOString();

const consumers = new Set<PeakConsumer>();
let lastReset: string | undefined;
let resetBroken: string | undefined;

function observe(hwm: number): void {
  for (const c of consumers) c.fold(hwm);
}

/** Resets VmHWM; returns why it could not, if it could not (then nothing was reset). */
function resetPeak(time: string): string | undefined {
  if (resetBroken !== undefined) return resetBroken;
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    lastReset = time;
    return undefined;
  } catch (error) {
    resetBroken = `/proc/self/clear_refs could not be written (${errorCode(error)}): peaks are since the process started`;
    return resetBroken;
  }
}

/** One consumer of readings that wants the peak RSS between them. */
export class PeakConsumer {
  private max = 0;
  private since: string;
  private closed = false;

  constructor(private readonly reset: boolean) {
    this.since = lastReset ?? processStart;
    consumers.add(this);
  }

  /** @internal Another reading saw this VmHWM (before a reset). */
  fold(hwm: number): void {
    if (hwm > this.max) this.max = hwm;
  }

  /**
   * Sets `s.peak`: the highest RSS since this consumer's previous reading (when it resets) or
   * since the last reset before it. Needs the reading's VmHWM (status, every tier, this process).
   */
  take(s: Snapshot): void {
    const hwm = s.process?.peakRssBytes;
    if (this.closed || hwm === undefined || s.pid !== process.pid) return;
    observe(hwm);
    s.peak = {
      rssBytes: this.max,
      since: this.since,
      source:
        this.since === processStart
          ? "status VmHWM: the peak since the process started"
          : "status VmHWM, reset through /proc/self/clear_refs, and the peaks other readings saw before their resets",
    };
    this.max = 0;
    if (this.reset) {
      const problem = resetPeak(s.time);
      if (problem === undefined) {
        this.since = s.time;
        return;
      }
      pushOnce(s.warnings, { source: "peak", code: "SOURCE_FAILED", message: problem });
    }
    // Not reset here: the next peak is since the last reset anyone made (VmHWM never went down after it).
    this.since = lastReset ?? processStart;
  }

  /** Stops following resets (a stopped sampler, an unregistered registry). */
  close(): void {
    this.closed = true;
    consumers.delete(this);
  }
}

function pushOnce(warnings: Warning[], w: Warning): void {
  if (!warnings.some((x) => x.code === w.code && x.message === w.message)) warnings.push(w);
}
