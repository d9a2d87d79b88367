/**
 * heapstate/vitest-setup: add to `setupFiles`. Runs in each Vitest worker: reads the heap state
 * when a test file starts (after a full GC) and when it ends (after another), and puts the record
 * on the file's task meta, where the heapstate/vitest reporter collects it in the main process.
 *
 * Environment: HEAPSTATE_VITEST_TIER (fast | standard | deep, default standard),
 * HEAPSTATE_VITEST_GC=0 to skip the collections. The full collections use `gc()` where the pool
 * exposes it (the heapstate() plugin adds --expose-gc to the forks pool's execArgv), else they
 * obtain it at run time.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll } from "vitest";
import type * as Core from "../../core/index.js";
import type { Tier } from "../../core/index.js";
import type * as Sidecar from "../sidecar/index.js";

// Node's own require, not Vitest's module runner: where heapstate is linked (npm link, a
// workspace), its files lie outside node_modules and the runner would transform this CommonJS
// module as source, which it is not.
const sidecar = createRequire(import.meta.url)("../sidecar/index.js") as typeof Sidecar;
const core = createRequire(import.meta.url)("../../core/index.js") as typeof Core;

type Meta = Record<string, unknown>;
interface TaskLike {
  meta: Meta;
  filepath?: string;
  name?: string;
}

/** Vitest passes the suite first up to 4.0 and second (after a context) from 4.1: take whichever is one. */
function suiteOf(args: unknown[]): TaskLike | undefined {
  for (const a of [...args].reverse()) {
    if (a !== null && typeof a === "object" && "meta" in a && typeof (a as TaskLike).meta === "object")
      return a as TaskLike;
  }
  return undefined;
}

// The tier as the core parses every face's request: a typo is an error, not a silent "standard".
const request = core.parseReadRequest(
  { tier: process.env.HEAPSTATE_VITEST_TIER },
  { tier: "HEAPSTATE_VITEST_TIER", top: "top" },
);
if ("error" in request) throw new Error(`heapstate/vitest-setup: ${request.error}`);
const tier: Tier = request.tier;
const gc = process.env.HEAPSTATE_VITEST_GC !== "0";

let measurement: ReturnType<typeof sidecar.start> | undefined;

// The hooks declare no parameters and read `arguments`: Vitest 4.1 parses a hook's parameter list
// (the first must be a fixture destructuring pattern), while earlier versions pass the suite first.
beforeAll(function (this: unknown) {
  // biome-ignore lint/complexity/noArguments: see above
  const suite = suiteOf([...arguments]);
  measurement = sidecar.start(suite?.filepath ?? suite?.name ?? "unknown", { tier, gc });
});

afterAll(async function (this: unknown) {
  // biome-ignore lint/complexity/noArguments: see above
  const suite = suiteOf([...arguments]);
  if (!measurement || !suite) return;
  // Backing stores of collected ArrayBuffers are freed after the GC, on a V8 background thread:
  // give it a turn before the end reading.
  if (gc) {
    sidecar.fullGc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  suite.meta.heapstate = sidecar.stop(measurement);
  measurement = undefined;
});
