/** glibc's mmapped chunks (hblkhd), found by their headers in this process's anonymous mappings. */
import { readFileSync } from "node:fs";
import { anonymous, isArenaHeap, Memory, parseMaps, Residency } from "./glibc-walk-io";

/** glibc's mmapped chunks (blocks of 128 KiB and more, each a mapping of its own). */
export interface MmappedChunks {
  chunks: number;
  bytes: number;
  /** Of those, bytes on pages that are not resident (never written). */
  absentBytes: number;
  /** Whether the chunks found hold what mallinfo2's hblkhd counts, all but `mmapSlack` (others map and unmap meanwhile). */
  complete: boolean;
}

/** How much of mappings that do not start with a chunk a search for mmapped chunks reads at most. */
const MMAP_SEARCH_BUDGET = 64 * 1024 * 1024;

/**
 * What may stay unfound of the mmapped bytes mallinfo2 counts: other threads map and unmap large
 * blocks between mallinfo2 and the walk, so an exact match is not to be had; what stays unfound
 * keeps at most this much of untouched pages in native-in-use.
 */
export function mmapSlack(expected: number): number {
  return Math.max(4 * 1024 * 1024, expected / 10);
}

/**
 * glibc's mmapped chunks (blocks of 128 KiB or more): each is mapped on its own and starts with its
 * chunk header, prev_size 0 and size = its length | IS_MMAPPED (2). A block never written all
 * through keeps its untouched pages out of RSS while mallinfo2's hblkhd counts them: those are
 * `absentBytes`. The kernel merges neighbouring mappings into one, so each mapping's chain is
 * followed from its start first (a header page is always resident, and only headers are read);
 * when that leaves more of hblkhd unfound than `mmapSlack`, the mappings are looked through page
 * by page (resident pages only), skipping each chunk found by its size, until enough is found or
 * the search has read its budget.
 */
export function mmappedChunks(
  memFd: number,
  mapFd: number,
  page: number,
  window: Buffer,
  scratch: Buffer,
  expected: number | undefined,
  ownTag?: Buffer,
): MmappedChunks {
  const out: MmappedChunks = { chunks: 0, bytes: 0, absentBytes: 0, complete: false };
  const maps = parseMaps(readFileSync("/proc/self/maps", "latin1")).filter(
    (m, i, all) => anonymous(m) && m.perms === "rw-p" && !isArenaHeap(m, all[i + 1]),
  );
  // The search runs whenever a byte of hblkhd is unfound: stopping within mmapSlack left up to
  // 4 MiB of untouched pages counted resident (a third of 64 deflate streams' chunks, in runs that
  // found 40 of 66), the slack is only what may stay unfound once the search has run.
  const found = () => expected !== undefined && out.bytes >= expected;
  let searched = 0;
  // The headers' pass, kept: a search that runs out of its budget midway has counted less than it
  // (a churning process's readings then said the walk was incomplete in half of them).
  let headers: MmappedChunks | undefined;
  passes: for (const search of [false, true]) {
    if (found() || (search && expected === undefined)) break;
    if (search) headers = { ...out };
    out.chunks = 0;
    out.bytes = 0;
    out.absentBytes = 0;
    for (const m of maps) {
      const res = new Residency(m.start, m.end, m.end, mapFd, page, scratch);
      const mem = new Memory(window, memFd, (a) => res.present(a), page);
      const view: MappingView = {
        start: m.start,
        end: m.end,
        page,
        present: (a) => res.present(a),
        u64: (a) => mem.u64(a),
        resident: (from, to) => res.residentBytes(from, to),
        ours: (a) => ownTag !== undefined && ours(mem, a, ownTag),
      };
      searched += scanMapping(view, search, MMAP_SEARCH_BUDGET - searched, out);
      if (searched > MMAP_SEARCH_BUDGET) break passes;
    }
  }
  if (headers !== undefined && headers.bytes > out.bytes) {
    out.chunks = headers.chunks;
    out.bytes = headers.bytes;
    out.absentBytes = headers.absentBytes;
  }
  out.complete = expected !== undefined && expected - out.bytes <= mmapSlack(expected);
  return out;
}

/** One mapping as the search for mmapped chunks reads it (the real one, or a test's). */
export interface MappingView {
  start: number;
  end: number;
  page: number;
  /** Whether the page holding this address is resident (only those are read). */
  present(addr: number): boolean;
  /** The 8 bytes at addr, or undefined when they cannot be read. */
  u64(addr: number): number | undefined;
  /** Bytes of [from, to) on resident pages. */
  resident(from: number, to: number): number;
  /** Whether the chunk at addr is one of the walk's own buffers (taken after mallinfo2 was read). */
  ours?(addr: number): boolean;
}

/**
 * Whether the chunk whose header is at addr holds one of the walk's own buffers: they begin with
 * `tag` (random for each walk), at the chunk's data (the header's 16 bytes on).
 */
function ours(mem: Memory, addr: number, tag: Buffer): boolean {
  for (let i = 0; i < tag.length; i += 8) {
    const word = mem.u64(addr + 16 + i);
    if (word === undefined || word !== tag.readUInt32LE(i) + tag.readUInt32LE(i + 4) * 0x100000000) return false;
  }
  return true;
}

/**
 * The mmapped chunks of one mapping, added into `into`: the chain of headers from its start, and
 * with `search`, every resident page start after what is not a header, until the end or `budget`
 * bytes of searching. A header must be prev_size 0 and size = a whole number of pages (at least
 * one, so that the walk always moves on), IS_MMAPPED, within the mapping: memory holding 0 and 2
 * at a page's start is not a chunk of no size. Returns the bytes searched.
 */
export function scanMapping(v: MappingView, search: boolean, budget: number, into: MmappedChunks): number {
  let searched = 0;
  for (let p = v.start; p < v.end; ) {
    const size = v.present(p) ? v.u64(p + 8) : undefined;
    if (size !== undefined && size % v.page === 2 && size - 2 >= v.page && size - 2 <= v.end - p && v.u64(p) === 0) {
      const len = size - 2;
      if (v.ours?.(p) === true) {
        p += len;
        continue;
      }
      into.chunks++;
      into.bytes += len;
      into.absentBytes += len - v.resident(p, p + len);
      p += len;
      continue;
    }
    if (!search) break;
    // Only resident pages are read (a header's page is always resident): absent ones cost nothing.
    if (v.present(p)) searched += v.page;
    if (searched > budget) break;
    p += v.page;
  }
  return searched;
}
