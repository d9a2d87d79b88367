/**
 * The host a process runs on: kernel, CPUs, memory, swap, THP and overcommit modes, libc, Node
 * and V8, and the environment variables that choose or tune the allocator. What could not be read
 * is absent.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, release } from "node:os";
import { join } from "node:path";
import { native, nativeFile, nativeProblem } from "../addon/native";
import { ownPlatform } from "../addon/platform";
import * as is from "../base/validate";
import { optionsObject } from "../base/validate";
import { DEFAULT_PROC_ROOT } from "../procfs/read";

/** Environment variables that decide which allocator serves malloc and how it behaves. */
export const ALLOCATOR_ENV = ["LD_PRELOAD", "MALLOC_ARENA_MAX", "MALLOC_CONF", "GLIBC_TUNABLES"] as const;

export interface HostState {
  kernel: string;
  cpus: number;
  memTotalBytes?: number;
  memAvailableBytes?: number;
  swapTotalBytes?: number;
  swapFreeBytes?: number;
  /** /sys/kernel/mm/transparent_hugepage/enabled, the bracketed choice: always | madvise | never. */
  transparentHugePages?: string;
  /** /proc/sys/vm/overcommit_memory: 0 heuristic, 1 always, 2 never. */
  overcommit?: string;
  libc?: { family: "glibc" | "musl" | "unknown"; version?: string };
  /** heapstate's own native addon: which platform this is and whether an addon serves it. */
  addon: AddonState;
  node: string;
  v8: string;
}

export interface AddonState {
  /** "linux-x64 (glibc)": the platform as prebuilt addons are named. */
  platform: string;
  loaded: boolean;
  /** Where it was loaded from: the package's prebuild, a build from source, or HEAPSTATE_BINDING. */
  source?: "prebuilt" | "source" | "override";
  file?: string;
  /** Why it is not loaded (the warning's text). */
  reason?: string;
}

/**
 * The addon's state: loaded from where, or why not.
 * @example
 * const a = hostInfo().addon; if (!a.loaded) console.warn(`no allocator state on ${a.platform}: ${a.reason}`);
 */
export function addonState(): AddonState {
  const platform = ownPlatform().label;
  const from = nativeFile();
  if (from === undefined) return { platform, loaded: false, reason: nativeProblem()?.message ?? "not loaded" };
  return { platform, loaded: true, source: from.source, file: from.file };
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** /proc/meminfo "Key:   N kB" → bytes. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(\w+):\s+(\d{1,15}) kB$/gm)) out.set(m[1] as string, Number(m[2]) * 1024);
  return out;
}

/** "always [madvise] never" → "madvise". */
export function parseThp(text: string): string | undefined {
  return /\[(\w+)\]/.exec(text)?.[1];
}

const overcommitNames: Record<string, string> = { "0": "0 (heuristic)", "1": "1 (always)", "2": "2 (never: strict)" };

function libc(): HostState["libc"] {
  // The running libc answers for itself when the addon is loaded (gnu_get_libc_version); else
  // Node's own report header knows the glibc it runs on, and has no glibc field on musl.
  // A binding of the wrong shape or one that throws is the loader's warning to give, not a
  // reason for hostInfo() to fail: fall through to the report header.
  try {
    const version = native()?.libc().version;
    if (typeof version === "string") return { family: "glibc", version };
  } catch {
    // see above
  }
  let header: { glibcVersionRuntime?: string } | undefined;
  try {
    header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  } catch {
    header = undefined;
  }
  if (header?.glibcVersionRuntime) return { family: "glibc", version: header.glibcVersionRuntime };
  if (ownPlatform().libc === "musl") return { family: "musl" };
  return { family: "unknown" };
}

/**
 * Reads the host's memory context (a few small files; the libc look-up runs once per call).
 * @example
 * const h = hostInfo(); console.log(h.kernel, h.memAvailableBytes, h.transparentHugePages);
 */
export function hostInfo(options?: { procRoot?: string; sysRoot?: string }): HostState {
  const o = optionsObject("hostInfo(options)", options, ["procRoot", "sysRoot"]);
  const proc = is.text("hostInfo(options)", "procRoot", o.procRoot, DEFAULT_PROC_ROOT);
  const sys = is.text("hostInfo(options)", "sysRoot", o.sysRoot, "/sys");
  const host: HostState = {
    kernel: release(),
    cpus: availableParallelism(),
    addon: addonState(),
    node: process.versions.node,
    v8: process.versions.v8,
  };
  const meminfo = tryRead(join(proc, "meminfo"));
  if (meminfo !== undefined) {
    const m = parseMeminfo(meminfo);
    const put = (key: keyof HostState, name: string) => {
      const v = m.get(name);
      if (v !== undefined) (host as unknown as Record<string, number>)[key] = v;
    };
    put("memTotalBytes", "MemTotal");
    put("memAvailableBytes", "MemAvailable");
    put("swapTotalBytes", "SwapTotal");
    put("swapFreeBytes", "SwapFree");
  }
  const thp = tryRead(join(sys, "kernel/mm/transparent_hugepage/enabled"));
  const thpMode = thp === undefined ? undefined : parseThp(thp);
  if (thpMode) host.transparentHugePages = thpMode;
  const overcommit = tryRead(join(proc, "sys/vm/overcommit_memory"))?.trim();
  const overcommitName = overcommit === undefined ? undefined : overcommitNames[overcommit];
  if (overcommitName !== undefined) host.overcommit = overcommitName;
  const c = libc();
  if (c !== undefined) host.libc = c;
  return host;
}

export type AllocatorEnvironment = Partial<Record<(typeof ALLOCATOR_ENV)[number], string>>;

/**
 * The allocator variables of a process: ours from process.env, another's from
 * /proc/<pid>/environ (its environment at exec time; readable by its owner and root only).
 * Undefined when it cannot be read.
 */
export function allocatorEnvironment(pid: number, procRoot = DEFAULT_PROC_ROOT): AllocatorEnvironment | undefined {
  const where = "allocatorEnvironment(pid, procRoot)";
  if (pid === undefined) throw is.invalidOption(where, `pid is required, ${is.received(pid)}`);
  is.pid(where, pid, process.pid);
  is.text(where, "procRoot", procRoot, DEFAULT_PROC_ROOT);
  const out: AllocatorEnvironment = {};
  if (pid === process.pid) {
    for (const k of ALLOCATOR_ENV) {
      const v = process.env[k];
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  const text = tryRead(join(procRoot, String(pid), "environ"));
  if (text === undefined) return undefined;
  for (const entry of text.split("\0")) {
    const eq = entry.indexOf("=");
    const k = entry.slice(0, eq) as (typeof ALLOCATOR_ENV)[number];
    if (eq > 0 && (ALLOCATOR_ENV as readonly string[]).includes(k)) out[k] = entry.slice(eq + 1);
  }
  return out;
}
