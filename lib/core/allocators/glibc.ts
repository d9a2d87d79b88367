/**
 * glibc malloc (ptmalloc2): mallinfo2 (or mallinfo) → AllocatorState. Sources:
 * allocated ← `uordblks + hblkhd` (in-use chunks in arenas, headers and tcache-cached chunks
 * included, plus chunks served by their own mmap); mapped ← `arena + hblkhd`;
 * pages.freeBytes ← `fordblks` (free, whether still resident or already trimmed: mallinfo2 cannot
 * tell); pages.topReleasableBytes ← `keepcost`; arenas ← the number of `<heap>` in malloc_info.
 */

import type { NativeReadInstance } from "../addon/native";
import { errorText } from "../base/errors";
import { extend } from "../base/objects";
import type { AllocatorState, ArenaGroup, Warning } from "../model/types";
import type { GlibcWalk, WalkedGroup } from "./glibc-walk";
import {
  arenaTopBytes,
  arenaTrimmableBytes,
  type MallocInfo,
  type MallocInfoArena,
  parseMallocInfo,
  trimmableBytes,
} from "./malloc-info";
import { bytes, str, sum, unmapped } from "./values";

export function glibcState(inst: NativeReadInstance, warnings: Warning[]): AllocatorState {
  const v = inst.values;
  const fn = str(v, "function");
  // fordblks, keepcost and the version are fields; uordblks, hblkhd and arena only sums of them.
  const raw: Record<string, unknown> = unmapped(v, ["fordblks", "keepcost", "gnu_get_libc_version"]);
  let arenas: number | undefined;
  const xml = str(v, "malloc_info");
  if (xml !== undefined) {
    delete raw.malloc_info;
    try {
      const info = parseMallocInfo(xml);
      raw.malloc_info = info;
      arenas = info.arenas.length;
    } catch (error) {
      warnings.push({ source: "glibc", code: "MALLOC_INFO_UNPARSED", message: errorText(error) });
    }
  }
  if (fn === "mallinfo") {
    warnings.push({
      source: "glibc",
      code: "GLIBC_MALLINFO_32BIT",
      message: "this glibc has no mallinfo2 (< 2.33); mallinfo's 32-bit counters wrap above 4 GiB",
    });
  }
  if (fn === undefined && inst.errors.mallinfo2 !== undefined) {
    warnings.push({
      source: "glibc",
      code: "GLIBC_NO_MALLINFO",
      message: "glibc exports neither mallinfo2 nor mallinfo",
    });
  }
  // Built field by field, not from defined({...}) spread: this runs at every reading.
  const state: AllocatorState = { allocator: "glibc", library: inst.library, servesMalloc: inst.servesMalloc };
  const version = str(v, "gnu_get_libc_version");
  if (version !== undefined) state.version = version;
  const allocated = sum(bytes(v, "uordblks"), bytes(v, "hblkhd"));
  if (allocated !== undefined) state.allocatedBytes = allocated;
  const mapped = sum(bytes(v, "arena"), bytes(v, "hblkhd"));
  if (mapped !== undefined) state.mappedBytes = mapped;
  if (arenas !== undefined) state.arenas = arenas;
  const free = bytes(v, "fordblks");
  const top = bytes(v, "keepcost");
  if (free !== undefined || top !== undefined) {
    const pages: NonNullable<AllocatorState["pages"]> = {};
    if (free !== undefined) pages.freeBytes = free;
    if (top !== undefined) pages.topReleasableBytes = top;
    state.pages = pages;
  }
  state.raw = raw;
  return state;
}

/** What the kernel says of glibc's arenas, read beside the allocator's own figures. */
export interface GlibcKernelEvidence {
  /** Σ smaps Rss of `[heap]` and the 64 MiB arena heaps. */
  arenaRssBytes: number;
  /** smaps Rss of `[heap]`: the main arena. */
  mainArenaRssBytes?: number;
  /** smaps Rss of the 64 MiB arena heaps: the other threads' arenas. */
  threadArenasRssBytes?: number;
  /** smaps Size of `[heap]`: all the main arena can hold while the program break grows. */
  mainArenaSizeBytes?: number;
  /** smaps Size of the 64 MiB arena heaps, their reserved tails included. */
  threadArenasSizeBytes?: number;
  /** The page size malloc_trim works in. */
  pageBytes?: number;
  /** A walk of this process's own chunks and their pages' residency (glibc-walk.ts). */
  walk?: GlibcWalk;
}

