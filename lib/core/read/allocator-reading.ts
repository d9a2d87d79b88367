/**
 * The allocators of this process, read through the addon for one reading; glibc's costly walk
 * reused within its back-off when the reader repeats; and glibc's free memory confirmed from the
 * kernel (its arenas' resident pages) when the standard tier's upper bound says it may be worth a
 * warning.
 */

import { filesAhead, takeFilesAhead } from "../addon/kernel-files";
import { native, nativeProblem } from "../addon/native";
import { readAllocators } from "../addon/native-read";
import { arenaBytesOutsideMappings, type GlibcKernelEvidence, withKernelEvidence } from "../allocators/glibc";
import { walkGlibcHeaps } from "../allocators/glibc-walk";
import { allocatorsFromReading } from "../allocators/index";
import { walkMimallocSegments } from "../allocators/mimalloc-walk";
import { Backoff, type BackoffPolicy, type Clock, costSince, nowMicros, threadCpu } from "../base/backoff";
import { errorText } from "../base/errors";
import { extend } from "../base/objects";
import { regionRss, regionSize } from "../model/breakdown";
import type { AllocatorState, RegionSummary, Snapshot, Tier, Warning } from "../model/types";
import { servingAllocator } from "../model/views";
import type { ReadPlan } from "./options";
import { readBreakHeapBytes, readRegions } from "./sources";

/** How a reading may treat glibc's walk: one-shot readings never reuse; repeated readers may. */
export interface ReadPolicy {
  /** A repeated reader (sampler, cache, metrics, handler): glibc's walk may be reused within its back-off. */
  reuse: boolean;
  /**
   * When the standard tier measures glibc's free memory from the kernel: `auto` (default) when its
   * upper bound is large enough for a warning; `always` (trim(), to promise); `never` (the sidecar,
   * whose readings bound a change and must cost the same at start and stop).
   */
  confirmGlibc?: "auto" | "always" | "never";
}

/** The kernel's word on glibc's arenas: the Rss and size of `[heap]` (the main arena) and of the 64 MiB arena heaps. */
function arenaEvidence(regions: RegionSummary[] | undefined): GlibcKernelEvidence | undefined {
  const main = regionRss(regions, "malloc-main-arena");
  const threads = regionRss(regions, "malloc-arena");
  const mainSize = regionSize(regions, "malloc-main-arena");
  const threadsSize = regionSize(regions, "malloc-arena");
  if (main === undefined || threads === undefined || mainSize === undefined || threadsSize === undefined)
    return undefined;
  return {
    arenaRssBytes: main + threads,
    mainArenaRssBytes: main,
    threadArenasRssBytes: threads,
    mainArenaSizeBytes: mainSize,
    threadArenasSizeBytes: threadsSize,
  };
}

/**
 * The walk of glibc's own chunks and their pages' residency, added to the kernel's evidence: free
 * memory measured page by page, so that in-use blocks never written do not hide free pages. When
 * it cannot close its walk, the estimate (Rss − in use) stands and a note says why.
 */
function withWalk(evidence: GlibcKernelEvidence, heap: AllocatorState, warnings: Warning[]): void {
  const page = typeof heap.raw?.page_size === "number" ? heap.raw.page_size : undefined;
  if (page === undefined || page <= 0) return;
  const hblkhd = heap.raw?.hblkhd;
  const walk = walkGlibcHeaps(page, typeof hblkhd === "number" ? hblkhd : undefined);
  evidence.walk = walk;
  if (walk.problems.length > 0)
    warnings.push({
      source: "glibc",
      code: "GLIBC_WALK_INCOMPLETE",
      message: `glibc's chunks could not all be walked: ${walk.problems.join("; ")} (an estimate of free memory is the arenas' resident pages less their in-use bytes, which counts blocks never written as resident)`,
    });
}

/** What asking the kernel about glibc's free memory came to. */
export type GlibcConfirmation =
  /** The heap now carries the measured page states. */
  | "measured"
  /** It cannot be measured in this process (warning GLIBC_ARENA_OUTSIDE_HEAP says why). */
  | "unmeasurable"
  /** A repeated deep reading reused glibc's walk and may not walk again to look at its arenas. */
  | "held-back"
  /** Not asked (another allocator, held back, or a source failed: its warning says so). */
  | "not-asked";

