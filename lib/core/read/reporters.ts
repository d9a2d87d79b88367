/**
 * Memory reporters: code that knows what it holds (a cache, an addon's pool, a database binding)
 * claims it, so the reading can say who owns the native heap, the way Chromium's dump providers
 * and Firefox's memory reporters do. What no reporter claims stays "native-unclassified".
 *
 * The contract: a reporter is synchronous, cheap (it is called inside every reading of this
 * process) and allocates next to nothing; it returns what it holds now. One that throws, returns
 * something that is not a figure, or takes more than 1 ms, becomes a warning naming it; the
 * reading stands. A reading calls them in registration order and stops calling them once they
 * have cost 5 ms in that reading (the rest are named in a warning): heapstate's cost stays
 * bounded whatever a reporter does.
 */
import { isMainThread } from "node:worker_threads";
import { nowMicros } from "../base/backoff";
import { describeType, errorText } from "../base/errors";
import * as is from "../base/validate";
import { type Claim, REPORTER_KINDS, type ReporterKind, type Warning, type WarningSource } from "../model/types";
import { answerMainThread, byteFigure } from "./reporters-channel";

/** What a reporter says it holds now. */
export interface MemoryReport {
  /** Bytes it holds. For `kind: "malloc"` (the default), bytes it got from malloc (new, calloc, realloc). */
  allocatedBytes: number;
  /** Of those, the bytes resident in RAM, when it knows (required for `kind: "mapped"`). */
  residentBytes?: number;
  /** When the figures were measured, if earlier than now (ISO time): the reading says how old they are. */
  asOf?: string;
}

export interface MemoryReporterOptions {
  /**
   * `malloc` (default): the memory came from the process's malloc (an addon's buffers, a library's
   * structures), so it is inside the native heap and the reading shows it as a child of the native
   * heap's in-use part. `array-buffers`: the bytes are ArrayBuffer or Buffer backing stores of
   * this isolate (a cache of Buffers), which `memoryUsage().arrayBuffers` counts already: they are
   * shown as a share of `native-array-buffers`, never counted twice. `mapped`: the reporter maps
   * its own memory (mmap, a V8 heap of another isolate); its resident bytes are a part of RSS of
   * their own (`reported`).
   */
  kind?: ReporterKind;
}

/** Returns what it holds now, or undefined when it has nothing to say this time. */
export type MemoryReporter = () => MemoryReport | undefined;

interface Entry {
  name: string;
  report: MemoryReporter;
  kind: ReporterKind;
}

/** Per reporter call: more than this is named in a warning. */
const SLOW_MICROS = 1000;
/** Per reading: once the reporters have cost this much, the rest are skipped. */
const BUDGET_MICROS = 5000;

const where = "registerMemoryReporter(name, report, options)";

/**
 * One process's memory reporters (each {@link HeapProcess} has its own; registerMemoryReporter()
 * registers with the default one, which is also the one a worker's main thread asks).
 */
export class ReporterRegistry {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly answersMainThread = false) {}

  /** Registers a reporter (see {@link registerMemoryReporter}); returns the function that unregisters it. */
  register(name: string, report: MemoryReporter, options?: MemoryReporterOptions): () => void {
    if (typeof name !== "string" || !/^[\x20-\x7e]{1,64}$/.test(name)) {
      throw is.invalidOption(where, `name must be 1 to 64 printable ASCII characters, ${is.received(name)}`);
    }
    if (typeof report !== "function")
      throw is.invalidOption(where, `report must be a function, ${is.received(report)}`);
    const o = is.optionsObject(where, options, ["kind"]);
    const kind = is.oneOf(where, "kind", o.kind, "malloc", REPORTER_KINDS);
    if (this.entries.has(name)) {
      throw is.invalidOption(
        where,
        `a reporter named ${JSON.stringify(name)} is already registered (unregister it first)`,
      );
    }
    const entry: Entry = { name, report, kind };
    this.entries.set(name, entry);
    // In a worker thread, the main thread's readings ask for this worker's claims too.
    if (this.answersMainThread && !isMainThread) answerMainThread(this);
    return () => {
      if (this.entries.get(name) === entry) this.entries.delete(name);
    };
  }

  /**
   * Calls every reporter once, within the reading's budget; what goes wrong becomes a warning naming
   * that reporter, and the others' claims stand.
   */
  call(warnings: Warning[]): Claim[] {
    const claims: Claim[] = [];
    if (this.entries.size === 0) return claims;
    const start = nowMicros();
    const skipped: string[] = [];
    for (const r of [...this.entries.values()]) {
      if (nowMicros() - start > BUDGET_MICROS) {
        skipped.push(r.name);
        continue;
      }
      const t = nowMicros();
      const outcome = callOne(r);
      const cost = nowMicros() - t;
      const source: WarningSource = `reporter ${r.name}`;
      const named = `the memory reporter ${JSON.stringify(r.name)}`;
      if (cost > SLOW_MICROS) {
        warnings.push({
          source,
          code: "REPORTER_SLOW",
          message: `${named} took ${(cost / 1000).toFixed(1)} ms (a reporter runs inside every reading: keep it under 1 ms)`,
        });
      }
      if ("claim" in outcome) claims.push(outcome.claim);
      else if ("failed" in outcome)
        warnings.push({ source, code: "REPORTER_FAILED", message: `${named} ${outcome.failed}: it is left out` });
      else if ("invalid" in outcome)
        warnings.push({
          source,
          code: "REPORTER_INVALID",
          message: `${named} returned ${outcome.invalid}, not { allocatedBytes${r.kind === "mapped" ? ", residentBytes" : "?"} } of byte counts: it is left out`,
        });
    }
    if (skipped.length > 0) {
      warnings.push({
        source: "reporters",
        code: "REPORTER_SKIPPED",
        message: `the memory reporters had cost ${BUDGET_MICROS / 1000} ms in this reading; not called: ${skipped.map((n) => JSON.stringify(n)).join(", ")}`,
      });
    }
    return claims;
  }
}