/**
 * How many bytes glibc's arenas took from the system beyond the mappings the kernel's evidence
 * reads: the main arena's (malloc_info's `<system type="current">` of heap 0) beyond `[heap]`'s
 * size, else all arenas' (mallinfo2 `arena`) beyond `[heap]` and the 64 MiB heaps together. Not
 * zero when the program break could not grow (a mapping lies just above it, or there is no
 * `[heap]`): glibc then takes the main arena's memory with mmap, in anonymous mappings the kernel
 * does not tell from any other, and the arenas' Rss no longer says how much of their free memory
 * is resident. Undefined when a size is missing.
 */
export function arenaBytesOutsideMappings(state: AllocatorState, evidence: GlibcKernelEvidence): number | undefined {
  const { mainArenaSizeBytes: heapSize, threadArenasSizeBytes: threadSize } = evidence;
  if (heapSize === undefined) return undefined;
  const info = state.raw?.malloc_info as MallocInfo | undefined;
  if (info && Array.isArray(info.arenas)) {
    let main: number | undefined;
    for (const a of info.arenas) if (a.nr === 0 && a.systemBytes !== undefined) main = (main ?? 0) + a.systemBytes;
    if (main !== undefined) return Math.max(0, main - heapSize);
  }
  const all = state.raw?.arena;
  if (typeof all !== "number" || threadSize === undefined) return undefined;
  return Math.max(0, all - heapSize - threadSize);
}

/**
 * glibc's page states from the kernel's evidence: mallinfo2 cannot tell free memory that is still
 * resident from free memory already trimmed, the arenas' resident pages can.
 * - dirty (free, resident) = arena Rss − in-use chunks (`uordblks`), within `fordblks`;
 * - released (trimmed) = `fordblks` − dirty;
 * - releasable (what malloc_trim returns now) = dirty − the free bytes that are not whole pages
 *   inside free chunks (sub-page pieces, chunk headers, other arenas' tops), within both. The
 *   whole pages come from malloc_info's free-chunk sizes (trimmableBytes); after a trim they are
 *   no longer resident, so the dirty bytes shrink to the pieces and nothing is promised again.
 * Returns the state with those pages set; the state is unchanged when a figure is missing.
 */
export function withKernelEvidence(state: AllocatorState, evidence: GlibcKernelEvidence): AllocatorState {
  const fordblks = state.pages?.freeBytes;
  const uordblks = state.raw?.uordblks;
  if (fordblks === undefined || typeof uordblks !== "number") return state;
  const info = state.raw?.malloc_info as MallocInfo | undefined;
  const page = evidence.pageBytes ?? (typeof state.raw?.page_size === "number" ? state.raw.page_size : undefined);
  const walk = evidence.walk;
  if (walk?.main && walk.threads) {
    // Measured page by page: the free chunks' resident bytes and whole pages, and the in-use bytes
    // on pages never written, which Rss − in use would have counted as resident.
    const dirty = Math.min(fordblks, walk.main.freeResidentBytes + walk.threads.freeResidentBytes);
    const pages: NonNullable<AllocatorState["pages"]> = extend(state.pages ?? {}, {
      dirtyBytes: dirty,
      releasedBytes: fordblks - dirty,
      releasableBytes: Math.min(dirty, walk.main.releasableBytes + walk.threads.releasableBytes),
      inUseAbsentBytes: walk.main.inUseAbsentBytes + walk.threads.inUseAbsentBytes + (walk.mmapped?.absentBytes ?? 0),
    });
    const groups =
      info && Array.isArray(info.arenas) && page !== undefined && page > 0
        ? arenaGroups(info, page, evidence)
        : undefined;
    return extend(state, groups ? { pages, arenaGroups: groups } : { pages });
  }
  const dirty = Math.max(0, Math.min(fordblks, evidence.arenaRssBytes - uordblks));
  const pages: NonNullable<AllocatorState["pages"]> = extend(state.pages ?? {}, {
    dirtyBytes: dirty,
    releasedBytes: fordblks - dirty,
  });
  if (info && Array.isArray(info.arenas) && page !== undefined && page > 0) {
    const whole = Math.min(fordblks, trimmableBytes(info, page));
    const pieces = fordblks - whole;
    pages.releasableBytes = Math.max(0, Math.min(whole, dirty, dirty - pieces));
  }
  const groups =
    info && Array.isArray(info.arenas) && page !== undefined && page > 0
      ? arenaGroups(info, page, evidence)
      : undefined;
  return extend(state, groups ? { pages, arenaGroups: groups } : { pages });
}

