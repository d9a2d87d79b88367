/** Worker threads' reporters, reaching the main thread's readings over a BroadcastChannel. */
import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads";
import { type Claim, REPORTER_KINDS, type ReporterKind } from "../model/types";

/** A byte figure a reporter (or a worker's message) gave: a finite count ≥ 0, rounded; else undefined. */
export function byteFigure(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER
    ? Math.round(v)
    : undefined;
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
export function answerMainThread(registry: { call(warnings: never[]): Claim[] }): void {
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
