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

/** What has a clock of this thread's CPU time (µs; NaN when refused): the addon's CLOCK_THREAD_CPUTIME_ID. */
export interface ThreadCpuClock {
  threadCpuMicros?(): number;
}

/** Where a read began, for {@link costSince}: the wall clock and the thread's CPU clock (NaN without one). */
export function threadCpu(cpu: ThreadCpuClock | undefined): number {
  return cpu?.threadCpuMicros?.() ?? Number.NaN;
}

/**
 * What a read cost (µs): the CPU time this thread spent on it, or its wall time when that is less
 * or when there is no thread clock. On a loaded machine a thread descheduled mid-read shows a wall
 * time many times what the read itself costs (a 0.2 ms glibc walk read 10 ms under load), and the
 * back-off would then keep a cheap walk's figures for 10 s. The process's CPU time is no better: it
 * counts V8's compiler and GC threads running meanwhile. The thread's own CPU time is the read's
 * own work, so a walk that is costly backs off as before. Two numbers, not an object: a reading
 * allocates as little as it can.
 */
export function costSince(wallStart: number, cpuStart: number, cpu: ThreadCpuClock | undefined): number {
  const wall = nowMicros() - wallStart;
  const used = threadCpu(cpu) - cpuStart;
  return Math.max(0, Number.isFinite(used) && used < wall ? used : wall);
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
  private cpuNext = true;

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

  /**
   * Whether the next read is to be timed by the thread's CPU clock as well (see {@link record}).
   * The first is: nothing is known of the read yet.
   */
  get wantsCpuClock(): boolean {
    return this.cpuNext;
  }

  /**
   * Records a read that began at `wallStart` (and at `cpuStart` on `cpu`, when it was asked). The
   * wall clock costs no system call, the thread's CPU clock one at each end (two of the ten a
   * fast reading made under glibc); a wall time below `freeBelowMicros` bounds the CPU time as well, so a
   * cheap read is timed by the wall clock alone. A longer wall time may be the thread descheduled
   * on a busy machine rather than the read (a 0.2 ms walk read 10 ms under CI's load): it is not
   * recorded, and the next read is timed by the CPU clock too, until one is cheap again. A read that
   * is really costly is thus repeated once before its back-off holds it.
   */
  record(wallStart: number, cpuStart: number, cpu: ThreadCpuClock | undefined): void {
    if (cpu !== undefined) {
      const cost = costSince(wallStart, cpuStart, cpu);
      this.ran(cost);
      this.cpuNext = cost >= this.policy.freeBelowMicros;
      return;
    }
    const wall = nowMicros() - wallStart;
    if (wall < this.policy.freeBelowMicros) this.ran(Math.max(0, wall));
    else this.cpuNext = true;
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
