/**
 * heapstate: where is a Node.js process's memory? The public API, as an explicit list.
 *
 * What comes from the core (lib/core/: reading, the model, judging, acting) is loaded with
 * `require("heapstate")`: a first reading must work even when the process has run out of
 * descriptors and could not open a module file then. What comes from a face (lib/faces/: the HTTP
 * handler and its page, the sampler and its history, text, the log field, the agent) is loaded on
 * its first call, because it lives in the faces' wing: the build writes the entry so from this
 * list (scripts/build-ts.mjs), and `require("heapstate")` opens no file there
 * (test/e2e/lazy.test.ts).
 * @packageDocumentation
 */

export {
  type AddonState,
  type AllocatorEnvironment,
  type AllocatorName,
  type AllocatorState,
  type ArenaGroup,
  type AutoTrimmer,
  type AutoTrimOptions,
  type AutoTrimState,
  allocatorEnvironment,
  type BaselineBudgets,
  type Breakdown,
  type BreakdownChild,
  type BreakdownPart,
  baseline,
  type CgroupState,
  type CollectOptions,
  type CpuState,
  clearBaseline,
  collect,
  collectTree,
  createProcess,
  diff,
  type FieldChange,
  type Finding,
  formatBytes,
  type HeapProcess,
  HeapstateError,
  type HeapstateErrorCode,
  type HostProcess,
  type HostState,
  type HostView,
  type HostViewOptions,
  hostInfo,
  hostProcesses,
  type IdentityChange,
  type MemoryReport,
  type MemoryReporter,
  type MemoryReporterOptions,
  type NativeSite,
  type NativeSites,
  type PageStates,
  type ProcessState,
  type ProcessTotals,
  type ProcessTree,
  parseSnapshot,
  type RawValue,
  type RegionSummary,
  registerMemoryReporter,
  reportWorkerHeap,
  type SampleSitesOptions,
  type SiteChange,
  type Snapshot,
  type SnapshotDiff,
  sampleNativeSites,
  setBaseline,
  snapshot,
  startAutoTrim,
  type Tier,
  type TreeFinding,
  type TrimAction,
  type TrimResult,
  trim,
  type V8State,
  type Warning,
} from "./core";
// The faces' functions: the build makes each load its face on its first call (scripts/build-ts.mjs).
export { type Agent, type AgentOptions, startAgent } from "./faces/agent/server";
export { formatDiff, formatHuman } from "./faces/format";
export { diffSamples, type FindingEpisode, findingEpisodes, type SampleDiff } from "./faces/history";
export { createFetchHandler, type FetchInfo } from "./faces/http/fetch";
export { createHandler, type HandlerOptions } from "./faces/http/handler";
export { type MemoryField, memoryField } from "./faces/log";
export { type Sample, type Sampler, type SamplerOptions, startSampler } from "./faces/sampler";
