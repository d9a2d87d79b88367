/** collect()'s options, checked once by the shared validator into a plan the reading follows. */

import { HeapstateError } from "../base/errors";
import * as is from "../base/validate";
import { TIERS, type Tier } from "../model/types";
import { DEFAULT_PROC_ROOT } from "../procfs/read";

export const COLLECT_OPTIONS = ["tier", "pid", "includeAddresses", "procRoot", "fsRoot", "nativeSites"] as const;

/** What one reading reads. */
export interface ReadPlan {
  tier: Tier;
  pid: number;
  /** The process read is this one: its allocators and V8 can be read. */
  self: boolean;
  includeAddresses: boolean;
  procRoot: string;
  fsRoot: string;
  /** How many allocation sites of the native heap to give (0: none; deep tier, this process only). */
  nativeSites: number;
}

/** Checks collect()'s options; throws HeapstateError("INVALID_OPTION") naming a bad one. */
export function readPlan(options: unknown, where = "collect(options)"): ReadPlan {
  const o = is.optionsObject(where, options, COLLECT_OPTIONS);
  const pid = is.pid(where, o.pid, process.pid);
  const tier = is.oneOf(where, "tier", o.tier, "standard", TIERS);
  const nativeSites = sitesOption(where, o.nativeSites);
  if (nativeSites > 0 && (tier !== "deep" || pid !== process.pid))
    throw new HeapstateError("INVALID_OPTION", `${where}: nativeSites needs tier "deep", of this process`);
  return {
    tier,
    pid,
    self: pid === process.pid,
    includeAddresses: is.bool(where, "includeAddresses", o.includeAddresses, false),
    procRoot: is.text(where, "procRoot", o.procRoot, DEFAULT_PROC_ROOT),
    fsRoot: is.text(where, "fsRoot", o.fsRoot, "/"),
    nativeSites,
  };
}

/** `nativeSites`: true (10 sites), false, or { top } with top from 1 to 1000. */
function sitesOption(where: string, v: unknown): number {
  if (v === undefined || v === false) return 0;
  if (v === true) return 10;
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const top = (v as { top?: unknown }).top;
    if (top === undefined) return 10;
    if (typeof top === "number" && Number.isInteger(top) && top >= 1 && top <= 1000) return top;
  }
  throw new HeapstateError("INVALID_OPTION", `${where}: nativeSites must be true, false or { top: 1 to 1000 }`);
}
