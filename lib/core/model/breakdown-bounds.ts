/**
 * What the remainder holds that is named without a reading of its own: the anonymous mappings no
 * other part holds, and the upper bound on glibc's free memory where it was not measured.
 */
import { extend } from "../base/objects";
import { type BreakdownInput, regionRss } from "./breakdown-input";
import type { Breakdown, BreakdownBound, BreakdownPart } from "./types";

/**
 * The anonymous memory no other part holds, where the kernel's regions tell where it lies: the
 * anonymous private mappings outside glibc's arenas and the stacks hold V8's heap, glibc's mmapped
 * chunks, any other allocator's memory and the reporters' own mappings; what they hold beyond those
 * is V8's pages that its collector freed but keeps pooled (a young generation that grew and shrank)
 * or has not yet unmapped, other isolates' heaps, and memory native code maps itself. Measured in
 * this process with glibc serving malloc and its free memory measured (its main arena inside
 * [heap], so none of glibc's memory is anonymous beyond its mmapped chunks).
 */
export function anonMappingsBytes(input: BreakdownInput, parts: BreakdownPart[]): number | undefined {
  const heap = input.allocators.find((a) => a.servesMalloc);
  if (!input.self || heap?.allocator !== "glibc" || heap.arenaGroups === undefined) return undefined;
  if (input.warnings?.some((w) => w.code === "GLIBC_ARENA_OUTSIDE_HEAP")) return undefined;
  const hblkhd = typeof heap.raw?.hblkhd === "number" ? heap.raw.hblkhd : undefined;
  const anon = regionRss(input.regions, "anon");
  if (anon === undefined || hblkhd === undefined) return undefined;
  let held = hblkhd + (input.process?.lazyFreeBytes ?? 0);
  for (const p of parts) {
    if (p.name === "v8-heap" || p.name === "reported" || p.name.startsWith("other-")) held += p.bytes;
  }
  // Below 0 when V8 was read after the kernel and counted a page the kernel no longer had: the
  // other parts hold it all, and the difference stays in the signed remainder.
  return Math.max(0, anon - held);
}

export function glibcFreeBound(input: BreakdownInput, parts: BreakdownPart[]): BreakdownBound | undefined {
  const heap = input.allocators.find((a) => a.servesMalloc);
  if (heap?.allocator !== "glibc" || heap.pages?.dirtyBytes !== undefined) return undefined;
  const fordblks = heap.pages?.freeBytes;
  const anon = input.process?.rssAnonBytes;
  if (fordblks === undefined || anon === undefined) return undefined;
  let anonParts = input.process?.lazyFreeBytes ?? 0;
  for (const p of parts) {
    if (p.name === "v8-heap" || p.allocator !== undefined) anonParts += p.bytes;
  }
  return {
    name: "native-free",
    atMostBytes: Math.max(0, Math.min(fordblks, anon - anonParts)),
    source:
      "glibc mallinfo2 fordblks, within status RssAnon − V8's heap − the allocators' parts − LazyFree (which also holds other threads' V8 heaps and other native memory)",
    confirm:
      'the deep tier measures it from the arenas\' resident pages (collect({ tier: "deep" }), ?tier=deep, --deep)',
  };
}

/** The breakdown with its glibc bound's `confirm` saying why this reading did not measure it. */
function withGlibcFreeConfirm(b: Breakdown, confirm: string): Breakdown {
  if (!b.bounds?.some((x) => x.name === "native-free")) return b;
  const bounds = b.bounds.map((x) => (x.name === "native-free" ? extend(x, { confirm }) : x));
  return extend(b, { bounds });
}

/**
 * The breakdown with its glibc bound saying why no tier measures it: glibc's arenas took memory
 * outside the mappings the kernel names (warning GLIBC_ARENA_OUTSIDE_HEAP).
 */
export function withUnmeasurableGlibcFree(b: Breakdown): Breakdown {
  return withGlibcFreeConfirm(
    b,
    "no tier can measure it in this process: glibc's arenas hold memory outside [heap] and their 64 MiB heaps (warning GLIBC_ARENA_OUTSIDE_HEAP)",
  );
}

/**
 * A repeated deep reading that reused glibc's last walk and could not look again within the
 * back-off: the deep tier did not measure it this time, a one-shot deep reading does.
 */
export function withHeldBackGlibcFree(b: Breakdown): Breakdown {
  return withGlibcFreeConfirm(
    b,
    'not measured in this reading, which reused glibc\'s last walk within its back-off (see heap.asOf) and may not walk again to check its arenas against [heap]; a one-shot deep reading measures it (collect({ tier: "deep" }), --deep)',
  );
}
