/** What show-host reads, as chosen on the command line, and the one reading it makes of it. */

import type { Snapshot, Tier } from "../../core";
import { collect } from "../../core";
import type { Paint } from "./io";

export interface ShowOptions {
  pid?: number | undefined;
  tier: Tier;
  top?: number | undefined;
  /** The N largest native allocation sites (this process, or another through its agent). */
  sites?: number | undefined;
  /** With sites: jemalloc's sampling on for this long first (sampleNativeSites). */
  windowMs?: number | undefined;
  addresses: boolean;
  json: boolean;
  paint: Paint;
  /** Where text is wrapped. */
  width: number;
}

export function read(o: ShowOptions): Snapshot {
  const self = o.pid === undefined || o.pid === process.pid;
  return collect({
    tier: o.tier,
    ...(o.pid !== undefined ? { pid: o.pid } : {}),
    includeAddresses: o.top !== undefined || o.addresses,
    ...(o.sites !== undefined && self ? { nativeSites: { top: o.sites } } : {}),
  });
}
