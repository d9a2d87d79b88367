/** The sidecar's records and run: what a test file's measurement and a whole run hold (schema heapstate-sidecar/1). */
import type { AllocatorEnvironment, AllocatorName, FieldChange, HostState, Snapshot } from "../../core";

/** The figures a sidecar keeps of each reading. */
export interface KeyFigures {
  time: string;
  allocator?: AllocatorName;
  rssBytes?: number;
  /** The allocator's in-use bytes (mimalloc: committed bytes); `nativeHeapSource` says which. */
  nativeHeapBytes?: number;
  nativeHeapSource?: string;
  v8HeapUsedBytes?: number;
  v8ExternalBytes?: number;
  arrayBuffersBytes?: number;
  unattributedBytes?: number;
  peakRssBytes?: number;
}

export interface Growth {
  rssBytes?: number;
  nativeHeapBytes?: number;
  v8HeapUsedBytes?: number;
  v8ExternalBytes?: number;
}

/** One measured unit of work (a test file). */
export interface FileRecord {
  file: string;
  pid: number;
  threadId: number;
  durationMs: number;
  start: KeyFigures;
  end: KeyFigures;
  growth: Growth;
  /** The peak RSS from the file's start to its stop (VmHWM reset at its start), or, where the reset failed, since `peakSince`. */
  peakRssBytes?: number;
  /** When the peak's window began: the file's start, or the process's start when VmHWM could not be reset. */
  peakSince?: string;
  /** How the full collections were had: `exposed` (--expose-gc in the worker's execArgv) or `flag` (set at run time). */
  gcVia?: "exposed" | "flag";
  /** The largest increases between start and end (byte figures of the two snapshots). */
  topGrowers: FieldChange[];
  /** own-process: nothing else ran in this process meanwhile, the growth is the file's. shared-process: other files ran in the same process at the same time. */
  attribution?: "own-process" | "shared-process";
  sharedWith?: string[];
  warnings?: string[];
}

export interface Budgets {
  nativeHeapBytes?: number;
  rssBytes?: number;
  v8HeapBytes?: number;
}

export interface BudgetViolation {
  file: string;
  figure: keyof Budgets;
  growthBytes: number;
  budgetBytes: number;
  /** False for a shared-process file: the growth may be another file's, so it does not fail the run. */
  enforced: boolean;
  message: string;
}

export interface BaselineChange {
  file: string;
  nativeHeapGrowthBefore?: number;
  nativeHeapGrowthNow?: number;
  rssGrowthBefore?: number;
  rssGrowthNow?: number;
  /** |Δ native heap growth| + |Δ RSS growth|, for ordering. */
  change: number;
}

export interface SidecarRun {
  schema: "heapstate-sidecar/1";
  time: string;
  runner: { name: string; version?: string; pool?: string };
  files: FileRecord[];
  /** Files the runner reported without a measurement (the setup file did not run there), and why. */
  unmeasured: Array<{ file: string; reason: string }>;
  /** The gathering process (the test runner's main process). */
  main: Snapshot;
  host: HostState & { allocatorEnvironment?: AllocatorEnvironment };
  budgets?: Budgets;
  violations: BudgetViolation[];
  /** The comparison with a previous run; `problem` says why there is none (a missing, corrupt or foreign file). */
  baseline?: { file: string; changes: BaselineChange[]; problem?: string };
}
