/**
 * Reconciliation: RSS split into parts that add up to it exactly, and a signed remainder that
 * nobody accounts for (as Firefox's heap-unclassified). Each part says where its figure comes from
 * and whether it is derived. Nothing is counted twice: ArrayBuffer backing stores and V8's own
 * malloc'd memory are inside the allocator's figures, so they appear only there.
 *
 * A part is a measurement, never the remainder under another name: what could only be bounded
 * (glibc's free memory without the kernel's word on its arenas) stays in the remainder, and the
 * bound is given beside it (`bounds`).
 */

import { extend } from "../base/objects";
import { formatBytes } from "../base/units";
import type {
  AllocatorState,
  Breakdown,
  BreakdownBound,
  BreakdownChild,
  BreakdownPart,
  Claim,
  PartName,
  ProcessState,
  RegionSummary,
  V8State,
  Warning,
} from "./types";

export interface BreakdownInput {
  /** The process read is this one: V8 and the allocators were read in it. */
  self: boolean;
  /** Every allocator instance reported, the one serving malloc first. */
  allocators: AllocatorState[];
  v8?: V8State | undefined;
  /** The reading's one RSS is process.rssBytes (its source in process.rssSource). */
  process?: ProcessState | undefined;
  regions?: RegionSummary[] | undefined;
  /** What memory reporters claimed in this reading (this process only). */
  claims?: Claim[] | undefined;
  /** Where a problem found while splitting a part goes (children that exceed their part). */
  warnings?: Warning[] | undefined;
}

export function regionRss(regions: RegionSummary[] | undefined, ...categories: string[]): number | undefined {
  if (!regions) return undefined;
  let sum = 0;
  for (const r of regions) if (categories.includes(r.category)) sum += r.rssBytes ?? 0;
  return sum;
}

/** Σ Size of the regions of these categories (undefined without regions). */
export function regionSize(regions: RegionSummary[] | undefined, ...categories: string[]): number | undefined {
  if (!regions) return undefined;
  let sum = 0;
  for (const r of regions) if (categories.includes(r.category)) sum += r.sizeBytes;
  return sum;
}

/** Σ Rss of glibc's arena mappings (`[heap]` and the 64 MiB heaps), from smaps. */
export function arenaRss(regions: RegionSummary[] | undefined): number | undefined {
  return regionRss(regions, "malloc-main-arena", "malloc-arena");
}

type PartSpec = Omit<BreakdownPart, "allocator" | "library" | "asOf">;

/** What an allocator's parts are called after "native-" (the one serving malloc) or "other-". */
type AllocatorPart = "in-use" | "free" | "free-releasable" | "free-fragmented" | "metadata" | "committed";

