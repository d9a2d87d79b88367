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
import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads";
import { nowMicros } from "../base/backoff";
import { describeType, errorText, isHeapstateError } from "../base/errors";
import * as is from "../base/validate";
import { type Claim, REPORTER_KINDS, type ReporterKind, type Warning, type WarningSource } from "../model/types";

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

function byteFigure(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER
    ? Math.round(v)
    : undefined;
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

/**
 * Reporters registered in worker threads reach the main thread's readings over a BroadcastChannel
 * (one process: nothing leaves it). A worker with reporters says hello (again every 5 s until it
 * is first asked, in case the main thread was not listening yet); each main-thread reading then
 * asks, and uses the answers to the previous reading's ask, with their time (`asOf`): like
 * reportWorkerHeap, a reading shows the figures of the previous reading's request. A worker that
 * did not answer it (exited, or busy) is left out of that reading. In the main thread's reading a
 * worker's claims are named `<name> (worker <threadId>)`; its ArrayBuffers are that worker's
 * isolate's, which the main isolate's memoryUsage().arrayBuffers does not count, so they are shown
 * as malloc memory there.
 */
const CHANNEL = "heapstate:reporters";
/** A worker's answer older than this is dropped from the main thread's readings. */
const WORKER_CLAIMS_MAX_AGE_MS = 60_000;
const HELLO_EVERY_MS = 5000;

let workerChannel: BroadcastChannel | undefined;

/** In a worker: answer the main thread's asks with this worker's claims, and say hello until asked. */
function answerMainThread(registry: ReporterRegistry): void {
  if (workerChannel) return;
  const ch = new BroadcastChannel(CHANNEL);
  ch.unref();
  workerChannel = ch;
  let hello: NodeJS.Timeout | undefined = setInterval(() => ch.postMessage({ hello: threadId }), HELLO_EVERY_MS);
  hello.unref();
  ch.postMessage({ hello: threadId });
  ch.onmessage = (event) => {
    const data = (event as { data?: unknown }).data as { ask?: unknown } | undefined;
    if (data?.ask !== true) return;
    if (hello) {
      clearInterval(hello);
      hello = undefined;
    }
    const claims = registry.call([]);
    ch.postMessage({ threadId, time: new Date().toISOString(), claims });
  };
}

interface WorkerAnswer {
  time: string;
  at: number;
  claims: Claim[];
}

let mainChannel: BroadcastChannel | undefined;
const fromWorkers = new Map<number, WorkerAnswer>();
let workersSeen = false;

/** A worker's answer, read field by field: it is another thread's message, checked as input. */
function readAnswer(data: unknown): { threadId: number; answer: WorkerAnswer } | undefined {
  if (data === null || typeof data !== "object") return undefined;
  const d = data as { threadId?: unknown; time?: unknown; claims?: unknown; hello?: unknown };
  if (typeof d.hello === "number") {
    workersSeen = true;
    return undefined;
  }
  if (
    typeof d.threadId !== "number" ||
    !Number.isSafeInteger(d.threadId) ||
    typeof d.time !== "string" ||
    !Number.isFinite(Date.parse(d.time)) ||
    !Array.isArray(d.claims)
  )
    return undefined;
  const claims: Claim[] = [];
  for (const c of d.claims.slice(0, 64) as Array<Partial<Claim>>) {
    const allocated = byteFigure(c?.allocatedBytes);
    const resident = c?.residentBytes === undefined ? undefined : byteFigure(c.residentBytes);
    if (typeof c?.name !== "string" || allocated === undefined || !REPORTER_KINDS.includes(c.kind as ReporterKind))
      continue;
    if (c.kind === "mapped" && resident === undefined) continue;
    claims.push({
      name: `${c.name.slice(0, 64)} (worker ${d.threadId})`,
      // That worker's ArrayBuffers are not in this isolate's arrayBuffers: malloc memory here.
      kind: c.kind === "array-buffers" ? "malloc" : (c.kind as ReporterKind),
      allocatedBytes: allocated,
      ...(resident !== undefined ? { residentBytes: resident } : {}),
      asOf: d.time,
    });
  }
  workersSeen = true;
  return { threadId: d.threadId, answer: { time: d.time, at: Date.now(), claims } };
}

/** In the main thread: the workers' claims answered since the last ask, and a new ask. */
export function workerClaims(): Claim[] {
  if (!isMainThread) return [];
  if (!mainChannel) {
    const ch = new BroadcastChannel(CHANNEL);
    ch.unref();
    ch.onmessage = (event) => {
      const got = readAnswer((event as { data?: unknown }).data);
      if (got) fromWorkers.set(got.threadId, got.answer);
    };
    mainChannel = ch;
    // The first reading asks whoever is there: a worker's hello sent before this channel existed
    // was not heard.
    lastAsk = Date.now();
    ch.postMessage({ ask: true });
    return [];
  }
  if (!workersSeen) return [];
  // The answers to the previous ask (a worker that exited, or is too busy to answer between two
  // readings, is left out), and never older than a minute.
  const now = Date.now();
  const out: Claim[] = [];
  for (const [id, a] of fromWorkers) {
    if (a.at < lastAsk || now - a.at > WORKER_CLAIMS_MAX_AGE_MS) fromWorkers.delete(id);
    else out.push(...a.claims);
  }
  lastAsk = now;
  mainChannel.postMessage({ ask: true });
  return out;
}

let lastAsk = 0;

/** A returned value in a message: its JSON (cut), or its type when it has none or cannot be read. */
function describe(v: unknown): string {
  try {
    const text = JSON.stringify(v);
    return text === undefined ? String(v) : text.slice(0, 80);
  } catch {
    return describeType(v);
  }
}

/** The part of a worker_threads Worker this needs (Node ≥ 22.16 and 24 have getHeapStatistics()). */
interface WorkerLike {
  threadId: number;
  getHeapStatistics?: () => Promise<{ total_physical_size: number; total_heap_size: number }>;
  once(event: "exit", listener: () => void): unknown;
}

/**
 * Reports a worker thread's V8 heap, which the main thread's figures do not include: its resident
 * pages (total_physical_size) become a part of RSS of their own (`reported`, kind "mapped": V8 maps
 * its heap itself). worker.getHeapStatistics() answers asynchronously, so each reading shows the
 * figure of the previous one's request and says how old it is; the first reading after this call
 * has none yet. Unregisters itself when the worker exits, and as soon as the worker API fails
 * (a stopping worker); a worker that has already exited is refused (INVALID_OPTION: its exit would
 * never unregister it). Needs a Node whose workers have getHeapStatistics() (22.16 and later, 24):
 * on others it throws INVALID_OPTION saying so.
 * @example
 * const worker = new Worker("./work.js");
 * reportWorkerHeap(worker); // "worker 1" in the breakdown
 */
export function reportWorkerHeap(worker: unknown, options?: { name?: string }): () => void {
  const at = "reportWorkerHeap(worker, options)";
  let w: WorkerLike;
  let threadId: number;
  try {
    w = worker as WorkerLike;
    if (w === null || typeof w !== "object" || typeof w.threadId !== "number" || typeof w.once !== "function") {
      throw is.invalidOption(at, `worker must be a worker_threads Worker, ${is.received(worker)}`);
    }
    if (typeof w.getHeapStatistics !== "function") {
      throw is.invalidOption(
        at,
        `this Node (${process.version}) has no worker.getHeapStatistics() (Node 22.16 and 24 have it): a worker's heap cannot be read from outside it here; call registerMemoryReporter inside the worker instead`,
      );
    }
    threadId = w.threadId;
  } catch (error) {
    if (isHeapstateError(error)) throw error;
    throw is.invalidOption(at, `worker could not be read (${errorText(error, 200)})`);
  }
  // Node sets threadId to -1 once the worker has exited: its "exit" event will not come again.
  if (threadId < 0) throw is.invalidOption(at, "the worker has already exited: there is no heap to report");
  const o = is.optionsObject(at, options, ["name"]);
  const name = is.text(at, "name", o.name, `worker ${threadId}`);
  let last: MemoryReport | undefined;
  let pending = false;
  let stopped = false;
  let unregister: () => void = () => {};
  const stop = () => {
    stopped = true;
    last = undefined;
    unregister();
  };
  const refresh = () => {
    if (pending || stopped) return;
    const time = new Date().toISOString();
    let asked: Promise<{ total_physical_size: number; total_heap_size: number }>;
    try {
      asked = (w.getHeapStatistics as NonNullable<WorkerLike["getHeapStatistics"]>)();
      pending = true;
      asked
        .then((h) => {
          if (!stopped) last = { allocatedBytes: h.total_heap_size, residentBytes: h.total_physical_size, asOf: time };
        })
        // The worker is gone or stopping (ERR_WORKER_NOT_RUNNING), or the API failed: nothing to claim, ever.
        .catch(stop)
        .finally(() => {
          pending = false;
        });
    } catch {
      stop(); // the worker API threw at once: the same
    }
  };
  unregister = registerMemoryReporter(
    name,
    () => {
      const report = last;
      refresh();
      return report;
    },
    { kind: "mapped" },
  );
  try {
    w.once("exit", stop);
  } catch (error) {
    stop();
    throw is.invalidOption(at, `the worker's "exit" event could not be listened to (${errorText(error, 200)})`);
  }
  refresh();
  return stop;
}
