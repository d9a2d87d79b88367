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
import * as is from "../base/validate";
import { TIERS, type Tier } from "../model/types";
import { parseProcCgroup } from "../procfs/cgroup";
import { DEFAULT_PROC_ROOT, readProcFile, streamProcFile } from "../procfs/read";
import { forEachMapping, parseSmapsTotals, SmapsParser } from "../procfs/smaps";
import { parseStatus } from "../procfs/status";
import { RegionAccumulator } from "./regions";

export type ProcfsAllocator = "glibc" | "musl" | "jemalloc" | "tcmalloc" | "mimalloc";

export interface HostProcess {
  pid: number;
  ppid?: number;
  uid?: number;
  /**
   * The command line, arguments joined by spaces (the kernel's `comm` when cmdline is empty), at
   * most COMMAND_MAX (4096) characters: a longer one is cut there and `commandTruncated` says so.
   */
  command: string;
  commandTruncated?: true;
  /** A Node.js process: its executable is named node (or nodejs), or its comm is "node". */
  node: boolean;
  rssBytes?: number;
  pssBytes?: number;
  /** Private_Clean + Private_Dirty (smaps_rollup): the pages only this process maps. */
  ussBytes?: number;
  swapBytes?: number;
  threads?: number;
  /**
   * The allocator serving malloc, as far as procfs can tell: a preloaded allocator that is mapped
   * serves malloc; one that is mapped but not preloaded was loaded after libc and does not.
   */
  allocator?: { name: ProcfsAllocator; how: "preloaded" | "libc"; note?: string };
  /** glibc's arenas: the main one and the 64 MiB-aligned heaps of the others (from maps). */
  glibcArenas?: number;
  /** deep tier: the arenas' resident bytes (smaps). */
  glibcArenasRssBytes?: number;
  /** The memory cgroup's path (v2, else v1's memory controller). */
  cgroup?: string;
  /**
   * Where the row comes from: "procfs", or "agent" when the process answered its own reading
   * (startAgent(), the CLI asks): then `allocator` is the one its reading names, and `agent` has
   * its allocator's figures and findings.
   */
  source: "procfs" | "agent";
  /** The process's own reading through its agent: its serving allocator, native heap (its key figure, the counter named) and findings. */
  agent?: {
    allocator: string;
    version?: string;
    nativeHeapBytes?: number;
    nativeHeapCounter?: "allocated" | "committed";
    findings: string[];
  };
  /**
   * Why an agent socket found for the process was not used (not provably the process's own: a
   * directory or socket of another user's, a socket not among its descriptors; or no answer that
   * is its reading): the row is from procfs.
   */
  agentNotUsed?: string;
  /** What could not be read, and why (file: errno code). */
  unreadable?: string[];
}

export interface ProcessTotals {
  processes: number;
  /** Σ RSS: shared pages are counted once per process that maps them. Absent when no process's RSS was read. */
  rssBytes?: number;
  /** Σ PSS: each shared page counted once in all. Absent when no process's PSS was read. */
  pssBytes?: number;
  ussBytes?: number;
  swapBytes?: number;
  /** Processes whose PSS could not be read (their RSS is in rssBytes, their PSS is not in pssBytes). */
  withoutPss: number;
}

export interface HostView {
  time: string;
  tier: Tier;
  /** Sorted by RSS, largest first. */
  processes: HostProcess[];
  totals: ProcessTotals;
}

export interface TreeFinding {
  id:
    | "tree-shared-pages"
    | "tree-dominant-process"
    | "tree-swap"
    | "tree-unreadable"
    | "tree-common-finding"
    | "tree-one-growing";
  severity: "info" | "warn";
  message: string;
  evidence: Record<string, number | string>;
}

export interface ProcessTree extends HostView {
  root: number;
  /** Each process's share of the tree's PSS (0–1), by pid. */
  pssShare: Record<number, number>;
  findings: TreeFinding[];
}

const ALLOCATOR_LIBS: Array<[ProcfsAllocator, RegExp]> = [
  ["jemalloc", /\/libjemalloc[^/]*\.so/],
  ["tcmalloc", /\/libtcmalloc[^/]*\.so/],
  ["mimalloc", /\/libmimalloc[^/]*\.so/],
];

function errno(error: unknown): string {
  return errorCode(error);
}

