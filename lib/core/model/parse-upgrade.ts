/** Files older versions wrote, brought to the schema written now: what they stored twice kept once. */
import { isObject, type Obj } from "./parse-check";

/**
 * heapstate/2 → heapstate/3: values stored twice are kept once. The breakdown's RSS is
 * process.rssBytes (where both were written they were one figure; where only the breakdown's was,
 * it becomes process's, and where they differ the remainder is made again against process's so
 * that the parts still add up to it); jemalloc's pages.activeBytes and pages.retainedBytes are
 * its activeBytes and retainedBytes.
 */
export function upgradeFromV2(obj: Obj): void {
  const b = obj.breakdown as Obj | undefined;
  if (b) {
    obj.process ??= {};
    const p = obj.process as Obj;
    if (typeof b.rssBytes === "number") {
      if (typeof p.rssBytes !== "number") {
        p.rssBytes = b.rssBytes;
        if (b.rssSource === "smaps_rollup" || b.rssSource === "status") p.rssSource = b.rssSource;
      } else if (p.rssBytes !== b.rssBytes && typeof b.unattributedBytes === "number") {
        b.unattributedBytes = b.unattributedBytes + (p.rssBytes - b.rssBytes);
      }
    }
    delete b.rssBytes;
    delete b.rssSource;
  }
  for (const a of obj.allocators as Obj[]) {
    const pages = a.pages as Obj | undefined;
    if (!pages) continue;
    for (const k of ["activeBytes", "retainedBytes"]) {
      if (pages[k] === undefined) continue;
      if (a[k] === undefined) a[k] = pages[k];
      delete pages[k];
    }
  }
}

/**
 * heapstate/1 → heapstate/2: the allocator serving malloc was written twice (`heap` and
 * `allocators[0]`); the breakdown's exact RSS was not `process.rssBytes` (status VmRSS was); the
 * chain repeated byte figures the allocator and the breakdown carry.
 */
export function upgradeFromV1(obj: Obj): void {
  const heap = obj.heap;
  const allocators = obj.allocators as Obj[];
  if (isObject(heap) && !allocators.some((a) => a.servesMalloc === true)) {
    allocators.unshift({ ...heap, servesMalloc: true });
  }
  const b = obj.breakdown as Obj | undefined;
  const p = obj.process as Obj | undefined;
  if (b && p) {
    if (b.rssSource === "smaps_rollup" && typeof b.rssBytes === "number") {
      if (typeof p.rssBytes === "number") p.statusRssBytes = p.rssBytes;
      p.rssBytes = b.rssBytes;
      p.rssSource = "smaps_rollup";
    } else if (typeof p.rssBytes === "number") {
      p.rssSource = "status";
    }
  }
  const chain = b?.chain as Obj | undefined;
  if (chain) {
    for (const k of ["allocatedBytes", "activeBytes", "residentBytes", "rssBytes"]) delete chain[k];
    if (Object.keys(chain).length === 0) delete b?.chain;
  }
}
