/**
 * The host's processes as the kernel shows them, and process trees: what `heapstate show-host`
 * lists. Per process: RSS (status, or smaps_rollup), PSS (each shared page divided among the
 * processes that map it), USS (Private_Clean + Private_Dirty: what only this process holds),
 * swap, threads, the allocator serving malloc as far as procfs can tell, glibc's arena heaps
 * (counted from maps), the cgroup. Totals count shared pages once: the sum of PSS.
 *
 * What each tier reads per process: fast, status only; standard, + smaps_rollup (PSS, USS) and
 * maps (arenas, allocator libraries); deep, + smaps (the resident bytes of glibc's arenas). A
 * process that cannot be read (another user's, one that exited) is listed with what could be read
 * and why not the rest.
 */
import { readdirSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { errorCode, HeapstateError } from "../base/errors";
import type { HostProcess, ProcessTotals, ProcfsAllocator } from "../model/host-types";
import type { Tier } from "../model/types";
import { parseProcCgroup } from "../procfs/cgroup";
import { DEFAULT_PROC_ROOT, readProcFile, streamProcFile } from "../procfs/read";
import { forEachMapping, parseSmapsTotals, SmapsParser } from "../procfs/smaps";
import { parseStatus } from "../procfs/status";
import { RegionAccumulator } from "./regions";

const ALLOCATOR_LIBS: Array<[ProcfsAllocator, RegExp]> = [
  ["jemalloc", /\/libjemalloc[^/]*\.so/],
  ["tcmalloc", /\/libtcmalloc[^/]*\.so/],
  ["mimalloc", /\/libmimalloc[^/]*\.so/],
];

export function errno(error: unknown): string {
  return errorCode(error);
}

/** The pids under the proc root, ascending. */
export function pids(procRoot: string): number[] {
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch (error) {
    throw new HeapstateError("PROCFS_UNAVAILABLE", `${procRoot} could not be listed: ${errno(error)}`);
  }
  return names
    .filter((n) => /^[1-9]\d{0,9}$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

export function field(text: string, key: string): string | undefined {
  const m = new RegExp(`^${key}:\\s*(.*)$`, "m").exec(text);
  return m?.[1]?.trim();
}

/** Whether the executable is Node's: by /proc/<pid>/exe when readable, else by comm or argv[0]. */
export function isNode(exe: string | undefined, comm: string | undefined, argv0: string | undefined): boolean {
  const node = (name: string) => /^(node|nodejs)(\d+(\.\d+)*)?$/.test(name);
  if (exe !== undefined) return node(basename(exe.replace(/ \(deleted\)$/, "")));
  return (comm !== undefined && node(comm)) || (argv0 !== undefined && node(basename(argv0)));
}

/** The allocator from the mapped libraries and LD_PRELOAD. */
function allocatorOf(maps: string, preload: string | undefined): HostProcess["allocator"] {
  const mapped = new Map<ProcfsAllocator, string>();
  let libc: "glibc" | "musl" | undefined;
  for (const line of maps.split("\n")) {
    const path = line.slice(line.indexOf("/"));
    if (!line.includes("/")) continue;
    for (const [name, re] of ALLOCATOR_LIBS) if (re.test(path) && !mapped.has(name)) mapped.set(name, path);
    if (/\/libc\.so\.6$/.test(path)) libc = "glibc";
    else if (/\/ld-musl-[^/]*\.so/.test(path)) libc ??= "musl";
  }
  const preloaded = (preload ?? "").split(/[\s:]+/).filter(Boolean);
  for (const [name, path] of mapped) {
    if (preloaded.some((p) => p === path || basename(p) === basename(path) || path.endsWith(`/${basename(p)}`)))
      return { name, how: "preloaded" };
  }
  const base = libc ?? "glibc";
  const others = [...mapped.keys()];
  if (others.length > 0)
    return {
      name: base,
      how: "libc",
      note: `${others.join(", ")} mapped but not preloaded: loaded after libc, so not serving malloc`,
    };
  if (libc === undefined) return undefined;
  return { name: base, how: "libc" };
}

const ARENA = 64 * 1024 * 1024;

/**
 * glibc's arenas from maps: the main one, plus each other arena's heap: a 64 MiB-aligned anonymous
 * rw-p head followed by the PROT_NONE rest of its 64 MiB, or one whole 64 MiB rw-p mapping (the
 * shapes regions.ts names malloc-arena).
 */
function countArenas(maps: string): number {
  const anon: Array<{ start: number; end: number; perms: string }> = [];
  forEachMapping(maps, (m) => {
    if (m.path === "" && m.inode === 0) anon.push({ start: m.start, end: m.end, perms: m.perms });
  });
  let heaps = 0;
  anon.forEach((m, i) => {
    if (m.perms !== "rw-p" || m.start % ARENA !== 0) return;
    const next = anon[i + 1];
    const whole = m.end - m.start === ARENA;
    const headAndTail =
      next !== undefined && next.perms === "---p" && next.start === m.end && next.end === m.start + ARENA;
    if (whole || headAndTail) heaps++;
  });
  return heaps + 1;
}

/** The longest command line a view keeps (a process may have one of a megabyte or more). */
export const COMMAND_MAX = 4096;

function commandOf(argv: string[], comm: string | undefined): { command: string; commandTruncated?: true } {
  const whole = argv.length > 0 ? argv.join(" ") : `[${comm ?? "?"}]`;
  if (whole.length <= COMMAND_MAX) return { command: whole };
  const c = whole.charCodeAt(COMMAND_MAX - 1);
  const at = c >= 0xd800 && c <= 0xdbff ? COMMAND_MAX - 1 : COMMAND_MAX;
  return { command: whole.slice(0, at), commandTruncated: true };
}

export function readOne(procRoot: string, pid: number, tier: Tier, read?: string): HostProcess | undefined {
  const unreadable: string[] = [];
  let status: string;
  try {
    status = read ?? readProcFile(procRoot, pid, "status");
  } catch {
    return undefined; // exited, or not a process
  }
  const comm = field(status, "Name");
  const ppid = Number(field(status, "PPid"));
  const uid = Number(field(status, "Uid")?.split(/\s+/)[0]);
  let argv: string[] = [];
  try {
    argv = readProcFile(procRoot, pid, "cmdline").split("\0").filter(Boolean);
  } catch (error) {
    unreadable.push(`cmdline: ${errno(error)}`);
  }
  let exe: string | undefined;
  try {
    exe = readlinkSync(procRoot === DEFAULT_PROC_ROOT ? `/proc/${pid}/exe` : join(procRoot, String(pid), "exe"));
  } catch {
    // another user's process, or a kernel thread: comm and argv[0] decide
  }
  const counters = parseStatus(status);
  const p: HostProcess = {
    pid,
    ...(Number.isFinite(ppid) ? { ppid } : {}),
    ...(Number.isFinite(uid) ? { uid } : {}),
    ...commandOf(argv, comm),
    node: isNode(exe, comm, argv[0]),
    ...(counters.rssBytes !== undefined ? { rssBytes: counters.rssBytes } : {}),
    ...(counters.swapBytes !== undefined ? { swapBytes: counters.swapBytes } : {}),
    ...(counters.threads !== undefined ? { threads: counters.threads } : {}),
    source: "procfs",
  };
  const cgroup = cgroupOf(procRoot, pid, unreadable);
  if (cgroup !== undefined) p.cgroup = cgroup;
  if (tier !== "fast" && counters.rssBytes !== undefined) readMemoryMaps(procRoot, pid, p, unreadable);
  if (tier === "deep" && p.allocator?.name === "glibc") {
    const rss = glibcArenasRss(procRoot, pid, unreadable);
    if (rss !== undefined) p.glibcArenasRssBytes = rss;
  }
  if (counters.rssBytes === undefined && unreadable.length === 0)
    unreadable.push("status: no memory (a kernel thread or a zombie)");
  if (unreadable.length > 0) p.unreadable = unreadable;
  return p;
}

/** The process's memory cgroup, as /proc/PID/cgroup names it. */
function cgroupOf(procRoot: string, pid: number, unreadable: string[]): string | undefined {
  try {
    const lines = parseProcCgroup(readProcFile(procRoot, pid, "cgroup"));
    const line =
      lines.find((l) => l.controllers.includes("memory")) ??
      lines.find((l) => l.id === 0 && l.controllers.length === 0);
    return line?.path;
  } catch (error) {
    unreadable.push(`cgroup: ${errno(error)}`);
    return undefined;
  }
}

/** smaps_rollup's RSS, PSS, USS and swap; from maps and the environment, the allocator and glibc's arenas. */
function readMemoryMaps(procRoot: string, pid: number, p: HostProcess, unreadable: string[]): void {
  try {
    const t = parseSmapsTotals(readProcFile(procRoot, pid, "smaps_rollup"));
    if (t.rssBytes !== undefined) p.rssBytes = t.rssBytes;
    if (t.pssBytes !== undefined) p.pssBytes = t.pssBytes;
    if (t.privateCleanBytes !== undefined && t.privateDirtyBytes !== undefined)
      p.ussBytes = t.privateCleanBytes + t.privateDirtyBytes;
    if (t.swapBytes !== undefined) p.swapBytes = t.swapBytes;
  } catch (error) {
    unreadable.push(`smaps_rollup: ${errno(error)}`);
  }
  let maps: string | undefined;
  try {
    maps = readProcFile(procRoot, pid, "maps");
  } catch (error) {
    unreadable.push(`maps: ${errno(error)}`);
  }
  let preload: string | undefined;
  try {
    const env = readProcFile(procRoot, pid, "environ").split("\0");
    preload = env.find((e) => e.startsWith("LD_PRELOAD="))?.slice("LD_PRELOAD=".length);
  } catch (error) {
    unreadable.push(`environ: ${errno(error)}`);
  }
  if (maps !== undefined) {
    const allocator = allocatorOf(maps, preload);
    if (allocator) p.allocator = allocator;
    if (allocator?.name === "glibc") p.glibcArenas = countArenas(maps);
  }
}

/** The resident bytes of glibc's arenas, from smaps (deep tier). */
function glibcArenasRss(procRoot: string, pid: number, unreadable: string[]): number | undefined {
  try {
    const acc = new RegionAccumulator(false);
    const parser = new SmapsParser((m) => acc.push(m));
    streamProcFile(procRoot, pid, "smaps", (c) => parser.write(c));
    parser.end();
    return acc
      .finish()
      .filter((r) => r.category === "malloc-main-arena" || r.category === "malloc-arena")
      .reduce((n, r) => n + (r.rssBytes ?? 0), 0);
  } catch (error) {
    unreadable.push(`smaps: ${errno(error)}`);
    return undefined;
  }
}

export function totalsOf(processes: HostProcess[]): ProcessTotals {
  const sum = (k: "rssBytes" | "pssBytes" | "ussBytes" | "swapBytes") => {
    const values = processes.map((p) => p[k]).filter((v): v is number => v !== undefined);
    return values.length > 0 ? values.reduce((a, b) => a + b, 0) : undefined;
  };
  const rss = sum("rssBytes");
  const pss = sum("pssBytes");
  const uss = sum("ussBytes");
  const swap = sum("swapBytes");
  return {
    processes: processes.length,
    // No process: nothing, truly 0. Processes none of which has a figure (kernel threads): absent.
    ...(rss !== undefined ? { rssBytes: rss } : processes.length === 0 ? { rssBytes: 0 } : {}),
    ...(pss !== undefined ? { pssBytes: pss } : {}),
    ...(uss !== undefined ? { ussBytes: uss } : {}),
    ...(swap !== undefined ? { swapBytes: swap } : {}),
    withoutPss: processes.filter((p) => p.rssBytes !== undefined && p.pssBytes === undefined).length,
  };
}

export const byRss = (a: HostProcess, b: HostProcess) => (b.rssBytes ?? -1) - (a.rssBytes ?? -1) || a.pid - b.pid;