/** The pids under the proc root, ascending. */
function pids(procRoot: string): number[] {
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

function field(text: string, key: string): string | undefined {
  const m = new RegExp(`^${key}:\\s*(.*)$`, "m").exec(text);
  return m?.[1]?.trim();
}

/** Whether the executable is Node's: by /proc/<pid>/exe when readable, else by comm or argv[0]. */
function isNode(exe: string | undefined, comm: string | undefined, argv0: string | undefined): boolean {
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

function readOne(procRoot: string, pid: number, tier: Tier, read?: string): HostProcess | undefined {
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
  try {
    const lines = parseProcCgroup(readProcFile(procRoot, pid, "cgroup"));
    const line =
      lines.find((l) => l.controllers.includes("memory")) ??
      lines.find((l) => l.id === 0 && l.controllers.length === 0);
    if (line) p.cgroup = line.path;
  } catch (error) {
    unreadable.push(`cgroup: ${errno(error)}`);
  }
  if (tier !== "fast" && counters.rssBytes !== undefined) {
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
  if (tier === "deep" && p.allocator?.name === "glibc") {
    try {
      const acc = new RegionAccumulator(false);
      const parser = new SmapsParser((m) => acc.push(m));
      streamProcFile(procRoot, pid, "smaps", (c) => parser.write(c));
      parser.end();
      p.glibcArenasRssBytes = acc
        .finish()
        .filter((r) => r.category === "malloc-main-arena" || r.category === "malloc-arena")
        .reduce((n, r) => n + (r.rssBytes ?? 0), 0);
    } catch (error) {
      unreadable.push(`smaps: ${errno(error)}`);
    }
  }
  if (counters.rssBytes === undefined && unreadable.length === 0)
    unreadable.push("status: no memory (a kernel thread or a zombie)");
  if (unreadable.length > 0) p.unreadable = unreadable;
  return p;
}

function totalsOf(processes: HostProcess[]): ProcessTotals {
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

const byRss = (a: HostProcess, b: HostProcess) => (b.rssBytes ?? -1) - (a.rssBytes ?? -1) || a.pid - b.pid;

export interface HostViewOptions {
  /** Every process, not only Node's (default false). */
  all?: boolean;
  tier?: Tier;
  /** Pids left out (the CLI leaves itself out). */
  exclude?: number[];
  procRoot?: string;
}

/**
 * The host's Node processes (or every process with `all`), sorted by RSS, with totals that count
 * shared pages once.
 * @example
 * const v = hostProcesses(); console.log(v.processes.length, v.totals.pssBytes);
 */
export function hostProcesses(options?: HostViewOptions): HostView {
  const where = "hostProcesses(options)";
  const o = is.optionsObject(where, options, ["all", "tier", "exclude", "procRoot"]);
  const all = is.bool(where, "all", o.all, false);
  const tier = is.oneOf(where, "tier", o.tier, "standard", TIERS);
  const procRoot = is.text(where, "procRoot", o.procRoot, DEFAULT_PROC_ROOT);
  const exclude = new Set(is.list(where, "exclude", o.exclude, "pid", (v): v is number => Number.isInteger(v)));
  const time = new Date().toISOString();
  const processes: HostProcess[] = [];
  for (const pid of pids(procRoot)) {
    if (exclude.has(pid)) continue;
    let status: string;
    try {
      status = readProcFile(procRoot, pid, "status");
    } catch {
      continue; // exited, or not a process
    }
    if (!all) {
      // Cheap first: only Node processes are read in full.
      let exe: string | undefined;
      try {
        exe = readlinkSync(procRoot === DEFAULT_PROC_ROOT ? `/proc/${pid}/exe` : join(procRoot, String(pid), "exe"));
      } catch {}
      let argv0: string | undefined;
      if (exe === undefined) {
        try {
          argv0 = readProcFile(procRoot, pid, "cmdline").split("\0")[0];
        } catch {}
      }
      if (!isNode(exe, field(status, "Name"), argv0)) continue;
    }
    const p = readOne(procRoot, pid, tier, status);
    if (p) processes.push(p);
  }
  processes.sort(byRss);
  return { time, tier, processes, totals: totalsOf(processes) };
}

const MiB = 1024 * 1024;

function treeFindings(processes: HostProcess[], totals: ProcessTotals): TreeFinding[] {
  const out: TreeFinding[] = [];
  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  if (totals.pssBytes !== undefined && totals.rssBytes !== undefined && totals.withoutPss === 0) {
    const shared = totals.rssBytes - totals.pssBytes;
    if (processes.length > 1 && shared > 0.1 * totals.rssBytes) {
      out.push({
        id: "tree-shared-pages",
        severity: "info",
        message: `RSS counts ${mib(shared)} of shared pages more than once across these ${processes.length} processes: their memory is ${mib(totals.pssBytes)} (Σ PSS), not ${mib(totals.rssBytes)} (Σ RSS)`,
        evidence: { rssBytes: totals.rssBytes, pssBytes: totals.pssBytes },
      });
    }
    const top = [...processes].sort((a, b) => (b.pssBytes ?? 0) - (a.pssBytes ?? 0))[0];
    if (top?.pssBytes !== undefined && processes.length >= 3 && top.pssBytes >= 0.5 * totals.pssBytes) {
      out.push({
        id: "tree-dominant-process",
        severity: "info",
        message: `process ${top.pid} holds ${Math.round((top.pssBytes / totals.pssBytes) * 100)}% of the tree's memory (${mib(top.pssBytes)} of ${mib(totals.pssBytes)} PSS): read it with --pid ${top.pid}`,
        evidence: { pid: top.pid, pssBytes: top.pssBytes, treePssBytes: totals.pssBytes },
      });
    }
  }
  const swapped = processes.filter((p) => (p.swapBytes ?? 0) > 0);
  if (swapped.length > 0) {
    const bytes = swapped.reduce((n, p) => n + (p.swapBytes ?? 0), 0);
    out.push({
      id: "tree-swap",
      severity: "warn",
      message: `${swapped.length} of these processes have ${mib(bytes)} in swap (${swapped.map((p) => p.pid).join(", ")}): their RSS understates what they use`,
      evidence: { processes: swapped.length, swapBytes: bytes },
    });
  }
  if (totals.withoutPss > 0) {
    const which = processes.filter((p) => p.rssBytes !== undefined && p.pssBytes === undefined);
    const why = which
      .slice(0, 5)
      .map((p) => `${p.pid}: ${(p.unreadable ?? []).find((u) => u.startsWith("smaps_rollup")) ?? "?"}`)
      .join("; ");
    out.push({
      id: "tree-unreadable",
      severity: "info",
      message: `${which.length} of these processes could not be read in full (${why}; another user's process needs that user or root): Σ PSS leaves them out`,
      evidence: { processes: which.length },
    });
  }
  return out;
}

/**
 * A process and its descendants: per-process rows, totals that count shared pages once, each
 * process's share of the tree's PSS, and findings across the tree.
 * @example
 * const t = collectTree({ pid: Number(process.env.PRIMARY_PID) });
 * for (const p of t.processes) console.log(p.pid, p.pssBytes, t.pssShare[p.pid]);
 */
export function collectTree(options: { pid: number; tier?: Tier; procRoot?: string }): ProcessTree {
  const where = "collectTree(options)";
  const o = is.optionsObject(where, options, ["pid", "tier", "procRoot"]);
  const root = is.pid(where, o.pid, -1);
  if (root < 0) throw is.invalidOption(where, "pid is required");
  const tier = is.oneOf(where, "tier", o.tier, "standard", TIERS);
  const procRoot = is.text(where, "procRoot", o.procRoot, DEFAULT_PROC_ROOT);
  const time = new Date().toISOString();
  // Parents from every process's status (world-readable).
  const children = new Map<number, number[]>();
  for (const pid of pids(procRoot)) {
    let ppid: number;
    try {
      ppid = Number(field(readProcFile(procRoot, pid, "status"), "PPid"));
    } catch {
      continue;
    }
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const processes: HostProcess[] = [];
  const queue = [root];
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const p = readOne(procRoot, pid, tier);
    if (p === undefined) {
      if (pid === root) throw new HeapstateError("NO_SUCH_PROCESS", `process ${root} does not exist`);
      continue;
    }
    processes.push(p);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  processes.sort(byRss);
  const totals = totalsOf(processes);
  const pssShare: Record<number, number> = {};
  if (totals.pssBytes)
    for (const p of processes)
      if (p.pssBytes !== undefined) pssShare[p.pid] = Math.round((p.pssBytes / totals.pssBytes) * 10_000) / 10_000;
  return { time, tier, root, processes, totals, pssShare, findings: treeFindings(processes, totals) };
}

/**
 * Findings that several processes of a tree raise in their own readings (from their agents): a
 * pattern across workers, such as each one's glibc holding freed memory, is one cause to fix once.
 */
export function commonFindings(processes: readonly HostProcess[]): TreeFinding[] {
  const by = new Map<string, number[]>();
  for (const p of processes) for (const id of p.agent?.findings ?? []) by.set(id, [...(by.get(id) ?? []), p.pid]);
  const read = processes.filter((p) => p.agent !== undefined).length;
  const out: TreeFinding[] = [];
  for (const [id, pids] of by) {
    if (pids.length < 2) continue;
    out.push({
      id: "tree-common-finding",
      severity: "warn",
      message: `${pids.length} of the ${read} processes read by their agents raise ${id} (${pids.join(", ")}): one cause, to fix once`,
      evidence: { finding: id, processes: pids.length },
    });
  }
  return out;
}

/**
 * Between two readings of the same tree (show-host --tree --watch): one process whose PSS grew by
 * more than 16 MiB and 20% while every other stayed within 5%: the one to look at.
 */
export function growthFindings(first: ProcessTree, now: ProcessTree): TreeFinding[] {
  const before = new Map(first.processes.map((p) => [p.pid, p.pssBytes]));
  const grew: Array<{ pid: number; from: number; to: number }> = [];
  let flat = 0;
  for (const p of now.processes) {
    const from = before.get(p.pid);
    if (from === undefined || p.pssBytes === undefined || from <= 0) continue;
    const d = p.pssBytes - from;
    if (d > 16 * MiB && d > 0.2 * from) grew.push({ pid: p.pid, from, to: p.pssBytes });
    else if (Math.abs(d) <= 0.05 * from) flat++;
  }
  const only = grew[0];
  if (grew.length !== 1 || only === undefined || flat < 1) return [];
  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  return [
    {
      id: "tree-one-growing",
      severity: "warn",
      message: `process ${only.pid} grew from ${mib(only.from)} to ${mib(only.to)} PSS since ${first.time} while its ${flat} siblings stayed flat: read it with --pid ${only.pid}`,
      evidence: { pid: only.pid, fromBytes: only.from, toBytes: only.to, flat },
    },
  ];
}
