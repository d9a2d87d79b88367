/** An allocator instance's parts of the breakdown, by page state, each with its source. */
import type { AllocatorState, BreakdownPart } from "./types";

/** What an allocator's parts are called after "native-" (the one serving malloc) or "other-". */
type AllocatorPart = "in-use" | "free" | "free-releasable" | "free-fragmented" | "metadata" | "committed";

/** Adds one part (undefined bytes: none) under the instance's prefix, native- or other-. */
type Add = (name: AllocatorPart, bytes: number | undefined, source: string, estimated?: boolean) => void;

/** The parts' full names, made once: a name joined at every reading is a string made at every reading. */
const NAMES = {
  native: names("native"),
  other: names("other"),
};

function names<P extends "native" | "other">(p: P): Record<AllocatorPart, `${P}-${AllocatorPart}`> {
  const all: AllocatorPart[] = ["in-use", "free", "free-releasable", "free-fragmented", "metadata", "committed"];
  return Object.fromEntries(all.map((n) => [n, `${p}-${n}`])) as Record<AllocatorPart, `${P}-${AllocatorPart}`>;
}

const PARTS = { jemalloc: jemallocParts, glibc: glibcParts, tcmalloc: tcmallocParts, mimalloc: mimallocParts };

/**
 * An allocator instance's parts, by page state, appended to `out` whole (its allocator, library
 * and age included): built once each, not as a spec copied into a part (every reading makes them).
 */
export function allocatorParts(a: AllocatorState, out: BreakdownPart[]): void {
  const named = a.servesMalloc ? NAMES.native : NAMES.other;
  const add: Add = (name, bytes, source, estimated = false) => {
    if (bytes === undefined) return;
    const part: BreakdownPart = { name: named[name], bytes, source };
    if (estimated) part.estimated = true;
    part.allocator = a.allocator;
    part.library = a.library;
    if (a.asOf !== undefined) part.asOf = a.asOf;
    out.push(part);
  };
  PARTS[a.allocator](a, add);
}

/**
 * jemalloc: active ⊇ allocated (the gap is fragmentation inside pages); dirty pages are free and
 * resident; muzzy pages are counted by the kernel's LazyFree part. stats.metadata counts metadata
 * that is reserved but not resident, so the part is what stats.resident leaves after active and
 * dirty pages, within stats.metadata.
 */
function jemallocParts(a: AllocatorState, add: Add): void {
  const dirty = a.pages?.dirtyBytes;
  add("in-use", a.activeBytes, "jemalloc stats.active");
  add("free", dirty, "jemalloc pdirty × page (all arenas)");
  const { residentBytes, activeBytes, metadataBytes } = a;
  if (residentBytes !== undefined && activeBytes !== undefined && metadataBytes !== undefined) {
    const meta = Math.max(0, Math.min(metadataBytes, residentBytes - activeBytes - (dirty ?? 0)));
    add("metadata", meta, "jemalloc stats.resident − active − dirty, within stats.metadata", true);
  }
}

/** glibc: in use (less what a walk found never written), and its free memory, measured or estimated. */
function glibcParts(a: AllocatorState, add: Add): void {
  const dirty = a.pages?.dirtyBytes;
  const releasable = a.pages?.releasableBytes;
  const absent = a.pages?.inUseAbsentBytes;
  if (absent !== undefined && a.allocatedBytes !== undefined) {
    // Walked: in-use blocks never written are not resident, and are not counted in RSS's parts.
    add(
      "in-use",
      Math.max(0, a.allocatedBytes - absent),
      "glibc mallinfo2 uordblks + hblkhd, less in-use chunks on pages not resident (a walk of its chunks with pagemap)",
    );
  } else {
    add("in-use", a.allocatedBytes, "glibc mallinfo2 uordblks + hblkhd");
  }
  if (dirty !== undefined && releasable !== undefined && absent !== undefined) {
    add("free-releasable", releasable, "resident whole pages trim returns: a walk of glibc's free chunks with pagemap");
    add(
      "free-fragmented",
      dirty - releasable,
      "free chunks' resident bytes outside those pages: a walk of glibc's chunks with pagemap",
    );
  } else if (dirty !== undefined && releasable !== undefined) {
    add(
      "free-releasable",
      releasable,
      "whole free pages trim returns: malloc_info free chunks with the arenas' smaps Rss",
      true,
    );
    add(
      "free-fragmented",
      dirty - releasable,
      "free pieces smaller than a page: arenas' smaps Rss − uordblks − releasable",
      true,
    );
  } else if (dirty !== undefined) {
    add("free", dirty, "arenas' smaps Rss − mallinfo2 uordblks, within fordblks", true);
  }
}

/** tcmalloc (gperftools): in use, the free page heap and caches, its metadata. */
function tcmallocParts(a: AllocatorState, add: Add): void {
  const dirty = a.pages?.dirtyBytes;
  const cached = a.pages?.cachedBytes;
  add("in-use", a.allocatedBytes, "tcmalloc generic.current_allocated_bytes");
  add(
    "free",
    dirty === undefined || cached === undefined ? undefined : dirty + cached,
    "tcmalloc pageheap_free_bytes + central, transfer and thread caches",
  );
  add("metadata", a.metadataBytes, "tcmalloc total_physical_bytes − (heap_size − pageheap_unmapped_bytes)", true);
}

/**
 * mimalloc 2.0 gives no in-use figure. What it has committed is the closest it says: live blocks
 * plus free committed pages, of which untouched ones are not resident.
 */
function mimallocParts(a: AllocatorState, add: Add): void {
  add(
    "committed",
    a.committedBytes,
    "mimalloc current_commit (in use + free committed; 2.0 has no in-use figure)",
    true,
  );
}

export function ago(asOf: string, now: string | undefined): string {
  if (now === undefined) return asOf;
  const s = Math.max(0, (Date.parse(now) - Date.parse(asOf)) / 1000);
  return `${s.toFixed(1)} s earlier`;
}
