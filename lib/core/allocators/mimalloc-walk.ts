/**
 * mimalloc 2.0's segments, read in this process: what of its committed memory is free, resident,
 * and waiting for a decommit that has not run. mimalloc 2.0 counts no in-use bytes, so its free
 * memory cannot be told from its statistics; its segment headers say it page by page.
 *
 * A segment is 32 MiB, aligned to its size, with its header (`mi_segment_t`, then 513 slices of
 * `mi_page_t`) at its start. The walk looks at each 32 MiB boundary inside an anonymous rw-p
 * mapping, reads the header through /proc/self/mem when its pages are resident (never faulting one
 * in), and believes it only when every field is in range and its slices chain exactly from the
 * first to the last entry. Layout: mimalloc v2.0.9 `include/mimalloc-types.h`, 64-bit, release
 * (MI_SECURE 0); a build that encodes its free lists has two more words per slice, tried second.
 *
 * A free span (`xblock_size` 0) was a page; mimalloc marks it for decommit and decommits it
 * `decommit_delay` ms later (25 by default), but only when the segment's thread frees or allocates a
 * page in that segment again: a quiet segment keeps it, resident. A segment freed whole goes to
 * mimalloc's segment cache, decommitted `segment_decommit_delay` ms later (500) when the cache is
 * next used. Neither runs on a timer: which figures were kept is judged across readings.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { anonymous, parseMaps } from "./glibc-walk-io";

const SEGMENT = 32 * 1024 * 1024;
const SLICE = 64 * 1024;
const SLICES = SEGMENT / SLICE; // 512
/** Offsets in mi_segment_t (64-bit). */
const OFF = {
  pinned: 8,
  large: 9,
  committed: 10,
  allowDecommit: 32,
  used: 208,
  commitMask: 112,
  segmentSlices: 224,
  infoSlices: 232,
  kind: 240,
  sliceEntries: 248,
  slices: 264,
} as const;
/** sizeof(mi_page_t): 80 in a release build, 96 where free lists are encoded (keys[2]). */
const PAGE_LAYOUTS = [80, 96] as const;
const HEADER_MAX = OFF.slices + (SLICES + 1) * 96;

/** What the walk found, over every segment whose header it could believe. */
export interface MimallocWalk {
  /** Segments whose header was read and whose slices chained (normal and huge). */
  segments: number;
  /** Their committed bytes (commit masks): mimalloc's own commit count, seen from its segments. */
  committedBytes: number;
  /**
   * Free memory on resident pages: free spans of the segments in use, and every slice past the
   * header of a segment that holds no page (freed whole, kept in mimalloc's segment cache).
   */
  freeResidentBytes: number;
  /** Of those, the bytes in whole free segments (the cache). */
  cachedSegmentBytes: number;
  /** Why the walk ended early. */
  problems: string[];
}

/** A boundary inside one mapping, with how far the mapping (and those right after it) reach. */
interface Candidate {
  addr: number;
  mappedEnd: number;
}

function candidates(): Candidate[] {
  const maps = parseMaps(readFileSync("/proc/self/maps", "latin1"));
  const out: Candidate[] = [];
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (!m || !anonymous(m) || m.perms !== "rw-p") continue;
    // Adjacent rw-p anonymous mappings: a segment whose parts the kernel keeps apart.
    let end = m.end;
    for (let j = i + 1; j < maps.length; j++) {
      const n = maps[j];
      if (!n || n.start !== end || !anonymous(n) || n.perms !== "rw-p") break;
      end = n.end;
    }
    for (let a = Math.ceil(m.start / SEGMENT) * SEGMENT; a + HEADER_MAX <= end && a < m.end; a += SEGMENT)
      out.push({ addr: a, mappedEnd: end });
  }
  return out;
}

/** Bit i of a 512-bit mask at `at` in the header. */
function bit(h: Buffer, at: number, i: number): boolean {
  return ((h[at + (i >> 3)] as number) & (1 << (i & 7))) !== 0;
}

const u64 = (h: Buffer, at: number) => h.readUInt32LE(at) + h.readUInt32LE(at + 4) * 0x100000000;

/** The header's fields in range, and its slices chained: the slice size that closes, or undefined. */
function believe(h: Buffer): number | undefined {
  for (const at of [OFF.pinned, OFF.large, OFF.committed, OFF.allowDecommit]) if ((h[at] as number) > 1) return;
  const kind = h.readUInt32LE(OFF.kind);
  const slices = u64(h, OFF.segmentSlices);
  const info = u64(h, OFF.infoSlices);
  const entries = u64(h, OFF.sliceEntries);
  if (kind > 1 || info < 1 || info > 8 || entries <= info || entries > SLICES) return;
  if (kind === 0 && (slices !== SLICES || entries !== SLICES)) return;
  for (const size of PAGE_LAYOUTS) {
    let i = 0;
    while (i < entries) {
      const at = OFF.slices + i * size;
      const count = h.readUInt32LE(at);
      if (count < 1 || h.readUInt32LE(at + 4) !== 0) break;
      // A huge segment's one page may reach past the entries it has.
      if (i + count > entries) {
        if (kind === 1) i = entries;
        break;
      }
      i += count;
    }
    if (i === entries && h.readUInt32LE(OFF.slices) === info) return size;
  }
  return undefined;
}

