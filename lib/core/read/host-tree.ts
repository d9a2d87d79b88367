/**
 * Process trees (collectTree(): a process and its descendants, totals counting shared pages once)
 * and the findings across processes: shared pages counted more than once, one finding raised by
 * many, the one process that grew.
 */
import { HeapstateError } from "../base/errors";
import * as is from "../base/validate";
import type { HostProcess, ProcessTotals, ProcessTree, TreeFinding } from "../model/host-types";
import { TIERS, type Tier } from "../model/types";
import { DEFAULT_PROC_ROOT, readProcFile } from "../procfs/read";
import { byRss, field, pids, readOne, totalsOf } from "./host-scan";

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
