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

import { ago, allocatorParts } from "./breakdown-allocators";
import { anonMappingsBytes, glibcFreeBound } from "./breakdown-bounds";
import { nativeChildren, v8Children } from "./breakdown-children";
import { arenaRss, type BreakdownInput, regionRss } from "./breakdown-input";
import type { Breakdown, BreakdownChild, BreakdownPart, PartName } from "./types";

export { withHeldBackGlibcFree, withUnmeasurableGlibcFree } from "./breakdown-bounds";
export { arenaRss, type BreakdownInput, regionRss, regionSize } from "./breakdown-input";

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
  parts.push(...allocatorPartsOf(input, time));
  parts.push(...reportedParts(input, time));
  add("lazy-free", proc?.lazyFreeBytes, "smaps_rollup LazyFree (MADV_FREE'd, reclaimable)");
  kernelParts(input, add);
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
  const breakdown: Breakdown = { parts, unattributedBytes: rss - attributed };
  const bounds = glibcFreeBound(input, parts);
  if (bounds) breakdown.bounds = [bounds];
  const chain = chainOf(input, rss);
  if (chain) breakdown.chain = chain;
  return breakdown;
}

/**
 * Every allocator instance's parts, with the serving one's in-use part split by owner. No
 * estimated allocator part may exceed what the kernel says is anonymous and resident, less what
 * the measured anonymous parts hold (mimalloc's committed bytes once read 168% of RSS).
 */
function allocatorPartsOf(input: BreakdownInput, time: string | undefined): BreakdownPart[] {
  const proc = input.process;
  const list: BreakdownPart[] = [];
  for (const a of input.allocators) allocatorParts(a, list);
  const anon = proc?.rssAnonBytes;
  if (anon !== undefined) {
    let left = anon - (input.self ? (input.v8?.physicalBytes ?? 0) : 0) - (proc?.lazyFreeBytes ?? 0);
    for (const p of list) if (!p.estimated) left -= p.bytes;
    for (const p of list) {
      if (!p.estimated) continue;
      if (p.bytes > Math.max(0, left)) {
        p.bytes = Math.max(0, left);
        p.source = `${p.source}; capped at status RssAnon beside the other parts`;
      }
      left -= p.bytes;
    }
  }
  for (const p of list) if (p.asOf !== undefined) p.source = `${p.source} [figures from ${ago(p.asOf, time)}]`;
  const heapPart = list.find((p) => p.name === "native-in-use" || p.name === "native-committed");
  const serving = input.allocators.find((a) => a.servesMalloc);
  if (input.self && heapPart && serving && heapPart.asOf === undefined) {
    const children = nativeChildren(input, serving, heapPart);
    if (children) heapPart.children = children;
  }
  return list;
}

/** The memory reporters' own mappings (kind "mapped"): parts of RSS of their own. */
function reportedParts(input: BreakdownInput, time: string | undefined): BreakdownPart[] {
  const out: BreakdownPart[] = [];
  for (const c of input.claims ?? []) {
    if (c.kind !== "mapped" || c.residentBytes === undefined) continue;
    out.push({
      name: "reported",
      bytes: c.residentBytes,
      source: `reporter ${JSON.stringify(c.name)}: resident bytes of its own mappings${c.asOf !== undefined ? ` [figures from ${ago(c.asOf, time)}]` : ""}`,
      label: c.name,
      ...(c.asOf !== undefined ? { asOf: c.asOf } : {}),
    });
  }
  return out;
}

/** What the kernel's regions name (deep tier), or status's file and shared figures without them. */
function kernelParts(
  input: BreakdownInput,
  add: (name: PartName, bytes: number | undefined, source: string) => void,
): void {
  const proc = input.process;
  const regions = input.regions;
  if (!regions) {
    add("file", proc?.rssFileBytes, "status RssFile (code and other file mappings)");
    add("shmem", proc?.rssShmemBytes, "status RssShmem");
    return;
  }
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
}

/** The ratios along allocated → active → resident → RSS of the serving allocator. */
function chainOf(input: BreakdownInput, rss: number): Breakdown["chain"] | undefined {
  const heap = input.allocators.find((a) => a.servesMalloc);
  if (!heap || (heap.allocatedBytes === undefined && heap.residentBytes === undefined)) return undefined;
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
  return Object.keys(chain).length > 0 ? chain : undefined;
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
