/**
 * `/proc/<pid>/smaps_rollup` and `/proc/<pid>/smaps`: pure parsers. The rollup is one page-table
 * walk summed over all mappings (Linux ≥ 4.14); without it the same keys are summed from smaps.
 * Per-mapping smaps feeds the region categories. Values in the files are kB; here bytes.
 */
import { code, holdsAt, lineEnd, lineValue, type Text } from "./scan";

/** The smaps keys heapstate uses, summed. Keys missing from the text stay absent. */
export interface SmapsTotals {
  rssBytes?: number;
  pssBytes?: number;
  privateDirtyBytes?: number;
  /** Private_Clean: with Private_Dirty, the process's unique set (USS). */
  privateCleanBytes?: number;
  anonymousBytes?: number;
  lazyFreeBytes?: number;
  anonHugePagesBytes?: number;
  swapBytes?: number;
}

const totalKeys: Record<string, keyof SmapsTotals> = {
  Rss: "rssBytes",
  Pss: "pssBytes",
  Private_Dirty: "privateDirtyBytes",
  Private_Clean: "privateCleanBytes",
  Anonymous: "anonymousBytes",
  LazyFree: "lazyFreeBytes",
  AnonHugePages: "anonHugePagesBytes",
  Swap: "swapBytes",
};

const totalEntries = Object.entries(totalKeys) as Array<[string, keyof SmapsTotals]>;

/**
 * Parses smaps_rollup text (or any smaps text: every mapping's figures are summed). A line counts
 * when it is `Key:` (letters and underscores), blanks, at most 15 digits (a larger figure is not a
 * real one) and " kB"; scanned in place, it runs at every standard reading.
 */
export function parseSmapsTotals(text: Text): SmapsTotals {
  const out: SmapsTotals = {};
  const length = text.length;
  for (let at = 0; at < length; ) {
    const end = lineEnd(text, at);
    let colon = at;
    for (;;) {
      const c = code(text, colon);
      if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) colon++;
      else break;
    }
    if (colon > at && colon < end && code(text, colon) === 58) {
      for (const [name, key] of totalEntries) {
        if (colon - at !== name.length || !holdsAt(text, name, at)) continue;
        const v = lineValue(text, colon + 1, end, 15, true);
        if (v !== undefined) out[key] = (out[key] ?? 0) + v * 1024;
        break;
      }
    }
    at = end + 1;
  }
  return out;
}

/** One mapping of smaps. */
export interface Mapping {
  /** Start and end addresses; exact below 2^53 (every user-space mapping; the vsyscall page is above). */
  start: number;
  end: number;
  /** The addresses as the kernel printed them (hex), for output. */
  startHex: string;
  endHex: string;
  perms: string;
  inode: number;
  /** The pathname column: a file, or a pseudo-name such as [heap], [stack], [anon:NAME]; "" for anonymous. */
  path: string;
  /** The kernel's Size: line (else end − start). */
  sizeBytes: number;
  rssBytes?: number;
  pssBytes?: number;
  privateDirtyBytes?: number;
  lazyFreeBytes?: number;
  swapBytes?: number;
}

type Field = "sizeBytes" | "rssBytes" | "pssBytes" | "privateDirtyBytes" | "lazyFreeBytes" | "swapBytes";

/** The keys read per mapping, tried by their first letter. */
const fieldsByInitial: Record<number, Array<[string, Field]>> = {
  83 /* S */: [
    ["Size:", "sizeBytes"],
    ["Swap:", "swapBytes"],
  ],
  82 /* R */: [["Rss:", "rssBytes"]],
  80 /* P */: [
    ["Pss:", "pssBytes"],
    ["Private_Dirty:", "privateDirtyBytes"],
  ],
  76 /* L */: [["LazyFree:", "lazyFreeBytes"]],
};

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
}

/** "   1234 kB" from `from` to the end of the line → bytes, or undefined if it is not that. */
function kbValue(text: string, from: number, end: number): number | undefined {
  let i = from;
  while (i < end && text.charCodeAt(i) === 32) i++;
  let n = 0;
  const first = i;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
    i++;
  }
  if (i === first || i - first > 15 || !text.startsWith(" kB", i)) return undefined;
  return n * 1024;
}

