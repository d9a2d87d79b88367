/**
 * heapstate: where is a Node.js process's memory? The public API, as an explicit list.
 * @packageDocumentation
 */
export { HeapstateError, type HeapstateErrorCode } from "./errors";
export { formatHuman } from "./format";
export { collect, snapshot, trim } from "./snapshot";
export type {
  AllocatorName,
  AllocatorState,
  CollectOptions,
  PageStates,
  ProcessState,
  RawValue,
  Snapshot,
  Tier,
  TrimAction,
  TrimResult,
  Warning,
} from "./types";
export { formatBytes } from "./units";
