/**
 * The native heap no one claims (native-unclassified), followed across this process's readings:
 * steady growth there is a leak V8's heap snapshots cannot see (an addon, a library, Node's own
 * native structures). Readings are kept at most one per 500 ms, the last 720 of them (six minutes
 * at that pace, an hour at a 5 s sampler), and the trend is a least-squares line through them.
 * Beside it, the line through the most recent readings (the last 60 s, at most 6 readings and at
 * least 3): a warm-up that grew and then stopped leaves a long line that still rises, and only the
 * recent one says the growth has stopped. The process's RSS is followed on the same readings: the
 * native heap's figure counts allocated bytes, which pages never written do not make resident.
 */

export type { Trend } from "../model/evidence";

import type { Trend } from "../model/evidence";

/** The recent line: readings of the last 60 s, at most the last 6, at least the last 3. */
const RECENT_MS = 60_000;
const RECENT_MAX = 6;
const RECENT_MIN = 3;

const MIN_SPACING_MS = 500;
const KEEP = 720;
/**
 * One process's kept readings of native-unclassified and RSS, and the line through them. Each
 * {@link HeapProcess} has its own; a clock that goes back starts it again.
 */
export class UnclassifiedTrend {
  private readonly times: number[] = [];
  private readonly values: number[] = [];
  /** RSS at each kept reading; NaN where the reading had none. */
  private readonly rssValues: number[] = [];
  private version = 0;
  private fitted: { version: number; trend: Trend | undefined } | undefined;

  /** Adds a reading's figure and its RSS (readings closer than 500 ms to the last kept one are skipped). */
  record(time: string, bytes: number, rssBytes?: number): void {
    const t = Date.parse(time);
    if (!Number.isFinite(t)) return;
    const last = this.times.at(-1);
    if (last !== undefined && t - last < MIN_SPACING_MS) return;
    if (last !== undefined && t < last) this.reset(); // the clock went back: start again rather than fit across it
    this.times.push(t);
    this.values.push(bytes);
    this.rssValues.push(rssBytes ?? Number.NaN);
    this.version++;
    if (this.times.length > KEEP) {
      this.times.splice(0, this.times.length - KEEP);
      this.values.splice(0, this.values.length - KEEP);
      this.rssValues.splice(0, this.rssValues.length - KEEP);
    }
  }

  /** The line through the kept readings; undefined with fewer than 3. Fitted again only when a point was added. */
  trend(): Trend | undefined {
    if (this.fitted?.version !== this.version)
      this.fitted = { version: this.version, trend: fitTrend(this.times, this.values, this.rssValues) };
    return this.fitted.trend;
  }

  /** Forgets every reading (a process that wants a fresh start). */
  reset(): void {
    this.times.length = 0;
    this.values.length = 0;
    this.rssValues.length = 0;
    this.version++;
  }
}

/**
 * The long line through all the readings, with the recent line and RSS's slope beside it.
 * Exported for tests.
 */
export function fitTrend(ts: readonly number[], vs: readonly number[], rss?: readonly number[]): Trend | undefined {
  const long = fitLine(ts, vs);
  if (long === undefined) return undefined;
  const n = ts.length;
  const lastT = ts[n - 1] as number;
  let from = n - RECENT_MIN;
  while (from > 0 && n - from < RECENT_MAX && lastT - (ts[from - 1] as number) <= RECENT_MS) from--;
  const recentLine = fitLine(ts.slice(from), vs.slice(from));
  if (recentLine !== undefined)
    long.recent = {
      ratePerHourBytes: recentLine.ratePerHourBytes,
      windowSeconds: recentLine.windowSeconds,
      points: recentLine.points,
    };
  if (rss !== undefined && rss.length === n && rss.every((v) => Number.isFinite(v))) {
    const r = fitLine(ts, rss);
    if (r !== undefined) long.rssRatePerHourBytes = r.ratePerHourBytes;
  }
  return long;
}

/** Least squares through (t ms, v bytes). Exported for tests. */
export function fitLine(ts: readonly number[], vs: readonly number[]): Trend | undefined {
  const n = ts.length;
  if (n < 3) return undefined;
  const t0 = ts[0] as number;
  let st = 0;
  let sv = 0;
  for (let i = 0; i < n; i++) {
    st += ((ts[i] as number) - t0) / 1000;
    sv += vs[i] as number;
  }
  const mt = st / n;
  const mv = sv / n;
  let stt = 0;
  let stv = 0;
  let svv = 0;
  for (let i = 0; i < n; i++) {
    const dt = ((ts[i] as number) - t0) / 1000 - mt;
    const dv = (vs[i] as number) - mv;
    stt += dt * dt;
    stv += dt * dv;
    svv += dv * dv;
  }
  if (stt === 0) return undefined;
  const slope = stv / stt; // bytes per second
  const window = ((ts[n - 1] as number) - t0) / 1000;
  const r2 = svv === 0 ? 0 : (stv * stv) / (stt * svv);
  return {
    ratePerHourBytes: Math.round(slope * 3600),
    growthBytes: Math.round(slope * window),
    windowSeconds: Math.round(window * 10) / 10,
    points: n,
    r2: Math.round(r2 * 1000) / 1000,
    from: new Date(t0).toISOString(),
    to: new Date(ts[n - 1] as number).toISOString(),
  };
}
