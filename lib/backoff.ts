/**
 * How often a costly read may be repeated: at most a share of one core (1%), and never more often
 * than a floor once it is costly at all. glibc's walk of its free lists holds each arena's lock
 * (20 ms with 500 k free chunks, stalling other threads' mallocs), and reading smaps walks every
 * mapping; both back off by their own measured cost. Time comes from an injected clock, so the
 * policy is tested without sleeping.
 */

/** Milliseconds from an arbitrary origin, monotonic (performance.now in production). */
export type Clock = () => number;

export interface BackoffPolicy {
  /** Share of one core the read may use, on average (0.01: 1%). */
  budget: number;
  /** A read that cost less than this (µs) is simply repeated: it cannot matter. */
  freeBelowMicros: number;
  /** Once costly, never repeated sooner than this (ms). */
  minIntervalMs: number;
}

export const DEFAULT_POLICY: BackoffPolicy = { budget: 0.01, freeBelowMicros: 1000, minIntervalMs: 10_000 };

export class Backoff {
  private lastAtMs: number | undefined;
  private lastCostMicros = 0;

  constructor(
    private readonly clock: Clock = () => performance.now(),
    readonly policy: BackoffPolicy = DEFAULT_POLICY,
  ) {}

  /** How long after the last read the next may run (ms): 0 while reads are cheap. */
  intervalMs(): number {
    if (this.lastCostMicros < this.policy.freeBelowMicros) return 0;
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

  /** The cost of the last read (µs), for what readings say about themselves. */
  get lastCost(): number {
    return this.lastCostMicros;
  }
}
