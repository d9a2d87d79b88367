/**
 * glibc `malloc_info(0, fp)` XML → per-arena figures. A pure parser for the one fixed format glibc
 * writes (`<malloc version="1">`, REFERENCE §3.3), not a general XML parser. Bin `from`/`to`/
 * `total` carry glibc's PREV_INUSE bit (odd sizes); only the per-arena totals are used here.
 */
import { HeapstateError } from "../errors";

export interface MallocInfoArena {
  /** `<heap nr>`: 0 is the main arena (brk heap). */
  nr: number;
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

function applyTotal(target: MallocInfoArena | MallocInfo, a: Record<string, string>, top: boolean): void {
  const size = count(a.size);
  const n = count(a.count);
  if (top) {
    const t = target as MallocInfo;
    if (a.type === "mmap") {
      t.mmapChunks = n;
      t.mmapBytes = size;
    }
    return;
  }
  const arena = target as MallocInfoArena;
  if (a.type === "fast") {
    arena.fastFreeChunks = n;
    arena.fastFreeBytes = size;
  } else if (a.type === "rest") {
    arena.restFreeChunks = n;
    arena.restFreeBytes = size;
  }
}

/** Parses malloc_info output; throws HeapstateError("INVALID_SNAPSHOT"…) only on a non-malloc_info text. */
export function parseMallocInfo(xml: string): MallocInfo {
  if (!/^\s*<malloc version="1">/.test(xml)) {
    throw new HeapstateError("INVALID_SNAPSHOT", 'malloc_info: expected <malloc version="1"> at the start');
  }
  const result: MallocInfo = { arenas: [] };
  let arena: MallocInfoArena | undefined;
  for (const m of xml.matchAll(/<(\/?)(heap|total|system|aspace)\b([^>]*)>/g)) {
    const closing = m[1] === "/";
    const tag = m[2];
    const a = attributes(m[3] ?? "");
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
        if (a.type === "current") arena.systemBytes = size;
        if (a.type === "max") arena.maxSystemBytes = size;
      } else if (a.type === "current") {
        result.systemBytes = size;
      }
    } else if (tag === "aspace" && arena) {
      if (a.type === "total") arena.addressSpaceBytes = size;
      if (a.type === "subheaps") arena.subheaps = size;
    }
  }
  for (const key of Object.keys(result) as Array<keyof MallocInfo>) {
    if (result[key] === undefined) delete result[key];
  }
  for (const a of result.arenas) {
    for (const key of Object.keys(a) as Array<keyof MallocInfoArena>) {
      if (a[key] === undefined) delete a[key];
    }
  }
  return result;
}
