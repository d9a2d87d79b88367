/**
 * Loads the native addon. Never throws at import: when the addon cannot be loaded the reason is
 * kept, every caller gets `undefined`, and the rest of heapstate works from procfs and V8 alone.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { AllocatorName, RawValue, Warning } from "./types";

/** discover(): which object serves malloc and which allocator instances exist. */
export interface NativeDiscovery {
  generation: number;
  mallocOwner?: string;
  mainProgramDefinesMalloc: boolean;
  instances: NativeInstance[];
}

export interface NativeInstance {
  allocator: AllocatorName;
  library: string;
  symbol: string;
  servesMalloc: boolean;
}

export interface NativeReadInstance extends NativeInstance {
  /** The allocator's counters under its own names (mallctl names, mallinfo2 fields, …). */
  values: Record<string, RawValue>;
  /** Name → error code for each counter the allocator refused (ENOENT: not in this build). */
  errors: Record<string, number>;
}

export interface NativeReading extends Omit<NativeDiscovery, "instances"> {
  instances: NativeReadInstance[];
}

export interface NativeTrim extends Omit<NativeDiscovery, "instances"> {
  instances: Array<NativeInstance & { actions: Record<string, RawValue> }>;
}

export interface NativeBinding {
  discover(): NativeDiscovery;
  read(options?: { glibc?: boolean; mallocInfo?: boolean }): NativeReading;
  trim(options?: { glibc?: boolean }): NativeTrim;
}

/** The environment switch that forces the addon off (tests, or to rule heapstate's addon out). */
export const DISABLE_ENV = "HEAPSTATE_NO_NATIVE";
/** The environment variable that names the addon file to load instead (a sanitizer or debug build). */
export const BINDING_ENV = "HEAPSTATE_BINDING";

const packageRoot = resolve(__dirname, "..");
const candidates = [
  join(packageRoot, "build", "Release", "heapstate.node"),
  join(packageRoot, "build", "Debug", "heapstate.node"),
];

let loaded = false;
let binding: NativeBinding | undefined;
let problem: Warning | undefined;

function fixCommand(): string {
  return `npm run build:native --prefix ${JSON.stringify(packageRoot)} (needs a C++ compiler and Python)`;
}

function load(): void {
  loaded = true;
  const disabled = process.env[DISABLE_ENV];
  if (disabled !== undefined && disabled !== "" && disabled !== "0") {
    problem = {
      source: "native",
      code: "NATIVE_DISABLED",
      message: `the native addon is turned off by ${DISABLE_ENV}=${disabled}; unset it to read the allocator`,
    };
    return;
  }
  if (process.platform !== "linux") {
    problem = {
      source: "native",
      code: "NATIVE_UNSUPPORTED_PLATFORM",
      message: `the native addon supports Linux only (this is ${process.platform}-${process.arch}); allocator state is not available here`,
    };
    return;
  }
  const tried: string[] = [];
  const override = process.env[BINDING_ENV];
  for (const file of override ? [resolve(override)] : candidates) {
    if (!existsSync(file)) {
      tried.push(`${file}: not built`);
      continue;
    }
    try {
      binding = require(file) as NativeBinding;
      return;
    } catch (error) {
      tried.push(`${file}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const musl = report?.header !== undefined && report.header.glibcVersionRuntime === undefined;
  problem = {
    source: "native",
    code: musl ? "NATIVE_UNSUPPORTED_LIBC" : "NATIVE_NOT_LOADED",
    message: `${musl ? "this is not a glibc system (musl?); " : ""}the native addon could not be loaded (tried ${tried.join("; ")}); to build it: ${fixCommand()}`,
  };
}

/** The loaded binding, or undefined (see {@link nativeProblem} for why). */
export function native(): NativeBinding | undefined {
  if (!loaded) load();
  return binding;
}

/** Why the binding is not available, as a warning; undefined when it is loaded. */
export function nativeProblem(): Warning | undefined {
  if (!loaded) load();
  return problem;
}
