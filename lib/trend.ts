/**
 * The native heap no one claims (native-unclassified), followed across this process's readings:
 * steady growth there is a leak V8's heap snapshots cannot see (an addon, a library, Node's own
 * native structures). Readings are kept at most one per 500 ms, the last 720 of them (six minutes
 * at that pace, an hour at a 5 s sampler), and the trend is a least-squares line through them.
 */

export interface Trend {
  /** Bytes per hour (the fitted slope). */
  ratePerHourBytes: number;
  /** Growth along the line over the window. */
  growthBytes: number;
  windowSeconds: number;
  points: number;
  /** How well a straight line fits (1: exactly). */
  r2: number;
  /** The first and the last reading on the line. */
  from: string;
  to: string;
}

const MIN_SPACING_MS = 500;
const KEEP = 720;
const times: number[] = [];
const values: number[] = [];

/** Adds a reading's figure (readings closer than 500 ms to the last kept one are skipped). */
export function recordUnclassified(time: string, bytes: number): void {
  const t = Date.parse(time);
  if (!Number.isFinite(t)) return;
  const last = times.at(-1);
  if (last !== undefined && t - last < MIN_SPACING_MS) return;
  if (last !== undefined && t < last) {
    // The clock went back: start again rather than fit across it.
    times.length = 0;
    values.length = 0;
  }
  times.push(t);
  values.push(bytes);
  version++;
  if (times.length > KEEP) {
    times.splice(0, times.length - KEEP);
    values.splice(0, values.length - KEEP);
  }
}

/** The line through the kept readings; undefined with fewer than 3. Fitted again only when a point was added. */
export function unclassifiedTrend(): Trend | undefined {
  if (fitted?.version !== version) fitted = { version, trend: fitLine(times, values) };
  return fitted.trend;
}
let version = 0;
let fitted: { version: number; trend: Trend | undefined } | undefined;

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