/** The reporters of the default process: registerMemoryReporter() adds to them. */
export const defaultReporters = new ReporterRegistry(true);

/**
 * Registers a reporter under a unique name (1 to 64 printable characters) and returns the function
 * that unregisters it. Say what its bytes are (`kind`): a cache of Buffers holds ArrayBuffer memory,
 * which the reading counts already, so it is `array-buffers`, and its bytes are shown as a share of
 * that, not again.
 * @example
 * const cache = new Map(); // key → Buffer
 * const unregister = registerMemoryReporter(
 *   "image-cache",
 *   () => {
 *     let bytes = 0;
 *     for (const b of cache.values()) bytes += b.byteLength;
 *     return { allocatedBytes: bytes };
 *   },
 *   { kind: "array-buffers" },
 * );
 */
export function registerMemoryReporter(
  name: string,
  report: MemoryReporter,
  options?: MemoryReporterOptions,
): () => void {
  return defaultReporters.register(name, report, options);
}

/** What one reporter's call came to: its claim, nothing to say, or why it is left out. */
type Outcome = { claim: Claim } | { none: true } | { failed: string } | { invalid: string };

/**
 * Calls one reporter and reads what it returned, all inside one guard: the value it returns may be
 * a proxy or an object whose getters throw, and what it throws may be a value whose toString throws.
 * Nothing a reporter does reaches the reading except as this outcome.
 */
function callOne(r: Entry): Outcome {
  let value: unknown;
  try {
    value = r.report();
  } catch (error) {
    return { failed: `threw: ${errorText(error, 200)}` };
  }
  try {
    if (value === undefined) return { none: true };
    if (value === null || typeof value !== "object") return { invalid: describe(value) };
    const v = value as Partial<MemoryReport>;
    // Each field read once: a getter may answer differently each time it is asked.
    const allocatedGiven = v.allocatedBytes;
    const residentGiven = v.residentBytes;
    const asOfGiven = v.asOf;
    const allocated = byteFigure(allocatedGiven);
    const resident = byteFigure(residentGiven);
    if (
      allocated === undefined ||
      (residentGiven !== undefined && resident === undefined) ||
      (r.kind === "mapped" && resident === undefined)
    )
      return { invalid: describe(value) };
    const asOf = typeof asOfGiven === "string" && Number.isFinite(Date.parse(asOfGiven)) ? asOfGiven : undefined;
    return {
      claim: {
        name: r.name,
        kind: r.kind,
        allocatedBytes: allocated,
        ...(resident !== undefined ? { residentBytes: resident } : {}),
        ...(asOf !== undefined ? { asOf } : {}),
      },
    };
  } catch (error) {
    return { failed: `returned a value that could not be read (${errorText(error, 200)})` };
  }
}

/** A returned value in a message: its JSON (cut), or its type when it has none or cannot be read. */
function describe(v: unknown): string {
  try {
    const text = JSON.stringify(v);
    return text === undefined ? String(v) : text.slice(0, 80);
  } catch {
    return describeType(v);
  }
}

export { workerClaims } from "./reporters-channel";