/** An allocator instance's parts, by page state. */
function allocatorParts(a: AllocatorState): PartSpec[] {
  const out: PartSpec[] = [];
  const p: "native" | "other" = a.servesMalloc ? "native" : "other";
  const add = (name: AllocatorPart, bytes: number | undefined, source: string, estimated = false) => {
    const full: `${typeof p}-${AllocatorPart}` = `${p}-${name}`;
    if (bytes === undefined) return;
    out.push(estimated ? { name: full, bytes, source, estimated } : { name: full, bytes, source });
  };
  switch (a.allocator) {
    case "jemalloc": {
      // active ⊇ allocated (the gap is fragmentation inside pages); dirty pages are free and
      // resident; muzzy pages are counted by the kernel's LazyFree part. stats.metadata counts
      // metadata that is reserved but not resident, so the part is what stats.resident leaves
      // after active and dirty pages, within stats.metadata.
      const dirty = a.pages?.dirtyBytes;
      add("in-use", a.activeBytes, "jemalloc stats.active");
      add("free", dirty, "jemalloc pdirty × page (all arenas)");
      const { residentBytes, activeBytes, metadataBytes } = a;
      if (residentBytes !== undefined && activeBytes !== undefined && metadataBytes !== undefined) {
        const meta = Math.max(0, Math.min(metadataBytes, residentBytes - activeBytes - (dirty ?? 0)));
        add("metadata", meta, "jemalloc stats.resident − active − dirty, within stats.metadata", true);
      }
      break;
    }
    case "glibc": {
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
        add(
          "free-releasable",
          releasable,
          "resident whole pages trim returns: a walk of glibc's free chunks with pagemap",
        );
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
      break;
    }
    case "tcmalloc": {
      const dirty = a.pages?.dirtyBytes;
      const cached = a.pages?.cachedBytes;
      add("in-use", a.allocatedBytes, "tcmalloc generic.current_allocated_bytes");
      add(
        "free",
        dirty === undefined || cached === undefined ? undefined : dirty + cached,
        "tcmalloc pageheap_free_bytes + central, transfer and thread caches",
      );
      add("metadata", a.metadataBytes, "tcmalloc total_physical_bytes − (heap_size − pageheap_unmapped_bytes)", true);
      break;
    }
    case "mimalloc":
      // mimalloc 2.0 gives no in-use figure. What it has committed is the closest it says: live
      // blocks plus free committed pages, of which untouched ones are not resident.
      add(
        "committed",
        a.committedBytes,
        "mimalloc current_commit (in use + free committed; 2.0 has no in-use figure)",
        true,
      );
      break;
  }
  return out;
}

function ago(asOf: string, now: string | undefined): string {
  if (now === undefined) return asOf;
  const s = Math.max(0, (Date.parse(now) - Date.parse(asOf)) / 1000);
  return `${s.toFixed(1)} s earlier`;
}

/**
 * The breakdown of a reading. `time` is the reading's own time, to say how old a reused figure is.
 */
