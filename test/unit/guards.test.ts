/**
 * The smaller ways a caller's objects could hurt the host, each one a bug once: auto-trim's
 * back-off past the longest timer Node takes, a worker reporter that outlived its worker or let
 * the worker API's throw escape, a fetch handler that rejected instead of answering, an
 * OpenTelemetry provider whose failure surfaced raw.
 */
import { describe, expect, it } from "vitest";
import { nextIntervalMs } from "../../lib/core/act/autotrim";
import { HeapstateError } from "../../lib/core/base/errors";
import { MAX_TIMER_MS } from "../../lib/core/base/validate";
import type { Warning } from "../../lib/core/model/types";
import { defaultReporters, registerMemoryReporter } from "../../lib/core/read/reporters";
import { reportWorkerHeap } from "../../lib/core/read/reporters-worker-heap";
import { createFetchHandler } from "../../lib/faces/http/fetch";
import { registerOtel } from "../../lib/faces/metrics/otel";

function invalidOption(fn: () => unknown): HeapstateError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HeapstateError);
    expect((error as HeapstateError).code).toBe("INVALID_OPTION");
    return error as HeapstateError;
  }
  throw new Error("expected INVALID_OPTION, nothing was thrown");
}

describe("auto-trim's back-off", () => {
  it("doubles up to 16 × the interval asked for, and never past 2³¹ − 1 ms", () => {
    expect(nextIntervalMs(1000, 1000, 0, 64)).toBe(2000);
    expect(nextIntervalMs(16_000, 1000, undefined, 64)).toBe(16_000);
    // The longest interval allowed, then a trim that released nothing: Node would turn 2³² ms into 1 ms.
    for (let i = 0, ms = MAX_TIMER_MS; i < 4; i++) {
      ms = nextIntervalMs(ms, MAX_TIMER_MS, 0, 64);
      expect(ms).toBe(MAX_TIMER_MS);
    }
    expect(nextIntervalMs(2 ** 30, 2 ** 28, 0, 64)).toBe(MAX_TIMER_MS);
    // A good trim resets it.
    expect(nextIntervalMs(8000, 1000, 64, 64)).toBe(1000);
  });
});

/** Whether a reporter of this name is registered: registering it again fails only then. */
function registered(name: string): boolean {
  try {
    registerMemoryReporter(name, () => undefined)();
    return false;
  } catch {
    return true;
  }
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe("reportWorkerHeap", () => {
  const fake = (over: Record<string, unknown>) => ({
    threadId: 7,
    once: () => undefined,
    getHeapStatistics: () => Promise.resolve({ total_heap_size: 1 << 20, total_physical_size: 1 << 20 }),
    ...over,
  });

  it("refuses a worker that has already exited (its exit event will not come again)", () => {
    expect(invalidOption(() => reportWorkerHeap(fake({ threadId: -1 }), { name: "gone" })).message).toMatch(
      /already exited/,
    );
    expect(registered("gone")).toBe(false);
  });

  it("unregisters when the worker API throws at once, or rejects", async () => {
    const stop1 = reportWorkerHeap(
      fake({
        getHeapStatistics: () => {
          throw new Error("ERR_WORKER_NOT_RUNNING");
        },
      }),
      { name: "throws" },
    );
    expect(registered("throws")).toBe(false);
    stop1();
    reportWorkerHeap(fake({ getHeapStatistics: () => Promise.reject(new Error("not running")) }), { name: "rejects" });
    await settle();
    expect(registered("rejects")).toBe(false);
    // A working one stays until its worker exits, and reports what the worker said.
    let exit: (() => void) | undefined;
    reportWorkerHeap(
      fake({
        once: (_e: string, f: () => void) => {
          exit = f;
        },
      }),
      { name: "works" },
    );
    await settle();
    expect(registered("works")).toBe(true);
    const warnings: Warning[] = [];
    expect(defaultReporters.call(warnings).find((c) => c.name === "works")?.residentBytes).toBe(1 << 20);
    exit?.();
    expect(registered("works")).toBe(false);
  });

  it("turns a throw from the worker object itself into INVALID_OPTION, registering nothing", () => {
    invalidOption(() =>
      reportWorkerHeap(
        fake({
          once: () => {
            throw new Error("once");
          },
        }),
        { name: "once-throws" },
      ),
    );
    expect(registered("once-throws")).toBe(false);
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error("trap");
        },
      },
    );
    invalidOption(() => reportWorkerHeap(hostile));
  });

  it("a real worker: unregistered once it has exited (Node with worker.getHeapStatistics())", async () => {
    const { Worker } = await import("node:worker_threads");
    const worker = new Worker("setTimeout(() => {}, 60000)", { eval: true });
    await new Promise((r) => worker.once("online", r));
    if (typeof (worker as unknown as { getHeapStatistics?: unknown }).getHeapStatistics !== "function") {
      // Node 20 and 22 before 22.16: the reporter cannot exist; the call says so.
      expect(invalidOption(() => reportWorkerHeap(worker)).message).toMatch(/getHeapStatistics/);
      await worker.terminate();
      return;
    }
    reportWorkerHeap(worker, { name: "real" });
    expect(registered("real")).toBe(true);
    await worker.terminate();
    await settle();
    expect(registered("real")).toBe(false);
    // After it exited, registering it again is refused: it would never be unregistered.
    invalidOption(() => reportWorkerHeap(worker, { name: "real-again" }));
  });
});

describe("createFetchHandler with a Request whose getters throw", () => {
  const handle = createFetchHandler({ sampler: false });
  const throwing = (key: string) =>
    new Proxy(new Request("http://127.0.0.1/debug/memory"), {
      get(target, k) {
        if (k === key) throw new Error(`${key} getter`);
        const v = Reflect.get(target, k, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });

  it.each(["url", "method", "headers"])("a throwing %s: a 400 Response, never a rejected promise", async (key) => {
    const r = await handle(throwing(key), { remoteAddress: "127.0.0.1" });
    expect(r).toBeInstanceOf(Response);
    expect(r.status).toBe(400);
    expect(await r.text()).toMatch(/^heapstate: /);
  });

  it("a value that is not a Request at all, and an info whose getter throws: answered, not rejected", async () => {
    expect((await handle(null as unknown as Request)).status).toBe(400);
    const info = {
      get remoteAddress(): string {
        throw new Error("info getter");
      },
    };
    const r = await handle(new Request("http://127.0.0.1/debug/memory"), info);
    expect(r.status).toBe(400);
  });
});

describe("registerOtel with a provider whose methods throw", () => {
  const meter = (over: Record<string, unknown> = {}) => ({
    createObservableGauge: () => ({}),
    addBatchObservableCallback: () => undefined,
    removeBatchObservableCallback: () => undefined,
    ...over,
  });
  const boom = () => {
    throw new Error("boom");
  };

  it("getMeter, an instrument's creation, or the callback's registration: INVALID_OPTION naming what failed", () => {
    expect(invalidOption(() => registerOtel({ getMeter: boom })).message).toMatch(/getMeter\(\) failed: boom/);
    expect(invalidOption(() => registerOtel(meter({ createObservableGauge: boom }))).message).toMatch(
      /creation of an instrument failed: boom/,
    );
    expect(invalidOption(() => registerOtel(meter({ addBatchObservableCallback: boom }))).message).toMatch(
      /addBatchObservableCallback\(\) failed: boom/,
    );
    // A meter that works is registered, and its stop() never throws.
    const stop = registerOtel(meter({ removeBatchObservableCallback: boom }));
    expect(() => stop()).not.toThrow();
  });
});