/**
 * The main arena and the other threads' arenas, each from malloc_info's per-arena totals and the
 * resident pages of its own mappings: free and resident = Rss − in use (within the free chunks),
 * and of that, the whole pages inside free chunks (what malloc_trim returns) and the pieces.
 */
function arenaGroups(
  info: MallocInfo,
  page: number,
  evidence: GlibcKernelEvidence,
): { main: ArenaGroup; threads: ArenaGroup } | undefined {
  const { mainArenaRssBytes: mainRss, threadArenasRssBytes: threadRss } = evidence;
  if (mainRss === undefined || threadRss === undefined) return undefined;
  const group = (arenas: MallocInfoArena[], rss: number, walked: WalkedGroup | undefined): ArenaGroup | undefined => {
    let system = 0;
    let peak = 0;
    let free = 0;
    let whole = 0;
    let top = 0;
    for (const a of arenas) {
      if (a.systemBytes === undefined || a.fastFreeBytes === undefined || a.restFreeBytes === undefined)
        return undefined;
      system += a.systemBytes;
      peak += a.maxSystemBytes ?? a.systemBytes;
      free += a.fastFreeBytes + a.restFreeBytes;
      whole += arenaTrimmableBytes(a, page);
      top += arenaTopBytes(a) ?? 0;
    }
    free = Math.min(free, system);
    const inUse = system - free;
    // Walked: measured page by page. Else: Rss − in use (which counts never-written blocks as resident).
    const freeResident = walked ? Math.min(free, walked.freeResidentBytes) : Math.max(0, Math.min(free, rss - inUse));
    const releasable = walked
      ? Math.min(freeResident, walked.releasableBytes)
      : Math.max(0, Math.min(whole, freeResident, freeResident - (free - Math.min(whole, free))));
    const out: ArenaGroup = {
      arenas: arenas.length,
      systemBytes: system,
      peakSystemBytes: peak,
      inUseBytes: inUse,
      freeBytes: free,
      residentBytes: rss,
      freeResidentBytes: freeResident,
      releasableBytes: releasable,
      fragmentedBytes: freeResident - releasable,
      topBytes: Math.min(top, free),
    };
    if (walked) {
      out.measuredBy = "chunk-walk";
      out.inUseAbsentBytes = walked.inUseAbsentBytes;
      out.livePages = walked.livePages;
      out.topResidentBytes = Math.min(freeResident - releasable, walked.topResidentBytes);
    }
    return out;
  };
  const main = group(
    info.arenas.filter((a) => a.nr === 0),
    mainRss,
    evidence.walk?.main,
  );
  const threads = group(
    info.arenas.filter((a) => a.nr !== 0),
    threadRss,
    evidence.walk?.threads,
  );
  return main && threads ? { main, threads } : undefined;
}

/**
 * How many arenas glibc may create: the tunable glibc.malloc.arena_max, else MALLOC_ARENA_MAX
 * (both read by glibc when the process started), else 8 per online CPU on 64-bit (2 on 32-bit):
 * glibc counts online CPUs, not the cgroup's quota or the affinity mask.
 */
export function glibcArenaLimit(
  env: NodeJS.ProcessEnv,
  onlineCpus: number | undefined,
): { arenas: number; source: string } | undefined {
  const tunable = /(?:^|:)glibc\.malloc\.arena_max=(\d{1,6})(?::|$)/.exec(env.GLIBC_TUNABLES ?? "")?.[1];
  if (tunable !== undefined && Number(tunable) > 0)
    return { arenas: Number(tunable), source: "GLIBC_TUNABLES glibc.malloc.arena_max" };
  const max = env.MALLOC_ARENA_MAX;
  if (max !== undefined && /^\d{1,6}$/.test(max.trim()) && Number(max) > 0)
    return { arenas: Number(max), source: "MALLOC_ARENA_MAX" };
  if (onlineCpus === undefined) return undefined;
  const per =
    process.arch === "x64" || process.arch === "arm64" || process.arch === "ppc64" || process.arch === "s390x" ? 8 : 2;
  return { arenas: per * onlineCpus, source: `${per} × ${onlineCpus} online CPUs (glibc's default)` };
}
