/**
 * Heap-state sidecars for test runs, runner-neutral: `start()` and `stop()` around a test file (or
 * any unit of work) in the process that runs it, `buildRun()` and `write()` where the results are
 * gathered. The Vitest reporter and setup file are built on these; node:test, mocha or a custom
 * harness can use them directly. This file is the whole public list (heapstate/sidecar).
 */
export { attribute } from "./attribute";
export { compareBaseline, readSidecar } from "./baseline";
export { checkBudgets, parseBytes } from "./budgets";
export { fullGc, keyFigures, type Measurement, type MeasureOptions, start, stop } from "./measure";
export { type BuildOptions, buildRun, write } from "./run";
export { formatSummary } from "./summary";
export type {
  BaselineChange,
  Budgets,
  BudgetViolation,
  FileRecord,
  Growth,
  KeyFigures,
  SidecarRun,
} from "./types";