/**
 * When the program break cannot grow, glibc maps at least 1 MiB for the main arena
 * (MMAP_AS_MORECORE_SIZE) and never gives it back with the break.
 */
const OUTSIDE_MIN = 1 << 20;

/**
 * A second look at the main arena's bytes beyond `[heap]`, with both figures of one moment: the
 * outside bytes, "moving" when the break moved during every look (a main arena the break serves,
 * growing and trimmed by other threads), "held-back" when the walk's back-off forbids walking
 * again now, or undefined when a source failed.
 */
export type OutsideLook = () => number | "moving" | "held-back" | undefined;

/**
 * glibc's free memory measured from the kernel's evidence, or, when its arenas hold memory beyond
 * the mappings that evidence reads, undefined and a warning saying why it cannot be measured, or
 * "held-back" (no figures, no warning) when that needs a second look the back-off forbids: the first
 * look then compared a reused walk with today's `[heap]`, and says nothing either way.
 * smaps and the walk are not read at one instant: another thread's malloc may grow the break, or a
 * trim shrink it, in between. So what the first look finds outside `[heap]` is looked at again
 * (`again`) before it is said: a break that moves serves the main arena, one that cannot grow does
 * not move.
 */
export function measuredFree(
  state: AllocatorState,
  evidence: GlibcKernelEvidence,
  warnings: Warning[],
  again: OutsideLook,
): AllocatorState | "held-back" | undefined {
  let outside = arenaBytesOutsideMappings(state, evidence);
  if (outside !== undefined && outside >= OUTSIDE_MIN) {
    const second = again();
    if (second === "held-back") return second;
    if (second === "moving") outside = 0;
    else if (second !== undefined) outside = second;
  }
  if (outside === undefined || outside < OUTSIDE_MIN) return withKernelEvidence(state, evidence);
  const mib = (outside / 1048576).toFixed(1);
  warnings.push({
    source: "glibc",
    code: "GLIBC_ARENA_OUTSIDE_HEAP",
    message:
      `glibc's main arena took ${mib} MiB from the system outside [heap]: the program break could not grow ` +
      "(a mapping lies just above it, or there is no [heap]), so glibc mapped that memory anonymously, where the kernel does not tell it from other memory. " +
      "How much of glibc's free memory is resident, and what trim() would return, cannot be measured: the breakdown keeps its upper bound",
  });
  return undefined;
}

/**
 * The second look: `[heap]`'s size from maps, a walk of the main arena's figures (malloc_info),
 * `[heap]`'s size again; when the break moved during the walk, again, three times at most.
 */
function outsideLook(o: ReadPlan, binding: NonNullable<ReturnType<typeof native>>): OutsideLook {
  return () => {
    for (let i = 0; i < 3; i++) {
      const before = readBreakHeapBytes(o);
      if (before === undefined) return undefined;
      let walked: AllocatorState | undefined;
      try {
        walked = allocatorsFromReading(
          binding.read({ glibc: true, mallocInfo: true, onlyGlibc: true }),
          [],
          undefined,
        ).heap;
      } catch {
        return undefined;
      }
      const after = readBreakHeapBytes(o);
      if (after === undefined || walked?.allocator !== "glibc") return undefined;
      if (after !== before) continue;
      return arenaBytesOutsideMappings(walked, { arenaRssBytes: 0, mainArenaSizeBytes: after });
    }
    return "moving";
  };
}

/** A repeated reading that will not walk glibc's heap again: its last walk stalled the service past the bound. */
function heldWarning(costMicros: number, boundMicros: number, asOf: string | undefined): Warning {
  const ms = Math.round(costMicros / 100) / 10;
  return {
    source: "glibc",
    code: "GLIBC_WALK_HELD",
    message:
      `glibc's last walk of its heap cost ${ms} ms of CPU, holding its arenas' locks at least as long (other threads' malloc waited), ` +
      `more than the ${boundMicros / 1000} ms a repeated reading may stall the service: scrapes and the sampler do not walk again` +
      (asOf ? ` and reuse its figures from ${asOf}` : "") +
      "; a one-shot reading (collect(), the CLI, trim()) walks on request, and repeats resume once a walk is cheaper",
  };
}

