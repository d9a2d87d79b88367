/**
 * heapstate/vitest: the reporter (the default export, for `reporters: [["heapstate/vitest", …]]`)
 * and the heapstate() plugin that sets everything up in one line.
 */
export { type HeapstatePluginOptions, heapstate } from "./plugin";
export { HeapstateReporter, HeapstateReporter as default, type HeapstateReporterOptions } from "./reporter";