/** Hex digits of text[from, to) → number (exact below 2^53); -1 if any is not a lower-case hex digit. */
function hexValue(text: string, from: number, to: number): number {
  if (to <= from || to - from > 16) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

function isPerm(c: number, allowed: number, dash = 45): boolean {
  return c === allowed || c === dash;
}

/**
 * Parses the header line text[pos, nl): "start-end perms offset dev inode   path". Undefined when
 * it is not a well-formed header.
 */
function parseHeader(text: string, pos: number, nl: number): Mapping | undefined {
  const dash = text.indexOf("-", pos);
  const sp1 = dash < 0 ? -1 : text.indexOf(" ", dash + 1);
  if (dash < 0 || sp1 < 0 || sp1 > nl) return undefined;
  const start = hexValue(text, pos, dash);
  const end = hexValue(text, dash + 1, sp1);
  if (start < 0 || end < start) return undefined;
  const p = sp1 + 1;
  if (
    !isPerm(text.charCodeAt(p), 114) ||
    !isPerm(text.charCodeAt(p + 1), 119) ||
    !isPerm(text.charCodeAt(p + 2), 120) ||
    !(text.charCodeAt(p + 3) === 115 || text.charCodeAt(p + 3) === 112) ||
    text.charCodeAt(p + 4) !== 32
  ) {
    return undefined;
  }
  const sp2 = text.indexOf(" ", p + 5); // after offset
  const sp3 = sp2 < 0 ? -1 : text.indexOf(" ", sp2 + 1); // after dev
  if (sp3 < 0 || sp3 >= nl) return undefined;
  let inode = 0;
  let i = sp3 + 1;
  const inodeStart = i;
  for (; i < nl; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    inode = inode * 10 + (c - 48);
  }
  if (i === inodeStart || (i < nl && text.charCodeAt(i) !== 32)) return undefined;
  while (i < nl && text.charCodeAt(i) === 32) i++;
  return {
    start,
    end,
    startHex: text.slice(pos, dash),
    endHex: text.slice(dash + 1, sp1),
    perms: text.slice(p, p + 4),
    inode,
    path: i < nl ? text.slice(i, nl).trimEnd() : "",
    sizeBytes: end - start,
  };
}

/**
 * A streaming smaps parser: text goes in by chunks of any size (`write`), each mapping comes out
 * through `visit` once its lines are complete, so smaps of tens of thousands of mappings needs no
 * more memory than a chunk and one mapping. A scan by character codes, not a regular expression
 * per line. Lines that are neither a header nor a known "Key: N kB" line are skipped; a mapping
 * whose header is malformed is skipped whole.
 */
export class SmapsParser {
  /** Mappings seen so far. */
  count = 0;
  private current: Mapping | undefined;
  private rest = "";

  constructor(private readonly visit: (m: Mapping) => void) {}

  write(chunk: string): void {
    const text = this.rest + chunk;
    const lastNl = text.lastIndexOf("\n");
    if (lastNl < 0) {
      this.rest = text;
      return;
    }
    this.lines(text, lastNl);
    this.rest = text.slice(lastNl + 1);
  }

  end(): void {
    if (this.rest) this.lines(this.rest, this.rest.length);
    this.rest = "";
    if (this.current) this.visit(this.current);
    this.current = undefined;
  }

  /** Parses the complete lines of text[0, until). */
  private lines(text: string, until: number): void {
    let pos = 0;
    while (pos < until) {
      let nl = text.indexOf("\n", pos);
      if (nl < 0 || nl > until) nl = until;
      const first = text.charCodeAt(pos);
      if (isHex(first)) {
        if (this.current) this.visit(this.current);
        this.current = parseHeader(text, pos, nl);
        if (this.current) this.count++;
      } else if (this.current) {
        const candidates = fieldsByInitial[first];
        if (candidates) {
          for (const [key, field] of candidates) {
            if (text.startsWith(key, pos)) {
              const v = kbValue(text, pos + key.length, nl);
              if (v !== undefined) this.current[field] = v;
              break;
            }
          }
        }
      }
      pos = nl + 1;
    }
  }
}

/** Calls `visit` for each mapping of a whole smaps text, in address order; returns how many. */
export function forEachMapping(text: string, visit: (m: Mapping) => void): number {
  const parser = new SmapsParser(visit);
  parser.write(text);
  parser.end();
  return parser.count;
}
