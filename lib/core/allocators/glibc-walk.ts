/**
 * glibc's free memory as the kernel holds it: a walk of this process's own chunks (their headers
 * read through /proc/self/mem) beside the residency of each page (/proc/self/pagemap). Rss − in-use
 * assumes every in-use byte is resident; a block malloc'd and never written is not, and hid the
 * free pages beside it. The walk counts, for each free chunk, the bytes on resident pages, and the
 * resident whole pages malloc_trim would hand back (glibc 2.36's mtrim: from the chunk's start plus
 * a malloc_chunk, page-aligned, to its end; and the main arena's top above its first MINSIZE).
 *
 * Only our own process, and without side effects: pagemap is read first and no page it shows
 * absent is ever read (a read would map the zero page and count as resident; a page that became
 * resident since is asked again). A header on a page that is not resident (swapped out) ends the
 * walk without a figure. Other threads malloc while we walk: every header is checked (alignment,
 * bounds, the chain's exact end), and a heap whose chain does not close gives no figure; the
 * caller keeps its estimate then. The layouts are 64-bit glibc's (x64, arm64): elsewhere no chain
 * closes, and the estimate stands. glibc's mmapped chunks (hblkhd) are found by their headers too.
 */

import { randomFillSync } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { HEAP_MAX, isArenaHeap, type MapLine, Memory, parseMaps, Residency } from "./glibc-walk-io";
import { type MmappedChunks, mmappedChunks } from "./glibc-walk-mmap";

export { type MappingView, type MmappedChunks, scanMapping } from "./glibc-walk-mmap";

/** What the walk found in one group of arenas (the main arena, or all other threads' arenas). */
export interface WalkedGroup {
  /** Bytes of free chunks (bins and tops; fastbin and tcache chunks look in use) on resident pages. */
  freeResidentBytes: number;
  /** Of those, the resident whole pages malloc_trim(0) returns. */
  releasableBytes: number;
  /** Bytes of in-use chunks on resident pages. */
  inUseResidentBytes: number;
  /** Bytes of in-use chunks on pages never written or given back (not resident). */
  inUseAbsentBytes: number;
  /** Resident pages that hold a byte of an in-use chunk (its header included): pages no trim can return. */
  livePages: number;
  /** Of freeResidentBytes, the top chunks' (other arenas' tops: malloc_trim does not shrink them). */
  topResidentBytes: number;
  /** Chunks walked. */
  chunks: number;
}

export interface GlibcWalk {
  main?: WalkedGroup;
  threads?: WalkedGroup;
  /** glibc's mmapped chunks, found by their headers in anonymous mappings (mmappedChunks). */
  mmapped?: MmappedChunks;
  /** Why a group has no figure (a chain that did not close, a swapped header, a file we could not read). */
  problems: string[];
}

/** sizeof(struct malloc_chunk) on 64-bit: prev_size, size, fd, bk, fd_nextsize, bk_nextsize. */
const MALLOC_CHUNK = 48;
const MINSIZE = 32;
const WINDOW = 256 * 1024;
/** sizeof(heap_info): 48 since glibc 2.35 (it gained pagesize), 32 before. */
const HEAP_INFO_SIZES = [48, 32];
/** sizeof(struct malloc_state): 2200 since glibc 2.26 (have_fastchunks), 2192 before. */
const MALLOC_STATE_SIZES = [2200, 2192];
/** A walk stops (no figure) past this many chunks: 64 M chunks is a 2 GiB heap of the smallest. */
const MAX_CHUNKS = 64 * 1024 * 1024;

function emptyGroup(): WalkedGroup {
  return {
    freeResidentBytes: 0,
    releasableBytes: 0,
    inUseResidentBytes: 0,
    inUseAbsentBytes: 0,
    livePages: 0,
    topResidentBytes: 0,
    chunks: 0,
  };
}

/**
 * Walks the chain of chunks from `first` to `end`. Returns the group's figures added into `into`,
 * or a reason when the chain does not close. `mainTop`: the last chunk is the main arena's top,
 * which malloc_trim shrinks (systrim); other arenas' tops it leaves.
 */