/**
 * glibc's mallinfo2/malloc_info walk every free chunk while holding each arena's lock: 20 ms with
 * 500 k free chunks, stalling other threads' mallocs. For a repeated reader, a walk that cost 1 ms
 * or more is repeated at most every 10 s, or less often if its cost needs it to stay under 1% of
 * one core (a 15 ms walk: every 10 s). A walk's cost is its CPU time (wall time when less): time
 * spent descheduled on a loaded machine is not the walk's, and would otherwise make a cheap walk
 * back off. In between, the last glibc reading is reused and says so
 * in `asOf` (and what is built on it says its age). A walk that cost more than 20 ms stalled the
 * service's mallocs at least that long: repeated readers do not walk again (warning GLIBC_WALK_HELD) until a
 * one-shot reading finds it cheaper. A cheaper walk (an idle Node takes a few µs)
 * is simply repeated. A one-shot reading (collect(), the CLI, trim()) always walks.
 *
 * Confirming glibc's free memory reads smaps and walks again with malloc_info; it backs off by its
 * own cost the same way.
 */
export class AllocatorReader {
  private glibcServesMalloc: boolean | undefined;
  private memo: { state: AllocatorState; time: string } | undefined;
  readonly walk: Backoff;
  readonly confirmation: Backoff;

  constructor(clock?: Clock, policy?: BackoffPolicy) {
    this.walk = new Backoff(clock, policy);
    this.confirmation = new Backoff(clock, policy);
  }

  /**
   * Reads every allocator instance into snap.allocators (the serving one first); problems become
   * warnings. `ahead`: the kernel files the reading reads ahead, read in the same native call;
   * returns whether they were.
   */
  read(snap: Snapshot, tier: Tier, policy: ReadPolicy, warnings: Warning[], ahead?: readonly string[]): boolean {
    const binding = native();
    if (binding === undefined) {
      const problem = nativeProblem();
      if (problem) warnings.push(problem);
      return false;
    }
    let readAhead = false;
    try {
      // glibc's counters are read only when libc serves malloc: under a preload they describe an
      // empty arena. Which object serves malloc is fixed for the life of the process (objects
      // loaded later come after it in symbol-resolution order), so it is asked once.
      this.glibcServesMalloc ??= binding.discover().instances.some((i) => i.allocator === "glibc" && i.servesMalloc);
      const memo = this.memo;
      const walk =
        this.glibcServesMalloc &&
        (!policy.reuse ||
          memo === undefined ||
          this.walk.due() ||
          (tier === "deep" && memo.state.raw?.malloc_info === undefined));
      // The walk's cost sets its back-off: by the wall clock while walks are cheap, and by this
      // thread's CPU clock as well once a wall time could be descheduling on a loaded machine (a
      // first version took any wall time for the cost, and a CI run under load held a cheap walk
      // back 10 s): Backoff.record. Without a walk, nothing is timed.
      const cpuClock = walk && this.walk.wantsCpuClock ? binding : undefined;
      const wallStart = walk ? nowMicros() : 0;
      const cpuStart = threadCpu(cpuClock);
      const files = ahead && ahead.length > 0 ? filesAhead(ahead) : undefined;
      const reading = readAllocators(
        binding,
        { glibc: walk === true, mallocInfo: walk === true && tier === "deep" },
        files,
      );
      if (files && ahead) readAhead = takeFilesAhead(ahead, files) !== undefined;
      if (walk) this.walk.record(wallStart, cpuStart, cpuClock);
      const reused = walk ? undefined : memo?.state;
      const { heap, allocators } = allocatorsFromReading(reading, warnings, reused);
      if (walk && heap?.allocator === "glibc") this.memo = { state: heap, time: snap.time };
      if (!walk && heap && memo && heap === memo.state) {
        allocators[allocators.indexOf(heap)] = extend(heap, { asOf: memo.time });
        if (this.walk.held)
          warnings.push(heldWarning(this.walk.lastCost, this.walk.policy.stallBoundMicros, memo.time));
      }
      snap.allocators = allocators;
    } catch (error) {
      warnings.push({
        source: "native",
        code: "NATIVE_READ_FAILED",
        message: `reading the allocator failed: ${errorText(error)}`,
      });
    }
    return readAhead;
  }

