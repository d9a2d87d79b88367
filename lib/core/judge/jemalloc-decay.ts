/**
 * jemalloc's dirty pages across this process's readings: freed memory jemalloc keeps resident until
 * its decay purges it (`dirty_decay_ms`, 10 s by default). Dirty pages in one reading may be about
 * to be purged; what a verdict may name is what the decay left: the least dirty figure over the
 * last `dirty_decay_ms`, once the readings span that long. Without jemalloc's background thread,
 * decay advances only when the process allocates, so an idle process keeps its dirty pages
 * indefinitely: this is how that is seen, from measured readings, not from a setting.
 */

/** A reading's dirty figure. */
export interface Point {
  t: number;
  dirty: number;
}

const KEEP = 64;
/** One process's dirty figures, the last 64 readings (each {@link HeapProcess} has its own). */
export class DirtyHistory {
  private readonly points: Point[] = [];

  /** Adds a reading's dirty bytes (a clock that went back starts again). */
  record(time: string, dirtyBytes: number): void {
    const t = Date.parse(time);
    if (!Number.isFinite(t)) return;
    const last = this.points.at(-1);
    if (last !== undefined && t < last.t) this.points.length = 0;
    this.points.push({ t, dirty: dirtyBytes });
    if (this.points.length > KEEP) this.points.splice(0, this.points.length - KEEP);
  }

  /** What the decay left by `nowTime` (see {@link persistentDirty}). */
  persistent(nowTime: string, decayMs: number): PersistentDirty | undefined {
    return persistentDirty(nowTime, decayMs, this.points);
  }

  /** Forgets every reading. */
  reset(): void {
    this.points.length = 0;
  }
}

/** What the decay left: the dirty pages kept through the last `decayMs`. */
export interface PersistentDirty {
  /** The least dirty figure among the readings of the last decayMs (and the one just before them). */
  bytes: number;
  /** Since when (ISO time): the earliest reading of that span. */
  since: string;
  /** How many readings the figure is the least of. */
  readings: number;
}

/**
 * The dirty bytes jemalloc kept through its whole decay time, or undefined when the readings do not
 * span `decayMs` yet (or decay is off: a decay time of 0 purges at once, −1 never). Exported for tests.
 */
export function persistentDirty(nowTime: string, decayMs: number, from: readonly Point[]): PersistentDirty | undefined {
  const now = Date.parse(nowTime);
  if (!Number.isFinite(now) || !(decayMs > 0)) return undefined;
  // The readings from the last one at or before now − decayMs onwards: they cover the decay time.
  let start = -1;
  for (let i = from.length - 1; i >= 0; i--) {
    if ((from[i] as Point).t <= now - decayMs) {
      start = i;
      break;
    }
  }
  if (start < 0) return undefined;
  let least = Number.POSITIVE_INFINITY;
  let n = 0;
  for (let i = start; i < from.length; i++) {
    const p = from[i] as Point;
    if (p.t > now) break;
    least = Math.min(least, p.dirty);
    n++;
  }
  return n >= 2 ? { bytes: least, since: new Date((from[start] as Point).t).toISOString(), readings: n } : undefined;
}