function walkChain(
  mem: Memory,
  res: Residency,
  first: number,
  end: number,
  mainTop: boolean,
  into: WalkedGroup,
): string | undefined {
  const page = res.page;
  const g = emptyGroup();
  let p = first;
  let size = mem.u64(p + 8);
  let retried = false;
  // Chunks come in address order: a page is counted live once, at the first in-use chunk on it.
  let lastLive = -1;
  while (true) {
    if (size === undefined) return "a chunk header could not be read (swapped out, or unmapped while walked)";
    const sz = size - (size % 8);
    if (sz === 0 && !mainTop && end - p <= 2 * MINSIZE) break; // the fencepost that closes an older heap
    if (sz < 16 || sz % 16 !== 0 || p + sz > end) {
      // The window may hold a header written over since it was read: look once more.
      if (retried) return "a chunk header out of bounds (the heap changed while walked)";
      retried = true;
      mem.invalidate();
      size = mem.u64(p + 8);
      continue;
    }
    retried = false;
    if (++g.chunks > MAX_CHUNKS) return "more chunks than a walk reads";
    const next = p + sz;
    const isTop = next === end;
    let free: boolean;
    let nextSize: number | undefined;
    if (isTop) {
      free = true;
    } else {
      nextSize = mem.u64(next + 8);
      if (nextSize === undefined) return "a chunk header could not be read (swapped out, or unmapped while walked)";
      free = nextSize % 2 === 0;
    }
    if (free) {
      const resident = res.residentBytes(p, next);
      g.freeResidentBytes += resident;
      if (isTop && !mainTop) g.topResidentBytes += resident;
      if (isTop && mainTop) {
        // systrim(0): top_size − MINSIZE − 1, rounded down to pages, from the top's end.
        const extra = Math.floor((sz - MINSIZE - 1) / page) * page;
        if (extra > 0) g.releasableBytes += res.residentBytes(next - extra, next);
      } else if (!isTop && sz > page - 1 + MALLOC_CHUNK) {
        const from = Math.ceil((p + MALLOC_CHUNK) / page) * page;
        const whole = Math.floor((next - from) / page) * page;
        if (whole > 0) g.releasableBytes += res.residentBytes(from, from + whole);
      }
    } else {
      const resident = res.residentBytes(p, next);
      g.inUseResidentBytes += resident;
      g.inUseAbsentBytes += sz - resident;
      const last = Math.floor((next - 1) / page);
      for (let q = Math.max(lastLive + 1, Math.floor(p / page)); q <= last; q++)
        if (res.present(q * page)) g.livePages++;
      lastLive = last;
    }
    if (isTop) break;
    p = next;
    size = nextSize;
  }
  addGroup(into, g);
  return undefined;
}

/** Adds one walked heap's figures into a group's. */
function addGroup(into: WalkedGroup, g: WalkedGroup): void {
  into.freeResidentBytes += g.freeResidentBytes;
  into.releasableBytes += g.releasableBytes;
  into.inUseResidentBytes += g.inUseResidentBytes;
  into.inUseAbsentBytes += g.inUseAbsentBytes;
  into.livePages += g.livePages;
  into.topResidentBytes += g.topResidentBytes;
  into.chunks += g.chunks;
}

/**
 * One thread arena's heap, from its first chunk (each layout glibc has had is tried) to its end,
 * `heap_info.size` as read now: its thread may grow the heap or split its chunks while we walk, so
 * a chain that does not close is walked again, from a fresh header, five times at most.
 */
function walkThreadHeap(mem: Memory, res: Residency, h: number, into: WalkedGroup): string | undefined {
  let last = "no layout of glibc's heap header fits";
  for (let attempt = 0; attempt < 5; attempt++) {
    mem.invalidate();
    const arena = mem.u64(h);
    const size = mem.u64(h + 16);
    if (arena === undefined || size === undefined) return "a heap's header is not resident";
    if (size <= 0 || size > HEAP_MAX) return "a heap's size is out of bounds";
    const end = h + size;
    for (const info of HEAP_INFO_SIZES) {
      const firsts: number[] = [];
      if (arena === h + info) {
        for (const state of MALLOC_STATE_SIZES) firsts.push(Math.ceil((h + info + state + 16) / 16) * 16 - 16);
      } else {
        firsts.push(h + info);
      }
      for (const first of firsts) {
        // walkChain adds into `into` only when the chain closes.
        const why = walkChain(mem, res, first, end, false, into);
        if (why === undefined) return undefined;
        last = why;
      }
    }
  }
  return last;
}

/** How far the main arena may grow while walked (a collection's worklists) and still be walked. */
const GROWTH = 16 * 1024 * 1024;

/** `[heap]`'s bounds, from the first 64 KiB of maps (it comes early), read into a buffer we hold. */
function heapBounds(buf: Buffer): { start: number; end: number } | undefined {
  const fd = openSync("/proc/self/maps", "r");
  let len = 0;
  try {
    for (let got = 1; got > 0 && len < buf.length; len += got) got = readSync(fd, buf, len, buf.length - len, null);
  } finally {
    closeSync(fd);
  }
  const m = /^([0-9a-f]+)-([0-9a-f]+) [^\n]*\[heap\]$/m.exec(buf.toString("latin1", 0, len));
  return m ? { start: Number.parseInt(m[1] as string, 16), end: Number.parseInt(m[2] as string, 16) } : undefined;
}