export function buildBreakdown(input: BreakdownInput, time?: string): Breakdown | undefined {
  const proc = input.process;
  const rss = proc?.rssBytes;
  if (rss === undefined) return undefined;
  const parts: BreakdownPart[] = [];
  const add = (name: PartName, bytes: number | undefined, source: string) => {
    if (bytes !== undefined) parts.push({ name, bytes, source });
  };
  if (input.self) add("v8-heap", input.v8?.physicalBytes, "v8.getHeapStatistics() total_physical_size (this isolate)");
  const v8Part = parts.find((p) => p.name === "v8-heap");
  if (v8Part) {
    const spaces = v8Children(input.v8, v8Part.bytes);
    if (spaces) v8Part.children = spaces;
  }

  // No estimated allocator part may exceed what the kernel says is anonymous and resident, less
  // what the measured anonymous parts hold (mimalloc's committed bytes once read 168% of RSS).
  const allocatorPartsList: BreakdownPart[] = [];
  for (const a of input.allocators) {
    for (const spec of allocatorParts(a)) {
      // Built whole, not spread: see objects.ts.
      const part: BreakdownPart = { name: spec.name, bytes: spec.bytes, source: spec.source };
      if (spec.estimated) part.estimated = spec.estimated;
      part.allocator = a.allocator;
      part.library = a.library;
      if (a.asOf !== undefined) part.asOf = a.asOf;
      allocatorPartsList.push(part);
    }
  }
  const anon = proc?.rssAnonBytes;
  if (anon !== undefined) {
    let left = anon - (input.self ? (input.v8?.physicalBytes ?? 0) : 0) - (proc?.lazyFreeBytes ?? 0);
    for (const p of allocatorPartsList) if (!p.estimated) left -= p.bytes;
    for (const p of allocatorPartsList) {
      if (!p.estimated) continue;
      if (p.bytes > Math.max(0, left)) {
        p.bytes = Math.max(0, left);
        p.source = `${p.source}; capped at status RssAnon beside the other parts`;
      }
      left -= p.bytes;
    }
  }
  for (const p of allocatorPartsList) {
    if (p.asOf !== undefined) p.source = `${p.source} [figures from ${ago(p.asOf, time)}]`;
    parts.push(p);
  }
  const heapPart = allocatorPartsList.find((p) => p.name === "native-in-use" || p.name === "native-committed");
  const serving = input.allocators.find((a) => a.servesMalloc);
  if (input.self && heapPart && serving && heapPart.asOf === undefined) {
    const children = nativeChildren(input, serving, heapPart);
    if (children) heapPart.children = children;
  }
  for (const c of input.claims ?? []) {
    if (c.kind !== "mapped" || c.residentBytes === undefined) continue;
    parts.push({
      name: "reported",
      bytes: c.residentBytes,
      source: `reporter ${JSON.stringify(c.name)}: resident bytes of its own mappings${c.asOf !== undefined ? ` [figures from ${ago(c.asOf, time)}]` : ""}`,
      label: c.name,
      ...(c.asOf !== undefined ? { asOf: c.asOf } : {}),
    });
  }

  add("lazy-free", proc?.lazyFreeBytes, "smaps_rollup LazyFree (MADV_FREE'd, reclaimable)");
  const regions = input.regions;
  if (regions) {
    if (!input.self) {
      // Another process: its allocator cannot be read from here, but the kernel shows glibc's arenas.
      add(
        "malloc-arenas",
        arenaRss(regions),
        "smaps Rss of [heap] and glibc's 64 MiB arena heaps: malloc arenas (in use + free); at least, as a main arena whose break could not grow maps the rest anonymously, left unattributed",
      );
    }
    add("stacks", regionRss(regions, "stack", "thread-stack"), "smaps Rss of [stack] and thread stacks");
    add("code", regionRss(regions, "code"), "smaps Rss of the program's and libraries' mappings");
    add("file", regionRss(regions, "file"), "smaps Rss of other file mappings");
    add("shmem", regionRss(regions, "shmem"), "smaps Rss of shared memory");
  } else {
    add("file", proc?.rssFileBytes, "status RssFile (code and other file mappings)");
    add("shmem", proc?.rssShmemBytes, "status RssShmem");
  }
  const anonMappings = anonMappingsBytes(input, parts);
  if (anonMappings !== undefined) {
    parts.push({
      name: "anon-mappings",
      bytes: anonMappings,
      source:
        "smaps Rss of anonymous mappings outside glibc's arenas and stacks, less V8's heap, glibc's mmapped chunks and the other parts there: V8's pooled pages, other isolates, native mmap",
      estimated: true,
    });
  }
  let attributed = 0;
  for (const p of parts) attributed += p.bytes;
  const breakdown: Breakdown = {
    parts,
    unattributedBytes: rss - attributed,
  };
  const bounds = glibcFreeBound(input, parts);
  if (bounds) breakdown.bounds = [bounds];
  const heap = input.allocators.find((a) => a.servesMalloc);
  if (heap && (heap.allocatedBytes !== undefined || heap.residentBytes !== undefined)) {
    const { allocatedBytes, activeBytes, residentBytes } = heap;
    const ratio = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined || b === 0 ? undefined : Math.round((a / b) * 1000) / 1000;
    const chain: NonNullable<Breakdown["chain"]> = {};
    const activeRatio = ratio(activeBytes, allocatedBytes);
    const residentRatio = ratio(residentBytes, activeBytes ?? allocatedBytes);
    const fragmentationRatio = ratio(rss, allocatedBytes);
    if (activeRatio !== undefined) chain.activeRatio = activeRatio;
    if (residentRatio !== undefined) chain.residentRatio = residentRatio;
    if (fragmentationRatio !== undefined) chain.fragmentationRatio = fragmentationRatio;
    if (Object.keys(chain).length > 0) breakdown.chain = chain;
  }
  return breakdown;
}

