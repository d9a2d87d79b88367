/**
 * sampleNativeSites(): the native allocation sites of what a window allocated and still holds at
 * its end. A process started with jemalloc's profile on and its sampling off
 * (MALLOC_CONF=prof:true,prof_active:false,lg_prof_sample:19) pays nothing for it until asked;
 * this switches sampling on (`prof.active`) for the window, reads the deep tier with its sites at
 * the end, and sets sampling back as it was. What was sampled before the window is not in it
 * unless sampling was already on, which a warning then says.
 */
import { native } from "../addon/native";
import { HeapstateError } from "../base/errors";
import * as is from "../base/validate";
import type { Snapshot, Warning } from "../model/types";
import { refuseInsideReading } from "../read/collect";
import { defaultProcess } from "../read/process";

export interface SampleSitesOptions {
  /** How long sampling stays on (ms), from 1. */
  durationMs: number;
  /** The sites listed (1 to 1000; default 10). */
  top?: number;
}

function windowWarning(message: string): Warning {
  return { source: "jemalloc", code: "NATIVE_SITES_UNAVAILABLE", message };
}

/** Windows of this process running now, and prof.active as the first of them found it. */
let running = 0;
let foundActive = 0;

/**
 * Samples native allocations for `durationMs`, then resolves with a deep reading whose `nativeSites`
 * hold what the window allocated and still holds (`nativeSites.window` says from when). Where
 * jemalloc with its profile does not serve malloc, the reading carries the warning that says how
 * to start it so, and no sites.
 * @example
 * // node started with LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=prof:true,prof_active:false,lg_prof_sample:19
 * const r = await sampleNativeSites({ durationMs: 60_000 });
 * console.log(r.nativeSites?.sites[0]);
 */
export async function sampleNativeSites(options: SampleSitesOptions): Promise<Snapshot> {
  refuseInsideReading("sampleNativeSites()");
  const where = "sampleNativeSites(options)";
  const o = is.optionsObject(where, options, ["durationMs", "top"]);
  if (o.durationMs === undefined) throw new HeapstateError("INVALID_OPTION", `${where}: durationMs is required`);
  const durationMs = is.intervalMs(where, "durationMs", o.durationMs, 0, 1);
  const top = is.integer(where, "top", o.top, 10, 1, 1000);
  const binding = native();
  const heap = defaultProcess.collect({ tier: "fast" }).heap;
  const warnings: Warning[] = [];
  let previous: number | undefined;
  if (heap?.allocator === "jemalloc" && heap.servesMalloc && heap.config?.prof === true && binding?.profActive) {
    previous = binding.profActive(true);
    if (previous < 0) {
      warnings.push(windowWarning(`jemalloc's prof.active could not be switched on (error ${-previous})`));
      previous = undefined;
    } else {
      if (running === 0) foundActive = previous;
      running++;
      if (previous === 1)
        warnings.push(
          windowWarning(
            `jemalloc's sampling was already on (prof.active${running > 1 ? ", another window of this process" : ""}): the sites include what was sampled before the window`,
          ),
        );
    }
  }
  const since = new Date().toISOString();
  // Without a profile to sample into there is nothing to wait for: the reading says why at once.
  let reading: Snapshot;
  try {
    if (previous !== undefined) await new Promise((resolve) => setTimeout(resolve, durationMs));
    // Read while sampling is still on: the reading then sees it on, as it was for the window.
    reading = defaultProcess.collect({ tier: "deep", nativeSites: { top } });
  } finally {
    // Sampling goes back off with the last window, and only if the first found it off.
    if (previous !== undefined && --running === 0 && foundActive === 0) binding?.profActive?.(false);
  }
  reading.warnings.push(...warnings);
  if (reading.nativeSites && previous === 0) reading.nativeSites.window = { since, durationMs };
  return reading;
}