/**
 * The main arena: its chain runs from `[heap]`'s start to its top, which ends at the program
 * break. A collection on this thread may malloc while we walk and move the break: then the walk
 * is made again over the new bounds, three times at most.
 */
function walkMain(memFd: number, mapFd: number, page: number, window: Buffer, scratch: Buffer): WalkedGroup | string {
  let why = "no [heap] in maps";
  for (let attempt = 0; attempt < 3; attempt++) {
    const heap = heapBounds(scratch);
    if (heap === undefined) return why;
    const res = new Residency(heap.start, heap.end + GROWTH, heap.end, mapFd, page, scratch);
    const mem = new Memory(window, memFd, (a) => res.presentNow(a), page);
    const g = emptyGroup();
    const after = heapBounds(scratch);
    if (after === undefined) return why;
    const result = walkChain(mem, res, heap.start, after.end, true, g);
    if (result === undefined) return g;
    why = result;
  }
  return why;
}

/**
 * The other threads' arenas: every heap of theirs in maps. Their threads malloc while we walk, and
 * a heap that grew since maps was read no longer closes at its old end: the walk is made again
 * from a fresh maps, three times at most.
 */
function walkThreads(
  memFd: number,
  mapFd: number,
  page: number,
  window: Buffer,
  scratch: Buffer,
): WalkedGroup | string {
  let why = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const maps = parseMaps(readFileSync("/proc/self/maps", "latin1"));
    const g = emptyGroup();
    let failed: string | undefined;
    for (let i = 0; i < maps.length && failed === undefined; i++) {
      const m = maps[i] as MapLine;
      if (!isArenaHeap(m, maps[i + 1])) continue;
      // The heap may grow (glibc mprotects more of its 64 MiB) while walked: residency covers it all.
      const res = new Residency(m.start, m.start + HEAP_MAX, m.end, mapFd, page, scratch);
      failed = walkThreadHeap(new Memory(window, memFd, (a) => res.presentNow(a), page), res, m.start, g);
    }
    if (failed === undefined) return g;
    why = failed;
  }
  return why;
}

/** Bytes of the tag at the start of the walk's own buffers. */
const OWN_TAG = 16;

/** A buffer of WINDOW bytes, preceded in its malloc'd block by `tag`. */
function tagged(tag: Buffer): Buffer {
  const block = Buffer.allocUnsafeSlow(OWN_TAG + WINDOW);
  tag.copy(block, 0);
  return block.subarray(OWN_TAG);
}

/**
 * Walks glibc's arenas in this process: `[heap]` (the main arena, when the break serves it) and
 * the 64 MiB-aligned anonymous heaps of the other arenas. Call only when glibc serves malloc.
 */
export function walkGlibcHeaps(pageBytes: number, mmappedBytes?: number): GlibcWalk {
  const problems: string[] = [];
  let memFd: number | undefined;
  let mapFd: number | undefined;
  // Every buffer the walk uses is taken before it looks: what it mallocs would move the heap. They
  // are malloc'd after mallinfo2 was read (mmapped chunks when 256 KiB is above glibc's threshold),
  // so each begins with a tag, random for this walk, by which the search for mmapped chunks knows
  // them and leaves them out of what it matches against hblkhd.
  const tag = randomFillSync(Buffer.allocUnsafeSlow(OWN_TAG));
  const window = tagged(tag);
  const scratch = tagged(tag);
  try {
    memFd = openSync("/proc/self/mem", "r");
    mapFd = openSync("/proc/self/pagemap", "r");
    const out: GlibcWalk = { problems };
    const main = walkMain(memFd, mapFd, pageBytes, window, scratch);
    if (typeof main === "string") problems.push(`the main arena: ${main}, so its free memory is estimated`);
    else out.main = main;
    const threads = walkThreads(memFd, mapFd, pageBytes, window, scratch);
    if (typeof threads === "string") problems.push(`the other arenas: ${threads}, so their free memory is estimated`);
    else out.threads = threads;
    out.mmapped = mmappedChunks(memFd, mapFd, pageBytes, window, scratch, mmappedBytes, tag);
    if (!out.mmapped.complete)
      problems.push(
        `glibc's mmapped chunks: ${out.mmapped.bytes} of the ${mmappedBytes ?? "?"} bytes mallinfo2 counts were found (in a search of at most 64 MiB), and the untouched pages of the others are counted in native-in-use as if resident`,
      );
    return out;
  } catch (error) {
    problems.push(`reading this process's own pages failed: ${(error as Error).message}`);
    return { problems };
  } finally {
    if (memFd !== undefined) closeSync(memFd);
    if (mapFd !== undefined) closeSync(mapFd);
  }
}
