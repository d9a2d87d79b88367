/**
 * mimalloc: mi_process_info → AllocatorState. Source: committed ← `current_commit`. mimalloc 2.0
 * has no numeric allocated-bytes getter (its release builds do not even count them), so
 * `allocatedBytes` is absent. Its `current_rss` is not RSS on Linux: it is set to the commit
 * figure, so it is kept in `raw` only.
 */
import type { NativeReadInstance } from "../native";
import type { AllocatorState, Warning } from "../types";
import { bytes, defined, implausible } from "./values";

/** mi_version() 209 → "2.0.9". */
export function mimallocVersion(v: number | undefined): string | undefined {
  if (v === undefined || !Number.isInteger(v) || v < 0) return undefined;
  return `${Math.floor(v / 100)}.${Math.floor((v % 100) / 10)}.${v % 10}`;
}

export function mimallocState(inst: NativeReadInstance, warnings: Warning[]): AllocatorState {
  const v = inst.values;
  if (implausible(v, "current_commit")) {
    warnings.push({
      source: "mimalloc",
      code: "MIMALLOC_COUNTER_INVALID",
      message: `mimalloc reported current_commit=${String(v.current_commit)}, a negative count seen as unsigned (its statistic underflows after huge blocks are freed); committedBytes is left out`,
    });
  }
  return {
    allocator: "mimalloc",
    library: inst.library,
    servesMalloc: inst.servesMalloc,
    ...defined({
      version: mimallocVersion(bytes(v, "mi_version")),
      committedBytes: bytes(v, "current_commit"),
    }),
    raw: { ...v },
  };
}
