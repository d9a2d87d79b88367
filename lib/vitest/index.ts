/**
 * heapstate/vitest: the reporter (the default export, for `reporters: [["heapstate/vitest", …]]`)
 * and the heapstate() plugin that sets everything up in one line.
 */
export { type HeapstatePluginOptions, heapstate } from "./plugin";
export { HeapstateReporter, type HeapstateReporterOptions } from "./reporter";
export { HeapstateReporter as default } from "./reporter";