/** Residency of [from, to) from pagemap: a bit per page. */
function residency(fd: number, from: number, to: number, page: number, buf: Buffer): Uint8Array {
  const pages = (to - from) / page;
  const bits = new Uint8Array(pages);
  for (let i = 0; i < pages; ) {
    const n = Math.min(pages - i, buf.length / 8);
    const got = readSync(fd, buf, 0, n * 8, (from / page + i) * 8);
    if (got !== n * 8) throw new Error("short read of /proc/self/pagemap");
    for (let j = 0; j < n; j++) bits[i + j] = (buf[j * 8 + 7] as number) & 0x80 ? 1 : 0;
    i += n;
  }
  return bits;
}

function residentIn(bits: Uint8Array, base: number, from: number, to: number, page: number): number {
  let sum = 0;
  for (let p = (from - base) / page; p < (to - base) / page && p < bits.length; p++) if (bits[p]) sum += page;
  return sum;
}

/**
 * The header at addr, its resident pages read through /proc/self/mem and the others as the zeros
 * they hold (slices never written are never faulted in). False when its first page is absent or a
 * read fails (unmapped meanwhile).
 */
function readHeader(
  mem: number,
  pagemap: number,
  addr: number,
  page: number,
  header: Buffer,
  scratch: Buffer,
): boolean {
  const bits = residency(pagemap, addr, Math.ceil((addr + HEADER_MAX) / page) * page, page, scratch);
  if (bits[0] !== 1) return false;
  header.fill(0);
  for (let p = 0; p < bits.length; ) {
    if (bits[p] !== 1) {
      p++;
      continue;
    }
    let q = p;
    while (q < bits.length && bits[q] === 1) q++;
    const from = p * page;
    const len = Math.min(HEADER_MAX, q * page) - from;
    try {
      if (readSync(mem, header, from, len, addr + from) !== len) return false;
    } catch {
      return false; // EIO: unmapped meanwhile
    }
    p = q;
  }
  return true;
}

/** Reads one believed segment's header into the totals. */
function addSegment(
  h: Buffer,
  size: number,
  c: Candidate,
  pagemap: number,
  page: number,
  scratch: Buffer,
  out: MimallocWalk,
): void {
  out.segments++;
  for (let i = 0; i < SLICES; i++) if (bit(h, OFF.commitMask, i)) out.committedBytes += SLICE;
  if (h.readUInt32LE(OFF.kind) !== 0) return; // a huge segment holds one block, in use
  const bits = residency(pagemap, c.addr, Math.min(c.addr + SEGMENT, c.mappedEnd), page, scratch);
  const info = u64(h, OFF.infoSlices);
  if (u64(h, OFF.used) === 0) {
    // No page in use: a segment freed whole, kept in the cache with its memory as it was.
    const bytes = residentIn(bits, c.addr, c.addr + info * SLICE, c.addr + SEGMENT, page);
    out.freeResidentBytes += bytes;
    out.cachedSegmentBytes += bytes;
    return;
  }
  for (let i = info; i < SLICES; ) {
    const at = OFF.slices + i * size;
    const count = h.readUInt32LE(at);
    if (h.readUInt32LE(at + 28) === 0)
      out.freeResidentBytes += residentIn(bits, c.addr, c.addr + i * SLICE, c.addr + (i + count) * SLICE, page);
    i += count;
  }
}

/**
 * Walks mimalloc's segments in this process. Call only when mimalloc 2.0 serves malloc: another
 * allocator's memory never has a header that closes, and is skipped.
 */
export function walkMimallocSegments(page: number): MimallocWalk {
  const out: MimallocWalk = {
    segments: 0,
    committedBytes: 0,
    freeResidentBytes: 0,
    cachedSegmentBytes: 0,
    problems: [],
  };
  // Taken before the walk looks: what it allocates would change the segments.
  const header = Buffer.allocUnsafeSlow(HEADER_MAX);
  const scratch = Buffer.allocUnsafeSlow(64 * 1024);
  let mem: number | undefined;
  let pagemap: number | undefined;
  try {
    mem = openSync("/proc/self/mem", "r");
    pagemap = openSync("/proc/self/pagemap", "r");
    for (const c of candidates()) {
      if (!readHeader(mem, pagemap, c.addr, page, header, scratch)) continue;
      const size = believe(header);
      if (size !== undefined) addSegment(header, size, c, pagemap, page, scratch, out);
    }
  } catch (error) {
    out.problems.push(`reading this process's own pages failed: ${(error as Error).message}`);
  } finally {
    if (mem !== undefined) closeSync(mem);
    if (pagemap !== undefined) closeSync(pagemap);
  }
  return out;
}
