/** What `heapstate show-host` and collectTree() answer with: one process as procfs shows it, totals, trees, their findings. */
import type { AllocatorName, FindingId, Tier } from "./types";

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
    allocator: AllocatorName | "unknown";
    version?: string;
    nativeHeapBytes?: number;
    nativeHeapCounter?: "allocated" | "committed";
    findings: FindingId[];
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