  /**
   * glibc's free memory from the kernel's word: the arenas' resident pages (smaps) beside a fresh
   * walk with malloc_info, so the reading can say how much of it is free and resident and how much
   * a trim returns. Regions already read (deep tier) are used as they are; otherwise smaps is
   * read here, and for a repeated reader only when its back-off allows.
   */
  confirmGlibcFree(snap: Snapshot, o: ReadPlan, policy: ReadPolicy, warnings: Warning[]): GlibcConfirmation {
    const heap = servingAllocator(snap);
    if (heap?.allocator !== "glibc" || !heap.servesMalloc) return "not-asked";
    if (snap.regions) {
      // The deep tier: the walk carried malloc_info, smaps was read for the regions.
      const evidence = arenaEvidence(snap.regions);
      const binding = native();
      if (evidence === undefined || binding === undefined) return "not-asked";
      // A repeated reader inside the walk's back-off reuses the last walk: a second look would walk
      // again, past the bound the back-off keeps (a held walk stalls the service 20 ms or more).
      const reused = policy.reuse && heap.asOf !== undefined;
      if (!reused) withWalk(evidence, heap, warnings);
      const measured = measuredFree(heap, evidence, warnings, reused ? () => "held-back" : outsideLook(o, binding));
      if (measured === "held-back") return "held-back";
      if (measured === undefined) return "unmeasurable";
      this.replaceHeap(snap, heap, measured);
      return "measured";
    }
    if (policy.reuse && !this.confirmation.due()) {
      if (this.confirmation.held)
        warnings.push(heldWarning(this.confirmation.lastCost, this.confirmation.policy.stallBoundMicros, undefined));
      return "not-asked";
    }
    const binding = native();
    if (binding === undefined) return "not-asked";
    const wallStart = nowMicros();
    const cpuStart = threadCpu(binding);
    try {
      // smaps first, then the walk: what reading smaps allocates is either still in use at the walk
      // (counted on both sides) or freed by then (free and resident: what a trim returns); walked
      // first, it would be counted resident but not in use, and promised though still held.
      const regions = readRegions(extend(o, { includeAddresses: false }), warnings);
      const reading = binding.read({ glibc: true, mallocInfo: true, onlyGlibc: true });
      const fresh = allocatorsFromReading(reading, [], undefined).heap;
      const evidence = arenaEvidence(regions);
      if (fresh?.allocator !== "glibc" || evidence === undefined) return "not-asked";
      withWalk(evidence, fresh, warnings);
      const measured = measuredFree(fresh, evidence, warnings, outsideLook(o, binding));
      if (measured === "held-back") return "not-asked"; // its look always walks: not reached
      if (measured === undefined) return "unmeasurable";
      this.replaceHeap(snap, heap, measured);
      this.memo = { state: fresh, time: snap.time };
      return "measured";
    } catch (error) {
      warnings.push({
        source: "glibc",
        code: "SOURCE_FAILED",
        message: `glibc's free memory could not be confirmed from the kernel: ${errorText(error)}`,
      });
      return "not-asked";
    } finally {
      this.confirmation.ran(costSince(wallStart, cpuStart, binding));
    }
  }

  /**
   * mimalloc 2.0's free memory, from its segments' headers and pagemap (it counts no in-use bytes,
   * so its statistics cannot say what of its committed memory is free): the free spans and cached
   * segments on resident pages, and what of them mi_collect(true) returns (the cached segments).
   */
  measureMimallocFree(snap: Snapshot, warnings: Warning[]): void {
    const heap = servingAllocator(snap);
    if (heap?.allocator !== "mimalloc" || !heap.servesMalloc || !heap.version?.startsWith("2.0.")) return;
    const page = typeof heap.raw?.page_size === "number" ? heap.raw.page_size : 4096;
    const walk = walkMimallocSegments(page);
    if (walk.segments === 0 || walk.problems.length > 0) {
      warnings.push({
        source: "mimalloc",
        code: "MIMALLOC_WALK_INCOMPLETE",
        message: `mimalloc's segments could not be read${walk.problems.length > 0 ? `: ${walk.problems.join("; ")}` : " (no segment header was found in this process's anonymous mappings)"}, so what of its committed memory is free is not known`,
      });
      return;
    }
    this.replaceHeap(
      snap,
      heap,
      extend(heap, {
        pages: { dirtyBytes: walk.freeResidentBytes, releasableBytes: walk.cachedSegmentBytes },
      }),
    );
  }

  private replaceHeap(snap: Snapshot, old: AllocatorState, next: AllocatorState): void {
    const i = snap.allocators.indexOf(old);
    if (i >= 0) snap.allocators[i] = next;
  }
}
