/**
 * `/proc/<pid>/status`: the kernel's per-process memory counters (kB in the file, bytes here).
 * VmRSS = RssAnon + RssFile + RssShmem. These are the kernel's cached per-mm counters: cheap,
 * and approximate by a few pages (proc(5)); smaps_rollup is the exact, costly figure.
 */
import type { ProcessState } from "../types";

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

/** Whitespace as a regular expression's `\s` sees it, within a line (so never the newline). */
function blank(c: number): boolean {
  if (c === 32 || c === 9) return true;
  if (c < 11) return false;
  return (
    c <= 13 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/**
 * The value of one line's rest (`text[from, end)`, after the colon): at least one blank, 1 to
 * `maxDigits` digits, then " kB" when `kB`, then blanks only. Undefined when it is anything else.
 */
function value(text: string, from: number, end: number, maxDigits: number, kB: boolean): number | undefined {
  let i = from;
  while (i < end && blank(text.charCodeAt(i))) i++;
  if (i === from) return undefined;
  let n = 0;
  const digits = i;
  for (; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  if (i === digits || i - digits > maxDigits) return undefined;
  if (kB) {
    if (!text.startsWith(" kB", i)) return undefined;
    i += 3;
  }
  while (i < end && blank(text.charCodeAt(i))) i++;
  return i === end ? n : undefined;
}

/**
 * Parses status text. Keys missing or malformed in the text are absent in the result; a key that
 * appears twice counts at its first line. One pass over the lines, comparing in place and
 * allocating only the result: it runs on every fast reading.
 */
export function parseStatus(text: string): ProcessState {
  const found: Array<number | undefined> = new Array(keys.length).fill(undefined);
  let seen = 0;
  let at = 0;
  const length = text.length;
  while (at < length && seen !== (1 << keys.length) - 1) {
    let end = text.indexOf("\n", at);
    if (end < 0) end = length;
    for (let k = 0; k < keys.length; k++) {
      const name = (keys[k] as readonly [string, ByteKey])[0];
      if ((seen & (1 << k)) !== 0 || text.charCodeAt(at + name.length) !== 58 || !text.startsWith(name, at)) continue;
      seen |= 1 << k;
      const v = value(text, at + name.length + 1, end, k === THREADS ? 9 : 15, k !== THREADS);
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
