/** collect()'s options, checked once by the shared validator into a plan the reading follows. */

import * as is from "../base/validate";
import { TIERS, type Tier } from "../model/types";
import { DEFAULT_PROC_ROOT } from "../procfs/read";

export const COLLECT_OPTIONS = ["tier", "pid", "includeAddresses", "procRoot", "fsRoot"] as const;

/** What one reading reads. */
export interface ReadPlan {
  tier: Tier;
  pid: number;
  /** The process read is this one: its allocators and V8 can be read. */
  self: boolean;
  includeAddresses: boolean;
  procRoot: string;
  fsRoot: string;
}

/** Checks collect()'s options; throws HeapstateError("INVALID_OPTION") naming a bad one. */
export function readPlan(options: unknown, where = "collect(options)"): ReadPlan {
  const o = is.optionsObject(where, options, COLLECT_OPTIONS);
  const pid = is.pid(where, o.pid, process.pid);
  return {
    tier: is.oneOf(where, "tier", o.tier, "standard", TIERS),
    pid,
    self: pid === process.pid,
    includeAddresses: is.bool(where, "includeAddresses", o.includeAddresses, false),
    procRoot: is.text(where, "procRoot", o.procRoot, DEFAULT_PROC_ROOT),
    fsRoot: is.text(where, "fsRoot", o.fsRoot, "/"),
  };
}
