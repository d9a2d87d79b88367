/**
 * How often a costly read may be repeated: at most a share of one core (1%), and never more often
 * than a floor once it is costly at all. glibc's walk of its free lists holds each arena's lock
 * (20 ms with 500 k free chunks, stalling other threads' mallocs), and reading smaps walks every
 * mapping; both back off by their own measured cost, and a read that stalled past a bound is not
 * repeated by the back-off. Time comes from an injected clock, so the
 * policy is tested without sleeping.
 */

/** Microseconds on the monotonic clock, for what a read cost (performance.now: no BigInt per call). */
export function nowMicros(): number {
  return Math.round(performance.now() * 1000);
}

/** Milliseconds from an arbitrary origin, monotonic (performance.now in production). */
export type Clock = () => number;

export interface BackoffPolicy {
  /** Share of one core the read may use, on average (0.01: 1%). */
  budget: number;
  /** A read that cost less than this (µs) is simply repeated: it cannot matter. */
  freeBelowMicros: number;
  /** Once costly, never repeated sooner than this (ms). */
  minIntervalMs: number;
  /**
   * A read that cost more than this (µs) is not repeated by the back-off at all: glibc's walk holds
   * the arenas' locks for as long as it runs, so it stalled the service's other threads as long,
   * and at a scrape's rate that would be a latency spike every interval. Only a read that runs
   * regardless (a one-shot reading) measures it again; once it is cheaper, repeats resume.
   */
  stallBoundMicros: number;
}

/** The stall a repeated reading may impose on the service, at most (µs): 20 ms. */
export const STALL_BOUND_MICROS = 20_000;

export const DEFAULT_POLICY: BackoffPolicy = {
  budget: 0.01,
  freeBelowMicros: 1000,
  minIntervalMs: 10_000,
  stallBoundMicros: STALL_BOUND_MICROS,
};

export class Backoff {
  private lastAtMs: number | undefined;
  private lastCostMicros = 0;

  constructor(
    private readonly clock: Clock = () => performance.now(),
    readonly policy: BackoffPolicy = DEFAULT_POLICY,
  ) {}

  /** How long after the last read the next may run (ms): 0 while reads are cheap, Infinity past the stall bound. */
  intervalMs(): number {
    if (this.lastCostMicros < this.policy.freeBelowMicros) return 0;
    if (this.lastCostMicros > this.policy.stallBoundMicros) return Number.POSITIVE_INFINITY;
    return Math.max(this.policy.minIntervalMs, this.lastCostMicros / 1000 / this.policy.budget);
  }

  /** Whether a read may run now. */
  due(): boolean {
    if (this.lastAtMs === undefined) return true;
    return this.clock() - this.lastAtMs >= this.intervalMs();
  }

  /** Records a read that just ran and what it cost. */
  ran(costMicros: number): void {
    this.lastAtMs = this.clock();
    this.lastCostMicros = costMicros;
  }

  /** Whether the last read passed the stall bound: the back-off will not repeat it. */
  get held(): boolean {
    return this.lastCostMicros > this.policy.stallBoundMicros;
  }

  /** The cost of the last read (µs), for what readings say about themselves. */
  get lastCost(): number {
    return this.lastCostMicros;
  }
}
