/**
 * `/proc/<pid>/status`: the kernel's per-process memory counters (kB in the file, bytes here).
 * VmRSS = RssAnon + RssFile + RssShmem. These are the kernel's cached per-mm counters: cheap,
 * and approximate by a few pages (proc(5)); smaps_rollup is the exact, costly figure.
 */
import type { ProcessState } from "../model/types";
import { code, holdsAt, lineEnd, lineValue, type Text } from "./scan";

type ByteKey = Exclude<keyof ProcessState, "rssSource" | "threadNames">;

/** status key → ProcessState key, in the order the result lists them. */
const keys: ReadonlyArray<readonly [string, ByteKey]> = [
  ["VmRSS", "rssBytes"],
  ["RssAnon", "rssAnonBytes"],
  ["RssFile", "rssFileBytes"],
  ["RssShmem", "rssShmemBytes"],
  ["VmHWM", "peakRssBytes"],
  ["VmSize", "vmSizeBytes"],
  ["VmSwap", "swapBytes"],
  ["Threads", "threads"],
];
const THREADS = keys.length - 1;

/**
 * Each key's value during one parse: one array for the module, not one per reading (a plain array:
 * numbers from a Float64Array made the result's fields boxed doubles, 16 bytes more each).
 */
const found: Array<number | undefined> = new Array(keys.length).fill(undefined);

/**
 * Parses status text (`text[from, to)`: the file's bytes may lie inside a larger buffer). Keys
 * missing or malformed in the text are absent in the result; a key that appears twice counts at
 * its first line. One pass over the lines, comparing in place and allocating only the result: it
 * runs on every fast reading.
 */
export function parseStatus(text: Text, from = 0, to = text.length): ProcessState {
  found.fill(undefined);
  let seen = 0;
  let at = from;
  while (at < to && seen !== (1 << keys.length) - 1) {
    const end = Math.min(lineEnd(text, at), to);
    // Every key read starts with V, R or T: the other lines are passed over on their first letter.
    const first = code(text, at);
    for (let k = first === 86 || first === 82 || first === 84 ? 0 : keys.length; k < keys.length; k++) {
      const name = (keys[k] as readonly [string, ByteKey])[0];
      const colon = at + name.length;
      if ((seen & (1 << k)) !== 0 || colon >= end || code(text, colon) !== 58 || !holdsAt(text, name, at)) continue;
      seen |= 1 << k;
      const v = lineValue(text, colon + 1, end, k === THREADS ? 9 : 15, k !== THREADS);
      if (v !== undefined) found[k] = k === THREADS ? v : v * 1024;
      break;
    }
    at = end + 1;
  }
  const out: ProcessState = {};
  for (let k = 0; k < keys.length; k++) {
    const v = found[k];
    if (v !== undefined) out[(keys[k] as readonly [string, ByteKey])[1]] = v;
  }
  return out;
}