/** V8's heap by space: the spaces' physical sizes add up to total_physical_size (checked). */
function v8Children(v8: V8State | undefined, total: number): BreakdownChild[] | undefined {
  const spaces = v8?.spaces;
  if (!spaces || spaces.length === 0) return undefined;
  let sum = 0;
  for (const s of spaces) sum += s.physicalBytes;
  if (sum !== total) return undefined;
  return spaces
    .filter((s) => s.physicalBytes > 0)
    .map((s) => ({
      name: "v8-space" as const,
      bytes: s.physicalBytes,
      source: "v8 physical_space_size",
      label: s.name,
    }));
}

/**
 * Who owns the native heap's in-use part: V8's own malloc'd memory (zones, the string table),
 * ArrayBuffer backing stores, what reporters claim, jemalloc's slack inside its active pages, and
 * the unclassified rest (Firefox's heap-unclassified). All are counts of allocated bytes, as the
 * part is: an untouched calloc'd ArrayBuffer counts here and is not resident (the remainder then
 * goes negative by that much). Only for this process, from figures of the same moment.
 */
function nativeChildren(
  input: BreakdownInput,
  heap: AllocatorState,
  part: BreakdownPart,
): BreakdownChild[] | undefined {
  const v8 = input.v8;
  if (v8?.mallocedBytes === undefined || v8.arrayBuffersBytes === undefined) return undefined;
  // Reporters of ArrayBuffer memory claim a share of what memoryUsage().arrayBuffers counts.
  let inArrayBuffers = 0;
  const abNames: string[] = [];
  for (const c of input.claims ?? []) {
    if (c.kind !== "array-buffers") continue;
    inArrayBuffers += c.allocatedBytes;
    abNames.push(JSON.stringify(c.name));
  }
  if (inArrayBuffers > v8.arrayBuffersBytes) {
    input.warnings?.push({
      source: "breakdown",
      code: "CHILDREN_EXCEED_PART",
      message: `the reporters of ArrayBuffer memory (${abNames.join(", ")}) claim ${formatBytes(inArrayBuffers)}, more than the ${formatBytes(v8.arrayBuffersBytes)} of ArrayBuffers this isolate has (memoryUsage().arrayBuffers): one counts memory that is not this isolate's ArrayBuffers (a worker's, or malloc'd memory: register it with { kind: "malloc" }); the native heap is not split in this reading`,
    });
    return undefined;
  }
  const children: BreakdownChild[] = [
    {
      name: "native-v8",
      bytes: v8.mallocedBytes,
      source: "v8 malloced_memory (this isolate's zones and string table)",
    },
    {
      name: "native-array-buffers",
      bytes: v8.arrayBuffersBytes - inArrayBuffers,
      source:
        inArrayBuffers > 0
          ? `memoryUsage().arrayBuffers (allocated; resident once written), less what reporters of ArrayBuffer memory claim`
          : "memoryUsage().arrayBuffers (allocated; resident once written)",
    },
  ];
  let mallocClaimed = 0;
  for (const c of input.claims ?? []) {
    if (c.kind === "mapped") continue;
    if (c.kind === "malloc") mallocClaimed += c.allocatedBytes;
    children.push({
      name: "native-reported",
      bytes: c.allocatedBytes,
      source: `reporter ${JSON.stringify(c.name)}: ${c.kind === "array-buffers" ? "the ArrayBuffer memory it holds (within memoryUsage().arrayBuffers)" : "what it holds"}${c.asOf !== undefined ? ` (as of ${c.asOf})` : ""}`,
      label: c.name,
    });
  }
  let allocated = part.bytes;
  if (heap.allocator === "jemalloc" && heap.allocatedBytes !== undefined && heap.allocatedBytes <= part.bytes) {
    children.push({
      name: "native-allocator-slack",
      bytes: part.bytes - heap.allocatedBytes,
      source: "jemalloc active − allocated (room inside active pages)",
    });
    allocated = heap.allocatedBytes;
  }
  // glibc, walked: the part is what is resident; its owners count what they allocated. In-use
  // blocks never written (zlib's windows, calloc'd buffers) are theirs but not resident: a child
  // of their own, negative, so that the owners keep their figures and the children add up.
  const absent = heap.allocator === "glibc" ? heap.pages?.inUseAbsentBytes : undefined;
  if (absent !== undefined) {
    children.push({
      name: "native-not-resident",
      bytes: absent === 0 ? 0 : -absent,
      source:
        "in-use blocks on pages never written (counted by their owners above, not resident): a walk of glibc's chunks with pagemap",
    });
    allocated += absent;
  }
  let claimed = 0;
  for (const c of children)
    if (c.name !== "native-allocator-slack" && c.name !== "native-not-resident") claimed += c.bytes;
  const rest = allocated - claimed;
  if (rest < 0) {
    // The likeliest overlap: malloc reporters whose bytes are ArrayBuffers, counted by V8 already.
    const overlap =
      mallocClaimed > 0 && v8.arrayBuffersBytes - inArrayBuffers >= -rest
        ? `the reporters of malloc memory claim ${formatBytes(mallocClaimed)}, and if they count Buffers or ArrayBuffers (which memoryUsage().arrayBuffers, ${formatBytes(v8.arrayBuffersBytes)} here, counts already), register them with { kind: "array-buffers" }; memory a reporter maps itself is { kind: "mapped" }`
        : mallocClaimed > 0
          ? `a reporter counts memory that does not come from this process's malloc (memory it maps itself: { kind: "mapped" }), or other isolates' figures were mixed in`
          : "other isolates' figures were mixed in";
    input.warnings?.push({
      source: "breakdown",
      code: "CHILDREN_EXCEED_PART",
      message: `V8, the ArrayBuffers and the reporters claim ${formatBytes(claimed)}, more than the ${formatBytes(allocated)} the allocator has given out: ${overlap}; the native heap is not split in this reading`,
    });
    return undefined;
  }
  children.push({
    name: "native-unclassified",
    bytes: rest,
    source:
      heap.allocator === "mimalloc"
        ? "the rest, mimalloc's free committed pages included (2.0 has no in-use figure)"
        : "the rest: workers' isolates, addons without a reporter, Node's own",
    estimated: true,
  });
  return children;
}

