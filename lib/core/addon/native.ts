/**
 * Loads the native addon. Never throws at import: when the addon cannot be loaded the reason is
 * kept, every caller gets `undefined`, and the rest of heapstate works from procfs and V8 alone.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { errorText } from "../base/errors";
import type { AllocatorName, RawValue, Warning } from "../model/types";
import { ownPlatform, type PlatformInfo } from "./platform";

/** discover(): which object serves malloc and which allocator instances exist. */
export interface NativeDiscovery {
  mallocOwner?: string;
  mainProgramDefinesMalloc: boolean;
  /** heapstate's sampler (native/sampler), when it stands in front of malloc: its path. */
  sampler?: string;
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
  read(options?: { glibc?: boolean; mallocInfo?: boolean; onlyGlibc?: boolean }): NativeReading;
  trim(options?: { glibc?: boolean }): NativeTrim;
  /**
   * read() without malloc_info, as numbers written into `out` (see native-read.ts, which decodes
   * them); with `describe`, the discovery and the texts beside the count. With `files` (what
   * readFiles() takes, and a Float64Array for its answer), the kept files are read first in the
   * same call (addons built before that ignore them and leave the answer as it was). Absent from
   * addons built before it: read() is used then.
   */
  readNumbers?(
    out: Float64Array,
    options: { glibc?: boolean; onlyGlibc?: boolean; describe?: boolean },
    ...files: [] | [files: Uint8Array, lengths: Int32Array, generation: number, result: Float64Array]
  ): number | (NativeDiscovery & { count: number; texts: string[] });
  /** The names of readNumbers()'s ids from `from` on. */
  counterNames?(from: number): string[];
  /** The running glibc's version, read without touching any allocator. */
  libc(): { version?: string };
  /** This thread's CPU time (µs), NaN when refused. Absent from addons built before it. */
  threadCpuMicros?(): number;
  /** The files readFiles() reads from now on (kernel-files.ts); answers the list's generation. Absent from addons built before it. */
  keepFiles?(paths: string[]): number;
  /**
   * The kept files' bytes one after the other into `out` (lengths[i]: file i's bytes, or minus its
   * errno); returns the bytes used, minus the size `out` must have, or NaN when `generation` is not
   * the kept list's (another caller kept another list: keep this one again).
   */
  readFiles?(out: Uint8Array, lengths: Int32Array, generation: number): number;
  /** jemalloc's `prof.dump` into `path` by the jemalloc that serves malloc: 0, or its error code. Absent from addons built before it. */
  profDump?(path: string): number;
  /** tcmalloc's sampled heap profile (gperftools' GetHeapSample text), or undefined where none serves malloc. */
  heapSample?(): string | undefined;
  /** Sets jemalloc's `prof.active` (the jemalloc serving malloc): its previous value (0 or 1), or minus an error code. */
  profActive?(on: boolean): number;
  /** heapstate's sampler writes its live samples into `path` (heap_v2): 0, or an error code (ENOENT: not in front of malloc). */
  samplerDump?(path: string): number;
  /**
   * heapstate's sampler's [mean bytes between samples, table slots, samples taken, samples dropped,
   * its tables' resident bytes] (as many as it reports); undefined when it is not in front of malloc.
   */
  samplerStats?(): number[] | undefined;
}

/** The environment switch that forces the addon off (tests, or to rule heapstate's addon out). */
export const DISABLE_ENV = "HEAPSTATE_NO_NATIVE";
/** The environment variable that names the addon file to load instead (a sanitizer or debug build). */
export const BINDING_ENV = "HEAPSTATE_BINDING";

const packageRoot = resolve(__dirname, "..", "..", "..");

/** node-gyp-build's resolver: build/Release, then build/Debug, then the matching prebuilds/ file. */
function resolveAddon(): { file?: string; error?: string } {
  let resolver: { resolve(dir: string): string };
  try {
    resolver = require("node-gyp-build") as typeof resolver;
  } catch (error) {
    return {
      error: `its loader node-gyp-build is missing (${errorText(error)}); reinstall heapstate`,
    };
  }
  try {
    return { file: resolver.resolve(packageRoot) };
  } catch {
    return {};
  }
}

let loaded = false;
let binding: NativeBinding | undefined;
let problem: Warning | undefined;
let loadedFrom: { file: string; source: "prebuilt" | "source" | "override" } | undefined;

/** The glibc sampler's file name (native/sampler), beside the addon in build/ and prebuilds/. */
export const SAMPLER_FILE = "libheapstate-sampler.so";

