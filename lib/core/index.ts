/**
 * The core: reading a process's memory (procfs, the allocators, the addon, V8), the model a
 * reading is (its types, views, key figures and breakdown), judging it (findings, trends,
 * baselines, peaks) and acting on it (trim, auto-trim, reporters). Faces (lib/faces/) import the
 * core through this index only; the core never imports a face.
 */

// Acting on the process.
export * from "./act/autotrim";
export * from "./act/sites-window";
export * from "./act/trim";
export * from "./addon/native";
// Reading: this process, another process, the host.
export * from "./allocators/malloc-info";
// Shared ground: errors, option checks, units, escaping of outside text.
export * from "./base/backoff";
export * from "./base/errors";
export * from "./base/objects";
export * from "./base/units";
export * as is from "./base/validate";
export { decimal, MAX_PID, MAX_TIMER_MS } from "./base/validate";
export * from "./base/version";
export * from "./base/visible";
// Judging.
export * from "./judge/baseline";
export * from "./judge/findings";
export * from "./judge/peaks";
// The model: what a reading is.
export * from "./model/breakdown";
export * from "./model/diff";
export * from "./model/figures";
export * from "./model/parse";
export * from "./model/types";
export * from "./model/views";
export * from "./procfs/cgroup";
export * from "./procfs/read";
export * from "./procfs/smaps";
export * from "./read/collect";
export * from "./read/host";
export * from "./read/host-tree";
export * from "./read/host-view";
export * from "./read/options";
export * from "./read/process";
export * from "./read/read-file";
export * from "./read/regions";
export * from "./read/reporters";
export * from "./read/reporters-worker-heap";
export * from "./read/request";
