/**
 * `/proc/<pid>/status`: the kernel's per-process memory counters (kB in the file, bytes here).
 * VmRSS = RssAnon + RssFile + RssShmem. These are the kernel's cached per-mm counters: cheap,
 * and approximate by a few pages (proc(5)); smaps_rollup is the exact, costly figure.
 */
import type { ProcessState } from "../types";

type ByteKey = Exclude<keyof ProcessState, "rssSource" | "threadNames">;

/** status key → ProcessState key. */
const keys: Record<string, ByteKey> = {
  VmRSS: "rssBytes",
  RssAnon: "rssAnonBytes",
  RssFile: "rssFileBytes",
  RssShmem: "rssShmemBytes",
  VmHWM: "peakRssBytes",
  VmSize: "vmSizeBytes",
  VmSwap: "swapBytes",
  Threads: "threads",
};
const entries = Object.entries(keys) as Array<[string, ByteKey]>;

/**
 * Parses status text. Keys missing or malformed in the text are absent in the result. A scan for
 * the eight keys, not a regular expression per line: it runs on every fast reading.
 */
export function parseStatus(text: string): ProcessState {
  const out: ProcessState = {};
  for (const [name, key] of entries) {
    let at = 0;
    if (!text.startsWith(`${name}:`)) {
      const nl = text.indexOf(`\n${name}:`);
      if (nl < 0) continue;
      at = nl + 1;
    }
    const end = text.indexOf("\n", at);
    const line = text.slice(at + name.length + 1, end < 0 ? text.length : end);
    if (key === "threads") {
      const t = /^\s+(\d{1,9})\s*$/.exec(line);
      if (t) out.threads = Number(t[1]);
      continue;
    }
    const m = /^\s+(\d{1,15}) kB\s*$/.exec(line);
    if (m) out[key] = Number(m[1]) * 1024;
  }
  return out;
}
