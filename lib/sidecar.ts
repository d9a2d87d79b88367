/**
 * Heap-state sidecars for test runs, runner-neutral: `start()` and `stop()` around a test file (or
 * any unit of work) in the process that runs it, `buildRun()` and `write()` where the results are
 * gathered. The Vitest reporter and setup file are built on these; node:test, mocha or a custom
 * harness can use them directly. This file is the whole public list (heapstate/sidecar).
 */
export { attribute } from "./sidecar/attribute";
export { compareBaseline, readSidecar } from "./sidecar/baseline";
export { checkBudgets, parseBytes } from "./sidecar/budgets";
export { fullGc, keyFigures, type Measurement, type MeasureOptions, start, stop } from "./sidecar/measure";
export { type BuildOptions, buildRun, write } from "./sidecar/run";
export { formatSummary } from "./sidecar/summary";
export type {
  BaselineChange,
  Budgets,
  BudgetViolation,
  FileRecord,
  Growth,
  KeyFigures,
  SidecarRun,
} from "./sidecar/types";
