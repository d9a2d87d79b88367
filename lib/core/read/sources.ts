/**
 * The kernel's sources of one reading (status, smaps_rollup, smaps), read for a plan, with what
 * their failures mean: for this process a warning, for another process the answer (gone, not
 * readable, a kernel thread, a zombie) unless the failure says we ran short of descriptors or memory.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { errorText, HeapstateError } from "../base/errors";
import type { ProcessState, RegionSummary, Warning, WarningSource } from "../model/types";
import {
  DEFAULT_PROC_ROOT,
  keptSpan,
  ownPath,
  processError,
  readKeptSpan,
  readProcFile,
  readProcText,
  streamProcFile,
} from "../procfs/read";
import type { Text } from "../procfs/scan";
import { parseSmapsTotals, SmapsParser, type SmapsTotals } from "../procfs/smaps";
import { parseStatus } from "../procfs/status";
import type { ReadPlan } from "./options";
import { RegionAccumulator } from "./regions";

/** Errors that say the machine or the process ran short (descriptors, memory), not that the file is wrong. */
const EXHAUSTED = new Set(["EMFILE", "ENFILE", "ENOMEM", "ENOBUFS", "EAGAIN"]);

function exhausted(error: unknown): string | undefined {
  try {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    return typeof code === "string" && EXHAUSTED.has(code) ? code : undefined;
  } catch {
    return undefined; // a thrown value whose code cannot be read says nothing of the machine
  }
}

/** The warning for a source of this process that could not be read. */
export function sourceWarning(o: ReadPlan, source: WarningSource, error: unknown): Warning {
  const code = exhausted(error);
  if (code) {
    return {
      source,
      code: "RESOURCE_EXHAUSTED",
      message: `${source} could not be read (${code}: ${code === "EMFILE" || code === "ENFILE" ? "the descriptor table is full" : "out of memory"}); the next reading tries again`,
    };
  }
  const message = errorText(error);
  if (source === "status" || source === "smaps_rollup" || source === "smaps") {
    return {
      source,
      code: "PROCFS_UNREADABLE",
      message: `${o.procRoot}/${o.pid}/${source} could not be read: ${message}`,
    };
  }
  return { source, code: "SOURCE_FAILED", message: `${source} could not be read: ${message}` };
}

/** For another process, an error from its files is the answer (gone, not readable), unless it says we ran short. */
function otherProcessError(o: ReadPlan, file: string, error: unknown): unknown {
  return exhausted(error) ? error : processError(o.pid, file, error);
}

/**
 * Another process that has no user memory to show: a kernel thread (its smaps say "no such
 * process", which would read as "does not exist") or a zombie (it has exited; only its status
 * entry is left until its parent reaps it).
 */
function refuseWithoutMemory(pid: number, status: string): void {
  const state = /^State:\s*(\S)/m.exec(status)?.[1];
  const name = /^Name:\s*(.*)$/m.exec(status)?.[1]?.trim();
  const called = name ? ` (${name})` : "";
  if (state === "Z" || state === "X") {
    throw new HeapstateError(
      "ZOMBIE_PROCESS",
      `process ${pid}${called} is a zombie: it has exited and holds no memory; its parent has not reaped it yet`,
    );
  }
  // Kthread: since Linux 6.x; before it, a kernel thread is one with no VmSize whose parent is
  // kthreadd (2) or nobody (kthreadd itself). A truncated or broken status is neither.
  const kthread = /^Kthread:\s*(\d)/m.exec(status)?.[1];
  const ppid = /^PPid:\s*(\d+)/m.exec(status)?.[1];
  const oldKernelThread =
    kthread === undefined && state !== undefined && (ppid === "0" || ppid === "2") && !/^VmSize:/m.test(status);
  if (kthread === "1" || oldKernelThread) {
    throw new HeapstateError(
      "KERNEL_THREAD",
      `process ${pid}${called} is a kernel thread: it has no user memory to show`,
    );
  }
}

/** /proc/<pid>/status; throws for another process that is gone, unreadable or has no user memory. */
export function readStatus(o: ReadPlan): ProcessState {
  // The own process's status is parsed where its bytes lie (no view, no string: every fast reading).
  const own = ownPath(o.procRoot, o.pid, "status");
  if (own !== undefined) {
    const bytes = readKeptSpan(own);
    return parseStatus(bytes, keptSpan.start, keptSpan.end);
  }
  let text: Text;
  try {
    text = readProcText(o.procRoot, o.pid, "status");
  } catch (error) {
    throw o.self ? error : otherProcessError(o, "status", error);
  }
  if (!o.self) refuseWithoutMemory(o.pid, typeof text === "string" ? text : text.toString("latin1"));
  return parseStatus(text);
}

