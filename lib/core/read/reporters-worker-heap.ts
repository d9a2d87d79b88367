/** reportWorkerHeap(): a worker thread's V8 heap, which the main thread's figures do not include, as a reporter. */
import { errorText, isHeapstateError } from "../base/errors";
import * as is from "../base/validate";
import { type MemoryReport, registerMemoryReporter } from "./reporters";

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
