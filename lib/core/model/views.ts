/**
 * Views of a snapshot that point at its data instead of copying it. `heap` is the allocator that
 * serves malloc: an entry of `allocators`, read through a getter that JSON does not serialise, so
 * the schema holds each allocator once while `s.heap` stays the short way to it.
 */
import type { AllocatorState, Snapshot } from "./types";

/** The allocator that serves malloc, from `allocators` (undefined when it is not known). */
export function servingAllocator(s: Pick<Snapshot, "allocators">): AllocatorState | undefined {
  return Array.isArray(s.allocators) ? s.allocators.find((a) => a?.servesMalloc === true) : undefined;
}

/**
 * One getter and one descriptor for every snapshot: a getter made per object gave each snapshot its
 * own hidden class (0.7 µs a reading, and the classes outlived young collections: the young
 * generation grew to its maximum under a loop of readings).
 */
const HEAP_VIEW: PropertyDescriptor = {
  get(this: Snapshot) {
    return servingAllocator(this);
  },
  enumerable: false,
  configurable: true,
};

/** Defines `heap` on a snapshot object as a view of its `allocators` (not enumerable: never serialised). */
export function withViews<T extends Snapshot>(s: T): T {
  Object.defineProperty(s, "heap", HEAP_VIEW);
  return s;
}