/**
 * The absolute path of heapstate's allocation sampler for glibc (for LD_PRELOAD): a build from
 * source first (build/Release, build/Debug), then this platform's prebuild; or why there is none.
 */
export function samplerPath(
  root: string = packageRoot,
  platform: PlatformInfo = ownPlatform(),
): { file: string } | { error: string } {
  if (platform.os !== "linux" || platform.libc !== "glibc")
    return { error: `the sampler stands in front of glibc's malloc, and this is ${platform.label}` };
  const candidates = [
    join(root, "build", "Release", SAMPLER_FILE),
    join(root, "build", "Debug", SAMPLER_FILE),
    join(root, "prebuilds", `linux-${platform.arch}`, SAMPLER_FILE),
  ];
  const file = candidates.find((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
  if (file === undefined)
    return {
      error: `this package has no sampler for ${platform.label} (${candidates.join(", ")} are missing); in a checkout of heapstate, \`npm run build:native\` builds it`,
    };
  // The dynamic loader splits LD_PRELOAD at spaces and colons: such a path would preload nothing.
  if (/[\s:]/.test(file))
    return {
      error: `the sampler's path ${JSON.stringify(file)} holds a space or a colon, which LD_PRELOAD cannot carry: copy the file to a path without them`,
    };
  return { file: resolve(file) };
}

/** The platforms this package carries a prebuilt addon for, as labels ("linux-x64 (glibc)"). */
export function prebuiltPlatforms(root: string = packageRoot): string[] {
  const out: string[] = [];
  for (const dir of list(join(root, "prebuilds"))) {
    for (const file of list(join(root, "prebuilds", dir))) {
      if (!file.endsWith(".node")) continue;
      const tags = file.split(".");
      const libc = tags.includes("musl") ? "musl" : tags.includes("glibc") ? "glibc" : undefined;
      out.push(libc ? `${dir} (${libc})` : dir);
    }
  }
  return out;
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function unavailable(platform: PlatformInfo, why: string): Warning {
  const carried = prebuiltPlatforms();
  if (carried.length === 0 && platform.os === "linux" && platform.libc !== "musl") {
    // No prebuilds at all: a checkout (or a copy) that was never built.
    return {
      source: "native",
      code: "NATIVE_NOT_LOADED",
      message: `the native addon is not built here (${join(packageRoot, "build", "Release", "heapstate.node")} is missing and the package has no prebuilds/); allocator state (heap) is not available. In a checkout of heapstate, \`npm run build:native\` builds it (needs a C++ compiler and Python).`,
    };
  }
  const has = carried.length > 0 ? `this package carries prebuilt addons for ${carried.join(", ")} only` : why;
  return {
    source: "native",
    code: platform.libc === "musl" ? "NATIVE_UNSUPPORTED_LIBC" : "NATIVE_UNSUPPORTED_PLATFORM",
    message: `no native addon for ${platform.label}: ${has}. Allocator state (heap) is not available here; the kernel's and V8's figures are.`,
  };
}

/**
 * Which addon file to load on `platform`, or the warning saying why there is none. Nothing is
 * loaded here; `env` is where the DISABLE_ENV and BINDING_ENV switches are read.
 */
export function chooseAddon(
  platform: PlatformInfo,
  env: NodeJS.ProcessEnv = process.env,
): { file: string; problem?: undefined } | { file?: undefined; problem: Warning } {
  const disabled = env[DISABLE_ENV];
  if (disabled !== undefined && disabled !== "" && disabled !== "0") {
    return {
      problem: {
        source: "native",
        code: "NATIVE_DISABLED",
        message: `the native addon is turned off by ${DISABLE_ENV}=${disabled}; unset it to read the allocator`,
      },
    };
  }
  const override = env[BINDING_ENV];
  if (override) return { file: resolve(override) };
  if (platform.os !== "linux") {
    return { problem: unavailable(platform, "the addon reads Linux allocators and is built for Linux only") };
  }
  // node-gyp-build tells musl only on Alpine; a glibc build would fail to load on any musl.
  if (platform.libc === "musl") return { problem: unavailable(platform, "the addon is built for glibc only") };
  const found = resolveAddon();
  if (found.error !== undefined) {
    return {
      problem: {
        source: "native",
        code: "NATIVE_NOT_LOADED",
        message: `the native addon cannot be looked for: ${found.error}`,
      },
    };
  }
  if (found.file === undefined) return { problem: unavailable(platform, "none matches") };
  return { file: found.file };
}

/**
 * Whether the process is short of descriptors or memory right now: a load that failed then may
 * work later, so its failure is not remembered (the next reading tries again).
 */
function exhaustedNow(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EMFILE" || code === "ENFILE" || code === "ENOMEM") return code;
  if (/Too many open files/i.test(errorText(error))) return "EMFILE";
  try {
    closeSync(openSync("/dev/null", "r"));
    return undefined;
  } catch (probe) {
    const c = (probe as NodeJS.ErrnoException).code;
    return c === "EMFILE" || c === "ENFILE" || c === "ENOMEM" ? c : undefined;
  }
}

const ELF_MAGIC = 0x7f454c46;

/**
 * Loads an addon file as a Node-API module, never as JavaScript: the file must be a regular ELF
 * file (a FIFO, /dev/zero or a directory would hang or fail late), and what it exports must have
 * the binding's shape. Throws an Error saying what is wrong.
 */
function loadAddonFile(file: string): NativeBinding {
  const st = statSync(file);
  if (!st.isFile()) throw new Error("not a regular file");
  const head = Buffer.alloc(4);
  const fd = openSync(file, "r");
  try {
    if (readSync(fd, head, 0, 4, 0) !== 4 || head.readUInt32BE(0) !== ELF_MAGIC) {
      throw new Error("not a shared object (no ELF header)");
    }
  } finally {
    closeSync(fd);
  }
  const module = { exports: {} as Record<string, unknown> };
  process.dlopen(module, file);
  const missing = ["discover", "read", "trim", "libc"].filter((f) => typeof module.exports[f] !== "function");
  if (missing.length > 0) {
    throw Object.assign(new Error(`it is not heapstate's addon: it has no ${missing.join(", ")} function`), {
      code: "NATIVE_WRONG_SHAPE",
    });
  }
  return module.exports as unknown as NativeBinding;
}

/** True while the last failure was for want of descriptors or memory: the next reading tries again. */
let transient = false;

function load(): void {
  loaded = true;
  transient = false;
  const platform = ownPlatform();
  let choice: ReturnType<typeof chooseAddon>;
  try {
    choice = chooseAddon(platform);
  } catch (error) {
    choice = {
      problem: {
        source: "native",
        code: "NATIVE_NOT_LOADED",
        message: `the native addon could not be looked for: ${errorText(error)}`,
      },
    };
  }
  if (choice.file === undefined) {
    const short = choice.problem.code === "NATIVE_DISABLED" ? undefined : exhaustedNow(undefined);
    if (short) {
      transient = true;
      problem = shortOf(short, platform);
      return;
    }
    problem = choice.problem;
    return;
  }
  try {
    binding = loadAddonFile(choice.file);
    problem = undefined;
    // node-gyp-build answers build/Release or build/Debug (a build from source) before prebuilds/.
    const source = process.env[BINDING_ENV]
      ? "override"
      : choice.file.split(sep).includes("prebuilds")
        ? "prebuilt"
        : "source";
    loadedFrom = { file: choice.file, source };
  } catch (error) {
    const short = exhaustedNow(error);
    if (short) {
      transient = true;
      problem = shortOf(short, platform);
      return;
    }
    const wrongShape = (error as { code?: unknown }).code === "NATIVE_WRONG_SHAPE";
    problem = {
      source: "native",
      code: wrongShape ? "NATIVE_WRONG_SHAPE" : "NATIVE_NOT_LOADED",
      message: `the native addon ${choice.file} could not be loaded on ${platform.label} (${errorText(error)}); allocator state (heap) is not available, the kernel's and V8's figures are`,
    };
  }
}

function shortOf(code: string, platform: PlatformInfo): Warning {
  return {
    source: "native",
    code: "NATIVE_NOT_LOADED",
    message: `the native addon could not be loaded on ${platform.label} now (${code}: ${code === "ENOMEM" ? "out of memory" : "the descriptor table is full"}); the next reading tries again`,
  };
}

/** The file the addon was loaded from and what it is (a prebuild, a source build, the override); else undefined. */
export function nativeFile(): { file: string; source: "prebuilt" | "source" | "override" } | undefined {
  if (!loaded) load();
  return loadedFrom;
}

/** The loaded binding, or undefined (see {@link nativeProblem} for why). */
export function native(): NativeBinding | undefined {
  if (!loaded || transient) load();
  return binding;
}

/** Why the binding is not available, as a warning; undefined when it is loaded. */
export function nativeProblem(): Warning | undefined {
  if (!loaded) load();
  return problem;
}
