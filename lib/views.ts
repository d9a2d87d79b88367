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

/** Defines `heap` on a snapshot object as a view of its `allocators` (not enumerable: never serialised). */
export function withViews<T extends Snapshot>(s: T): T {
  Object.defineProperty(s, "heap", {
    get(this: Snapshot) {
      return servingAllocator(this);
    },
    enumerable: false,
    configurable: true,
  });
  return s;
}
