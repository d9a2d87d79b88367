/**
 * heapstate: where is a Node.js process's memory? The public API, as an explicit list.
 * @packageDocumentation
 */

export { type Agent, type AgentOptions, startAgent } from "./agent";
export { type AutoTrimmer, type AutoTrimOptions, startAutoTrim } from "./autotrim";
export { type BaselineBudgets, baseline, clearBaseline } from "./baseline";
export { collect, setBaseline } from "./collect";
export { diff, type FieldChange, type IdentityChange, type SnapshotDiff } from "./diff";
export { HeapstateError, type HeapstateErrorCode } from "./errors";
export { formatDiff, formatHuman } from "./format";
export { diffSamples, type FindingEpisode, findingEpisodes, type SampleDiff } from "./history";
export { type AddonState, type AllocatorEnvironment, allocatorEnvironment, type HostState, hostInfo } from "./host";
export {
  collectTree,
  type HostProcess,
  type HostView,
  type HostViewOptions,
  hostProcesses,
  type ProcessTotals,
  type ProcessTree,
  type TreeFinding,
} from "./host-view";
export { createFetchHandler, createHandler, type FetchInfo, type HandlerOptions } from "./http";
export { type MemoryField, memoryField } from "./log";
export { parseSnapshot } from "./parse";
export {
  type MemoryReport,
  type MemoryReporter,
  type MemoryReporterOptions,
  registerMemoryReporter,
  reportWorkerHeap,
} from "./reporters";
export { type Sample, type Sampler, type SamplerOptions, startSampler } from "./sampler";
export { snapshot } from "./snapshot";
export { trim } from "./trim";
export type {
  AllocatorName,
  AllocatorState,
  ArenaGroup,
  AutoTrimState,
  Breakdown,
  BreakdownChild,
  BreakdownPart,
  CgroupState,
  CollectOptions,
  CpuState,
  Finding,
  PageStates,
  ProcessState,
  RawValue,
  RegionSummary,
  Snapshot,
  Tier,
  TrimAction,
  TrimResult,
  V8State,
  Warning,
} from "./types";
export { formatBytes } from "./units";