/**
 * The deep tier's regions: smaps read by chunks and summed as it streams, so a process with tens
 * of thousands of mappings costs a chunk and a few mappings of memory, not the whole text.
 */
export function readRegions(o: ReadPlan, warnings: Warning[]): RegionSummary[] | undefined {
  const acc = new RegionAccumulator(o.includeAddresses);
  const parser = new SmapsParser((m) => acc.push(m));
  try {
    streamProcFile(o.procRoot, o.pid, "smaps", (chunk) => parser.write(chunk));
  } catch (error) {
    if (!o.self) throw otherProcessError(o, "smaps", error);
    warnings.push(sourceWarning(o, "smaps", error));
    return undefined;
  }
  parser.end();
  return acc.finish();
}

/**
 * The size of the `[heap]` mapping (the program break's heap) in `/proc/<pid>/maps`, read by
 * chunks through the smaps parser (maps is smaps without the field lines): 0 when there is none,
 * undefined when maps cannot be read.
 */
export function readBreakHeapBytes(o: ReadPlan): number | undefined {
  let size = 0;
  const parser = new SmapsParser((m) => {
    if (m.path === "[heap]") size += m.end - m.start;
  });
  try {
    streamProcFile(o.procRoot, o.pid, "maps", (chunk) => parser.write(chunk));
  } catch {
    return undefined;
  }
  parser.end();
  return size;
}

/** smaps_rollup, or (kernels before 4.14) the same keys summed over smaps. */
export function readTotals(o: ReadPlan, warnings: Warning[]): SmapsTotals | undefined {
  try {
    return parseSmapsTotals(readProcText(o.procRoot, o.pid, "smaps_rollup"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      if (!o.self) throw otherProcessError(o, "smaps_rollup", error);
      warnings.push(sourceWarning(o, "smaps_rollup", error));
      return undefined;
    }
  }
  try {
    return parseSmapsTotals(readProcFile(o.procRoot, o.pid, "smaps"));
  } catch (error) {
    if (!o.self) throw otherProcessError(o, "smaps", error);
    const w = sourceWarning(o, "smaps_rollup", error);
    if (w.code === "PROCFS_UNREADABLE") {
      w.message = `${o.procRoot}/${o.pid}/smaps_rollup is missing and smaps could not be read either: ${errorText(error)}`;
    }
    warnings.push(w);
    return undefined;
  }
}

/**
 * The reading's one RSS: smaps_rollup's exact figure replaces status VmRSS (the kernel's cached
 * counter, off by a few pages), which is kept as statusRssBytes. Adds the rollup's other totals.
 */
export function mergeTotals(p: ProcessState, totals: SmapsTotals): void {
  if (totals.rssBytes !== undefined) {
    if (p.rssBytes !== undefined) p.statusRssBytes = p.rssBytes;
    p.rssBytes = totals.rssBytes;
    p.rssSource = "smaps_rollup";
  }
  if (totals.pssBytes !== undefined) p.pssBytes = totals.pssBytes;
  if (totals.privateDirtyBytes !== undefined) p.privateDirtyBytes = totals.privateDirtyBytes;
  if (totals.lazyFreeBytes !== undefined) p.lazyFreeBytes = totals.lazyFreeBytes;
  if (totals.anonHugePagesBytes !== undefined) p.anonHugePagesBytes = totals.anonHugePagesBytes;
}

/** At most this many threads are named (a reading must not cost a file per thread without bound). */
const MAX_NAMED_THREADS = 4096;

/**
 * Threads by name (`/proc/<pid>/task/<tid>/comm`): Node 22 and later name the libuv threadpool's
 * threads "libuv-worker" and (24) worker threads "WorkerThread"; Node 20 names them all "node".
 * Threads that exit while being read are skipped.
 */
export function readThreadNames(o: ReadPlan): Record<string, number> | undefined {
  const dir = o.procRoot === DEFAULT_PROC_ROOT ? `/proc/${o.pid}/task` : join(o.procRoot, String(o.pid), "task");
  let tids: string[];
  try {
    tids = readdirSync(dir);
  } catch {
    return undefined;
  }
  const names: Record<string, number> = Object.create(null);
  for (const tid of tids.slice(0, MAX_NAMED_THREADS)) {
    if (!/^\d+$/.test(tid)) continue;
    let name: string;
    try {
      name = readFileSync(join(dir, tid, "comm"), "utf8").trim();
    } catch {
      continue;
    }
    if (name === "" || name.length > 16) continue;
    names[name] = (names[name] ?? 0) + 1;
  }
  return names;
}
