/** A run gathered where the results are: attribution, budgets, the baseline, the gatherer's own state; and its file. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { allocatorEnvironment, collect, errorText, hostInfo, isHeapstateError } from "../../core";
import { attribute } from "./attribute";
import { compareBaseline, readSidecar } from "./baseline";
import { checkBudgets } from "./budgets";
import type { Budgets, FileRecord, SidecarRun } from "./types";

export interface BuildOptions {
  runner: SidecarRun["runner"];
  budgets?: Budgets;
  /** A previous sidecar file to compare with. */
  baseline?: string;
  unmeasured?: SidecarRun["unmeasured"];
}

/** Gathers records into one run: attribution, budgets, baseline, and the gathering process's own state. */
export function buildRun(records: FileRecord[], options: BuildOptions): SidecarRun {
  attribute(records, options.runner.pool);
  const env = allocatorEnvironment(process.pid);
  const run: SidecarRun = {
    schema: "heapstate-sidecar/1",
    time: new Date().toISOString(),
    runner: options.runner,
    files: records,
    unmeasured: options.unmeasured ?? [],
    main: collect(),
    host: { ...hostInfo(), ...(env ? { allocatorEnvironment: env } : {}) },
    violations: checkBudgets(records, options.budgets),
  };
  if (options.budgets) run.budgets = options.budgets;
  if (options.baseline) {
    // A baseline that cannot be used is said, in the run and its summary; it never fails the run.
    try {
      run.baseline = { file: options.baseline, changes: compareBaseline(records, readSidecar(options.baseline)) };
    } catch (error) {
      run.baseline = {
        file: options.baseline,
        changes: [],
        problem: isHeapstateError(error) ? error.message : `sidecar ${options.baseline}: ${errorText(error)}`,
      };
    }
  }
  return run;
}

/** Writes a run as JSON, creating the directory. */
export function write(path: string, run: SidecarRun): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(run, null, 2)}\n`);
}
