/**
 * mimalloc: mi_process_info → AllocatorState. Source: committed ← `current_commit`. mimalloc 2.0
 * has no numeric allocated-bytes getter (its release builds do not even count them), so
 * `allocatedBytes` is absent. Its `current_rss` is not RSS on Linux: it is set to the commit
 * figure, so it is kept in `raw` only. What each version can tell: README, "Fields".
 */

import type { NativeReadInstance } from "../addon/native";
import type { AllocatorState, Warning } from "../model/types";
import { bytes, defined, implausible, unmapped } from "./values";

/** mi_version() 209 → "2.0.9". */
export function mimallocVersion(v: number | undefined): string | undefined {
  if (v === undefined || !Number.isInteger(v) || v < 0) return undefined;
  return `${Math.floor(v / 100)}.${Math.floor((v % 100) / 10)}.${v % 10}`;
}

/**
 * Libraries whose commit counter has been seen below zero in this process. mimalloc 2.0's
 * `current_commit` loses track after huge blocks are freed: it is wrong long before it wraps
 * (503 → 119 MiB while RSS fell by 191 MiB), so once it has wrapped it is never trusted again here.
 */
const commitInvalid = new Set<string>();

export function mimallocState(inst: NativeReadInstance, warnings: Warning[]): AllocatorState {
  const v = inst.values;
  if (implausible(v, "current_commit")) commitInvalid.add(inst.library);
  const invalid = commitInvalid.has(inst.library);
  if (invalid) {
    warnings.push({
      source: "mimalloc",
      code: "MIMALLOC_COUNTER_INVALID",
      message: `mimalloc's current_commit has gone below zero in this process (read as ${String(v.current_commit)}: its statistic underflows after huge blocks are freed and is wrong before it does); committedBytes is left out for the rest of the process's life`,
    });
  }
  return {
    allocator: "mimalloc",
    library: inst.library,
    servesMalloc: inst.servesMalloc,
    ...defined({
      version: mimallocVersion(bytes(v, "mi_version")),
      committedBytes: invalid ? undefined : bytes(v, "current_commit"),
    }),
    raw: unmapped(v, ["mi_version", invalid ? "" : "current_commit"]),
  };
}
