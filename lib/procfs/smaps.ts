/**
 * `/proc/<pid>/smaps_rollup` and `/proc/<pid>/smaps`: pure parsers. The rollup is one page-table
 * walk summed over all mappings (Linux ≥ 4.14); without it the same keys are summed from smaps.
 * Per-mapping smaps feeds the region categories. Values in the files are kB; here bytes.
 */

/** The smaps keys heapstate uses, summed. Keys missing from the text stay absent. */
export interface SmapsTotals {
  rssBytes?: number;
  pssBytes?: number;
  privateDirtyBytes?: number;
  anonymousBytes?: number;
  lazyFreeBytes?: number;
  anonHugePagesBytes?: number;
  swapBytes?: number;
}

const totalKeys: Record<string, keyof SmapsTotals> = {
  Rss: "rssBytes",
  Pss: "pssBytes",
  Private_Dirty: "privateDirtyBytes",
  Anonymous: "anonymousBytes",
  LazyFree: "lazyFreeBytes",
  AnonHugePages: "anonHugePagesBytes",
  Swap: "swapBytes",
};

// "Rss:                1600 kB". At most 15 digits: a larger figure is not a real one.
const kbLine = /^([A-Za-z_]+):\s+(\d{1,15}) kB\s*$/;
// "7ff880000000-7ff880224000 rw-p 00000000 00:00 0      [heap]"
const headerLine = /^([0-9a-f]{1,16})-([0-9a-f]{1,16}) ([r-][w-][x-][sp]) [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ (\d+)\s*(.*)$/;

/** Parses smaps_rollup text (or any smaps text: every mapping's figures are summed). */
export function parseSmapsTotals(text: string): SmapsTotals {
  const out: SmapsTotals = {};
  for (const line of text.split("\n")) {
    const m = kbLine.exec(line);
    if (!m) continue;
    const key = totalKeys[m[1] as string];
    if (key === undefined) continue;
    out[key] = (out[key] ?? 0) + Number(m[2]) * 1024;
  }
  return out;
}

/** One mapping of smaps. */
export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  inode: number;
  /** The pathname column: a file, or a pseudo-name such as [heap], [stack], [anon:NAME]; "" for anonymous. */
  path: string;
  sizeBytes: number;
  rssBytes?: number;
  pssBytes?: number;
  privateDirtyBytes?: number;
  lazyFreeBytes?: number;
  swapBytes?: number;
}

const mappingKeys: Record<string, "rssBytes" | "pssBytes" | "privateDirtyBytes" | "lazyFreeBytes" | "swapBytes"> = {
  Rss: "rssBytes",
  Pss: "pssBytes",
  Private_Dirty: "privateDirtyBytes",
  LazyFree: "lazyFreeBytes",
  Swap: "swapBytes",
};

/**
 * Calls `visit` for each mapping of smaps text, in address order. Streaming, so tens of thousands
 * of mappings need no more memory than the caller keeps. Lines that are neither a header nor a
 * known "Key: N kB" line are skipped; a mapping whose header is malformed is skipped whole.
 */
export function forEachMapping(text: string, visit: (m: Mapping) => void): number {
  let current: Mapping | undefined;
  let count = 0;
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf("\n", pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    const first = line.charCodeAt(0);
    // Header lines start with a hex digit; key lines with an upper-case letter.
    if ((first >= 48 && first <= 57) || (first >= 97 && first <= 102)) {
      const h = headerLine.exec(line);
      if (current) visit(current);
      current = undefined;
      if (!h) continue;
      const start = BigInt(`0x${h[1]}`);
      const end = BigInt(`0x${h[2]}`);
      if (end < start) continue;
      count++;
      current = {
        start,
        end,
        perms: h[3] as string,
        inode: Number(h[4]),
        path: (h[5] ?? "").trim(),
        sizeBytes: Number(end - start),
      };
      continue;
    }
    if (!current) continue;
    const m = kbLine.exec(line);
    if (!m) continue;
    const key = mappingKeys[m[1] as string];
    if (key !== undefined) current[key] = Number(m[2]) * 1024;
  }
  if (current) visit(current);
  return count;
}
