/** hostProcesses(): the host's Node processes (or all), read as procfs shows them (read/host-scan.ts). */
import { readlinkSync } from "node:fs";
import { join } from "node:path";
import * as is from "../base/validate";
import type { HostProcess, HostView } from "../model/host-types";
import { TIERS, type Tier } from "../model/types";
import { DEFAULT_PROC_ROOT, readProcFile } from "../procfs/read";
import { byRss, field, isNode, pids, readOne, totalsOf } from "./host-scan";

export type {
  HostProcess,
  HostView,
  ProcessTotals,
  ProcessTree,
  ProcfsAllocator,
  TreeFinding,
} from "../model/host-types";
export { COMMAND_MAX } from "./host-scan";

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
