/** The parts within a part: V8's heap by space, and who owns the native heap's in-use part. */
import { formatBytes } from "../base/units";
import type { BreakdownInput } from "./breakdown-input";
import type { AllocatorState, BreakdownChild, BreakdownPart, V8State, Warning } from "./types";

/** V8's heap by space: the spaces' physical sizes add up to total_physical_size (checked). */
export function v8Children(v8: V8State | undefined, total: number): BreakdownChild[] | undefined {
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
export function nativeChildren(
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
  const { children, mallocClaimed } = owners(input, v8.mallocedBytes, v8.arrayBuffersBytes, inArrayBuffers);
  let allocated = part.bytes;
  if (heap.allocator === "jemalloc" && heap.allocatedBytes !== undefined && heap.allocatedBytes <= part.bytes) {
    children.push({
      name: "native-allocator-slack",
      bytes: part.bytes - heap.allocatedBytes,
      source: "jemalloc active − allocated (room inside active pages)",
    });
    allocated = heap.allocatedBytes;
  }
  // mimalloc 2.0, its segments walked: the free spans and cached segments it keeps committed and
  // resident are its own, not an owner's.
  const miFree = heap.allocator === "mimalloc" ? heap.pages?.dirtyBytes : undefined;
  if (miFree !== undefined && miFree <= part.bytes) {
    children.push({
      name: "native-allocator-slack",
      bytes: miFree,
      source: "mimalloc free spans and cached segments, resident (a walk of its segment headers with pagemap)",
    });
    allocated = part.bytes - miFree;
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
    input.warnings?.push(exceeded(claimed, allocated, mallocClaimed, v8.arrayBuffersBytes, inArrayBuffers));
    return undefined;
  }
  children.push({
    name: "native-unclassified",
    bytes: rest,
    source:
      heap.allocator === "mimalloc" && miFree === undefined
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

/** V8's own malloc'd memory, the ArrayBuffers no reporter claims, and each reporter's claim. */
function owners(
  input: BreakdownInput,
  mallocedBytes: number,
  arrayBuffersBytes: number,
  inArrayBuffers: number,
): { children: BreakdownChild[]; mallocClaimed: number } {
  const children: BreakdownChild[] = [
    {
      name: "native-v8",
      bytes: mallocedBytes,
      source: "v8 malloced_memory (this isolate's zones and string table)",
    },
    {
      name: "native-array-buffers",
      bytes: arrayBuffersBytes - inArrayBuffers,
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
  return { children, mallocClaimed };
}

/** The warning when the owners claim more than the allocator gave out, with the likeliest overlap named. */
function exceeded(
  claimed: number,
  allocated: number,
  mallocClaimed: number,
  arrayBuffersBytes: number,
  inArrayBuffers: number,
): Warning {
  // The likeliest overlap: malloc reporters whose bytes are ArrayBuffers, counted by V8 already.
  const overlap =
    mallocClaimed > 0 && arrayBuffersBytes - inArrayBuffers >= claimed - allocated
      ? `the reporters of malloc memory claim ${formatBytes(mallocClaimed)}, and if they count Buffers or ArrayBuffers (which memoryUsage().arrayBuffers, ${formatBytes(arrayBuffersBytes)} here, counts already), register them with { kind: "array-buffers" }; memory a reporter maps itself is { kind: "mapped" }`
      : mallocClaimed > 0
        ? `a reporter counts memory that does not come from this process's malloc (memory it maps itself: { kind: "mapped" }), or other isolates' figures were mixed in`
        : "other isolates' figures were mixed in";
  return {
    source: "breakdown",
    code: "CHILDREN_EXCEED_PART",
    message: `V8, the ArrayBuffers and the reporters claim ${formatBytes(claimed)}, more than the ${formatBytes(allocated)} the allocator has given out: ${overlap}; the native heap is not split in this reading`,
  };
}
