/**
 * glibc `malloc_info(0, fp)` XML → per-arena figures. A pure parser for the one fixed format glibc
 * writes (`<malloc version="1">`, REFERENCE §3.3), not a general XML parser. Bin `from`/`to`/
 * `total` carry glibc's PREV_INUSE bit (odd sizes); only the per-arena totals are used here.
 */
import { HeapstateError } from "../base/errors";

/** One `<size>` or `<unsorted>` line: free chunks of one bin (sizes carry glibc's PREV_INUSE bit). */
export interface MallocInfoBin {
  from: number;
  to: number;
  total: number;
  count: number;
  unsorted?: true;
}

export interface MallocInfoArena {
  /** `<heap nr>`: 0 is the main arena (brk heap). */
  nr: number;
  /** The non-empty bins of `<sizes>`: fastbins, small and large bins, and the unsorted bin. */
  bins?: MallocInfoBin[];
  /** Free chunks in fastbins: `<total type="fast">`. */
  fastFreeChunks?: number;
  fastFreeBytes?: number;
  /** Free chunks in the other bins, top included: `<total type="rest">`. */
  restFreeChunks?: number;
  restFreeBytes?: number;
  /** `<system type="current">`: bytes obtained from the OS for this arena. */
  systemBytes?: number;
  /** `<system type="max">`. */
  maxSystemBytes?: number;
  /** `<aspace type="total">`: address space of the arena's heaps. */
  addressSpaceBytes?: number;
  /** `<aspace type="subheaps">`: number of 64 MiB heaps (non-main arenas). */
  subheaps?: number;
}

export interface MallocInfo {
  arenas: MallocInfoArena[];
  /** `<total type="mmap">` after the heaps: chunks served by their own mmap. */
  mmapChunks?: number;
  mmapBytes?: number;
  /** `<system type="current">` after the heaps: all arenas. */
  systemBytes?: number;
}

const attrPattern = /(\w+)="([^"]*)"/g;

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(attrPattern)) out[m[1] as string] = m[2] as string;
  return out;
}