/**
 * glibc's free memory when the kernel was not asked about its arenas: at most `fordblks`, and at
 * most the anonymous resident memory that no other part holds (status RssAnon − V8's heap − the
 * allocators' parts − LazyFree). That also counts other threads' V8 heaps, other allocators and
 * mmap by native code, so it is an upper bound, never a part.
 */
/**
 * The anonymous memory no other part holds, where the kernel's regions tell where it lies: the
 * anonymous private mappings outside glibc's arenas and the stacks hold V8's heap, glibc's mmapped
 * chunks, any other allocator's memory and the reporters' own mappings; what they hold beyond those
 * is V8's pages that its collector freed but keeps pooled (a young generation that grew and shrank)
 * or has not yet unmapped, other isolates' heaps, and memory native code maps itself. Measured in
 * this process with glibc serving malloc and its free memory measured (its main arena inside
 * [heap], so none of glibc's memory is anonymous beyond its mmapped chunks).
 */
function anonMappingsBytes(input: BreakdownInput, parts: BreakdownPart[]): number | undefined {
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

function glibcFreeBound(input: BreakdownInput, parts: BreakdownPart[]): BreakdownBound | undefined {
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

/**
 * A part's key, unique within a breakdown: its name, and for another allocator's parts the
 * allocator and its library's file name ("other-in-use jemalloc libfoo.node"), since two
 * allocators aside may both have an "other-in-use". Faces that key parts (diff, samples, the log
 * field) use this.
 */
export function partKey(p: BreakdownPart | BreakdownChild): string {
  if (p.label !== undefined) return `${p.name} ${p.label}`;
  if (!("allocator" in p) || !p.name.startsWith("other-") || p.allocator === undefined) return p.name;
  const lib = p.library === undefined ? "" : ` ${p.library.slice(p.library.lastIndexOf("/") + 1)}`;
  return `${p.name} ${p.allocator}${lib}`;
}
