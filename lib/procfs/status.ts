/**
 * `/proc/<pid>/status`: the kernel's per-process memory counters (kB in the file, bytes here).
 * VmRSS = RssAnon + RssFile + RssShmem. These are the kernel's cached per-mm counters: cheap,
 * and approximate by a few pages (proc(5)); smaps_rollup is the exact, costly figure.
 */
import type { ProcessState } from "../types";

/** status key → ProcessState key. */
const keys: Record<string, keyof ProcessState> = {
  VmRSS: "rssBytes",
  RssAnon: "rssAnonBytes",
  RssFile: "rssFileBytes",
  RssShmem: "rssShmemBytes",
  VmHWM: "peakRssBytes",
  VmSize: "vmSizeBytes",
  VmSwap: "swapBytes",
};

const linePattern = /^(\w+):\s+(\d{1,15}) kB\s*$/;

/** Parses status text. Keys missing or malformed in the text are absent in the result. */
export function parseStatus(text: string): ProcessState {
  const out: ProcessState = {};
  for (const line of text.split("\n")) {
    const m = linePattern.exec(line);
    if (!m) continue;
    const key = keys[m[1] as string];
    if (key === undefined || out[key] !== undefined) continue;
    out[key] = Number(m[2]) * 1024;
  }
  return out;
}