function count(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Sets `key` only when the value was read: absent, never undefined. */
function put<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

function applyTotal(target: MallocInfoArena | MallocInfo, a: Record<string, string>, top: boolean): void {
  const size = count(a.size);
  const n = count(a.count);
  if (top) {
    const t = target as MallocInfo;
    if (a.type === "mmap") {
      put(t, "mmapChunks", n);
      put(t, "mmapBytes", size);
    }
    return;
  }
  const arena = target as MallocInfoArena;
  if (a.type === "fast") {
    put(arena, "fastFreeChunks", n);
    put(arena, "fastFreeBytes", size);
  } else if (a.type === "rest") {
    put(arena, "restFreeChunks", n);
    put(arena, "restFreeBytes", size);
  }
}

/** Parses malloc_info output; throws HeapstateError("INVALID_SNAPSHOT"…) only on a non-malloc_info text. */
export function parseMallocInfo(xml: string): MallocInfo {
  if (!/^\s*<malloc version="1">/.test(xml)) {
    throw new HeapstateError("INVALID_SNAPSHOT", 'malloc_info: expected <malloc version="1"> at the start');
  }
  const result: MallocInfo = { arenas: [] };
  let arena: MallocInfoArena | undefined;
  for (const m of xml.matchAll(/<(\/?)(heap|total|system|aspace|size|unsorted)\b([^>]*)>/g)) {
    const closing = m[1] === "/";
    const tag = m[2];
    const a = attributes(m[3] ?? "");
    if (tag === "size" || tag === "unsorted") {
      const bin = { from: count(a.from), to: count(a.to), total: count(a.total), count: count(a.count) };
      if (
        arena &&
        bin.from !== undefined &&
        bin.to !== undefined &&
        bin.total !== undefined &&
        bin.count !== undefined
      ) {
        arena.bins ??= [];
        if (tag === "unsorted") (bin as MallocInfoBin).unsorted = true;
        arena.bins.push(bin as MallocInfoBin);
      }
      continue;
    }
    if (tag === "heap") {
      if (closing) {
        if (arena) result.arenas.push(arena);
        arena = undefined;
      } else {
        arena = { nr: count(a.nr) ?? result.arenas.length };
      }
      continue;
    }
    const size = count(a.size);
    if (tag === "total") {
      applyTotal(arena ?? result, a, arena === undefined);
    } else if (tag === "system") {
      if (arena) {
        if (a.type === "current") put(arena, "systemBytes", size);
        if (a.type === "max") put(arena, "maxSystemBytes", size);
      } else if (a.type === "current") {
        put(result, "systemBytes", size);
      }
    } else if (tag === "aspace" && arena) {
      if (a.type === "total") put(arena, "addressSpaceBytes", size);
      if (a.type === "subheaps") put(arena, "subheaps", size);
    }
  }
  return result;
}

/** glibc's `struct malloc_chunk` on 64-bit: a free chunk's first 48 bytes are never trimmed. */
const FREE_CHUNK_HEADER = 48;
/** MINSIZE: what systrim leaves of the main arena's top. */
const MIN_CHUNK = 32;

/**
 * What malloc_trim(0) can return, in bytes, before asking which of those pages are resident:
 * for each free chunk of size s in the unsorted bin and the bins of a page or more (malloc_trim
 * skips the small bins), the whole pages inside it after its 48-byte header. Where a chunk starts
 * within its page is unknown, and over a uniformly random start the pages released average
 * (s − 48)/page − 1 (zero below 48 bytes and a page), so each bin of n chunks totalling T counts
 * T − n·(48 + page), or the same per chunk on its average size. The main arena's top is also
 * released (sbrk), down to MINSIZE and whole pages; other arenas' tops are not trimmed here (glibc
 * shrinks them on free once they pass the trim threshold).
 */
export function trimmableBytes(info: MallocInfo, page: number): number {
  let total = 0;
  for (const arena of info.arenas) total += arenaTrimmableBytes(arena, page);
  return total;
}

/** trimmableBytes for one arena. */
export function arenaTrimmableBytes(arena: MallocInfoArena, page: number): number {
  let total = 0;
  let inBins = 0;
  for (const bin of arena.bins ?? []) {
    inBins += bin.total;
    // Fastbin chunks (all smaller than a page) are consolidated first and stay below a page.
    if (bin.count === 0 || (!bin.unsorted && bin.to < page)) continue;
    const average = bin.total / bin.count;
    const perChunk = average - FREE_CHUNK_HEADER - page;
    if (perChunk > 0) total += perChunk * bin.count;
  }
  if (arena.nr === 0) {
    const top = arenaTopBytes(arena, inBins);
    if (top !== undefined && top > MIN_CHUNK + page) total += Math.floor((top - MIN_CHUNK - 1) / page) * page;
  }
  return Math.max(0, Math.round(total));
}

/**
 * An arena's top chunk, the free memory at the end of its heap: `rest` counts it with the bins, and
 * what is left over once the bins are taken out is the top (± PREV_INUSE bits). Undefined when
 * malloc_info did not give the totals.
 */
export function arenaTopBytes(arena: MallocInfoArena, inBins?: number): number | undefined {
  if (arena.restFreeBytes === undefined) return undefined;
  const bins = inBins ?? (arena.bins ?? []).reduce((n, b) => n + b.total, 0);
  const fast = arena.fastFreeBytes ?? 0;
  return Math.max(0, arena.restFreeBytes - (bins - fast));
}

/**
 * How many free chunks malloc_trim(0) gives pages back from: the chunks of the unsorted bin and of
 * the bins of a page or more whose average size holds a whole page after the chunk's header. Each
 * costs malloc_trim one madvise call while it holds the arena's lock, which is most of its pause on
 * a fragmented heap (32 000 such chunks of a fragmented 1 GiB heap took 2.4 to 2.9 s here, the walk alone 35 ms).
 */
export function trimmableChunks(info: MallocInfo, page: number): number {
  let n = 0;
  for (const arena of info.arenas) {
    for (const bin of arena.bins ?? []) {
      if (bin.count === 0 || (!bin.unsorted && bin.to < page)) continue;
      if (bin.total / bin.count >= FREE_CHUNK_HEADER + page) n += bin.count;
    }
  }
  return n;
}

/**
 * How many free chunks malloc_trim(0) walks: every fastbin chunk (it consolidates them into the
 * unsorted bin first), the unsorted bin's, and those of the bins of a page or more; the small bins
 * are passed over. Which of these a heap's small chunks are in depends on what ran since they were
 * freed (a large malloc consolidates the fastbins; the next malloc sorts the unsorted bin into the
 * small bins): 8 million of them cost 9 ms in the unsorted bin and nothing in the small bins.
 */
export function walkedChunks(info: MallocInfo, page: number): number {
  let n = 0;
  for (const arena of info.arenas) {
    n += arena.fastFreeChunks ?? 0;
    for (const bin of arena.bins ?? []) if (bin.unsorted || bin.to >= page) n += bin.count;
  }
  return n;
}
