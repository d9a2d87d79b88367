/**
 * The independent-truth suite. For each allocator (glibc, and jemalloc, tcmalloc, mimalloc
 * through LD_PRELOAD), real workloads in a child process — zlib streams, fs reads into Buffers, a
 * large JSON.parse, a million small blocks with 90 % freed at random, a second allocator (an
 * addon's own jemalloc) holding memory beside the serving one, worker threads holding native
 * memory — and at each checkpoint heapstate's standard and deep readings between two readings of
 * the allocator's own printer (malloc_stats, malloc_stats_print's JSON, MallocExtension::GetStats,
 * mi_stats_print_out) and of the kernel's files (smaps_rollup, status, and glibc's arenas in smaps,
 * walked by the child itself).
 *
 * - every figure within max(2 MiB, 2 %) of the printer's or the kernel's, between the two readings;
 * - for glibc, jemalloc and tcmalloc, |unattributed| ≤ max(4 MiB, 3 % of RSS), plus what the
 *   kernel saw the process's RSS move across the reading, in every checkpoint with a single
 *   isolate (no workers) and no untouched calloc pages (the workloads touch what they allocate);
 *   for glibc in the deep tier, which measures its free memory (the standard tier bounds it and
 *   says so, `bounds`);
 * - no warning that the independent figures contradict.
 */
import { describe, expect, it } from "vitest";
import type { AllocatorState, BreakdownPart, Finding, Snapshot } from "../../lib/core/model/types";
import {
  inBeforeAll,
  jemallocStaticAddon,
  MiB,
  mimallocCommitted,
  type PreloadName,
  requireLib,
  runChild,
} from "../helpers";

interface Kernel {
  rss: number;
  anonymous: number;
  lazyFree: number;
  rssAnon: number;
}

/** The allocator's printer, the kernel's files and (glibc) its arenas in smaps, read at one moment. */
interface Independent {
  printer: string;
  kernel: Kernel;
  arenas?: number;
}

interface Checkpoint {
  name: string;
  multiIsolate?: boolean;
  aside?: number;
  /** Read before the standard reading, between it and the deep one, and after the deep one. */
  before: Independent;
  mid: Independent;
  after: Independent;
  standard: Snapshot;
  deep: Snapshot;
}

/** A reading and the independent readings just before and just after it. */
function judged(c: Checkpoint): Array<[Snapshot, Independent, Independent]> {
  return [
    [c.standard, c.before, c.mid],
    [c.deep, c.mid, c.after],
  ];
}

const runs: Array<[string, PreloadName | undefined]> = [
  ["glibc", undefined],
  ["jemalloc", "jemalloc"],
  ["tcmalloc", "tcmalloc"],
  ["mimalloc", "mimalloc"],
];

/** max(2 MiB, 2 %) of the figure's size. */
function tolerance(v: number): number {
  return Math.max(2 * MiB, 0.02 * Math.abs(v));
}

/** heapstate's figure lies between the independent source's two readings, within the tolerance. */
function within(ours: number | undefined, label: string, before: number, after: number): void {
  expect(ours, `${label}: not measured`).toEqual(expect.any(Number));
  const lo = Math.min(before, after);
  const hi = Math.max(before, after);
  expect(ours as number, `${label}: ${ours} vs [${before}, ${after}]`).toBeGreaterThanOrEqual(lo - tolerance(lo));
  expect(ours as number, `${label}: ${ours} vs [${before}, ${after}]`).toBeLessThanOrEqual(hi + tolerance(hi));
}

function serving(s: Snapshot): AllocatorState {
  const heap = s.allocators.find((a) => a.servesMalloc);
  expect(heap, JSON.stringify(s.warnings)).toBeDefined();
  return heap as AllocatorState;
}

function part(s: Snapshot, name: string): BreakdownPart | undefined {
  return s.breakdown?.parts.find((p) => p.name === name);
}

// The printers' texts.

interface GlibcStats {
  arenasInUse: number;
  arenasSystem: number;
  totalInUse: number;
  totalSystem: number;
}

function glibcStats(text: string): GlibcStats {
  const totalAt = text.indexOf("Total (incl. mmap):");
  const arenas = text.slice(0, totalAt);
  const total = text.slice(totalAt);
  const sum = (t: string, key: string) =>
    [...t.matchAll(new RegExp(`${key}\\s*=\\s*(\\d+)`, "g"))].reduce((n, m) => n + Number(m[1]), 0);
  return {
    arenasInUse: sum(arenas, "in use bytes"),
    arenasSystem: sum(arenas, "system bytes"),
    totalInUse: sum(total, "in use bytes"),
    totalSystem: sum(total, "system bytes"),
  };
}

interface JemallocStats {
  stats: Record<string, number>;
  merged: Record<string, number>;
  page: number;
}

function jemallocStats(text: string): JemallocStats {
  const j = (
    JSON.parse(text) as {
      jemalloc: {
        stats: Record<string, number>;
        "stats.arenas": { merged: Record<string, number> };
        arenas: { page: number };
      };
    }
  ).jemalloc;
  return { stats: j.stats, merged: j["stats.arenas"].merged, page: j.arenas.page };
}

function tcmallocStat(text: string, label: string): number {
  const m = new RegExp(`MALLOC:[\\s+=]*(\\d+) \\([^)]*\\) ${label}`).exec(text);
  if (!m) throw new Error(`"${label}" not in tcmalloc's stats`);
  return Number(m[1]);
}

/** glibc's free resident memory from one independent reading: the child's own smaps walk − malloc_stats' arena in-use. */
function independentGlibcFree(i: Independent): number {
  const stats = glibcStats(i.printer);
  const free = stats.arenasSystem - stats.arenasInUse;
  return Math.max(0, Math.min(free, (i.arenas as number) - stats.arenasInUse));
}

describe.each(runs)("the truth under %s", (which, preload) => {
  // Two V8 flags keep V8's own churn out of the comparison, on a loaded machine as on an idle one:
  // the young generation is held at 1 MiB semi-spaces (V8 keeps the pages of a young generation
  // that grew and shrank pooled and resident, but not in total_physical_size: 12 MiB of them under
  // CPU load, in the remainder, and no API says so); and --single-threaded, so that no GC or
  // compiler thread mallocs and frees between the printer's readings and heapstate's (3 MiB of
  // such a transient was seen under load). Both are V8's to report; the suite measures what
  // heapstate can see.
  const out = inBeforeAll(() =>
    runChild<{ which: string; checkpoints: Checkpoint[] }>(
      "truth.cjs",
      [which],
      {
        ...(preload ? { LD_PRELOAD: requireLib(preload) } : {}),
        HEAPSTATE_TEST_JEMALLOC_STATIC: jemallocStaticAddon,
        GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=16384",
      },
      ["--max-semi-space-size=1", "--single-threaded"],
    ),
  );
  const checkpoints = () => out().checkpoints;

  it("ran every workload", () => {
    expect(checkpoints().map((c) => c.name)).toEqual([
      "baseline",
      "zlib streams open",
      "fs reads into Buffers",
      "large JSON.parse",
      "random free fragmentation",
      "second allocator holding 96 MiB",
      "second allocator after freeing",
      "worker threads holding native memory",
      "released",
    ]);
    for (const c of checkpoints()) expect(serving(c.standard).allocator, c.name).toBe(which);
  });

  it("RSS is the kernel's, read between two readings of smaps_rollup", () => {
    for (const c of checkpoints()) {
      for (const [s, b, a] of judged(c)) {
        expect(s.process?.rssSource, c.name).toBe("smaps_rollup");
        within(s.process?.rssBytes, `${c.name} ${s.tier} rss`, b.kernel.rss, a.kernel.rss);
        expect(s.breakdown?.parts.reduce((n, p) => n + p.bytes, 0)).toBe(
          (s.process?.rssBytes as number) - (s.breakdown?.unattributedBytes as number),
        );
      }
    }
  });

  it("the allocator's figures agree with its own printer", () => {
    for (const c of checkpoints()) {
      for (const [s, before, after] of judged(c)) {
        const heap = serving(s);
        const at = (label: string) => `${c.name} ${s.tier}: ${label}`;
        if (which === "glibc") {
          const [b, a] = [glibcStats(before.printer), glibcStats(after.printer)];
          within(heap.allocatedBytes, at("allocated vs in use bytes"), b.totalInUse, a.totalInUse);
          within(heap.mappedBytes, at("mapped vs system bytes"), b.totalSystem, a.totalSystem);
          if (s.tier === "deep") {
            within(
              heap.pages?.dirtyBytes,
              at("free resident vs arenas' Rss − malloc_stats in use"),
              independentGlibcFree(before),
              independentGlibcFree(after),
            );
          }
        } else if (which === "jemalloc") {
          const [b, a] = [jemallocStats(before.printer), jemallocStats(after.printer)];
          const pairs: Array<[number | undefined, string]> = [
            [heap.allocatedBytes, "allocated"],
            [heap.activeBytes, "active"],
            [heap.residentBytes, "resident"],
            [heap.mappedBytes, "mapped"],
            [heap.metadataBytes, "metadata"],
            [heap.retainedBytes, "retained"],
          ];
          for (const [ours, key] of pairs)
            within(ours, at(`stats.${key}`), b.stats[key] as number, a.stats[key] as number);
          within(
            heap.pages?.dirtyBytes,
            at("pdirty × page"),
            (b.merged.pdirty as number) * b.page,
            (a.merged.pdirty as number) * a.page,
          );
        } else if (which === "tcmalloc") {
          const [b, a] = [before.printer, after.printer];
          const pair = (ours: number | undefined, label: string) =>
            within(ours, at(label), tcmallocStat(b, label), tcmallocStat(a, label));
          pair(heap.allocatedBytes, "Bytes in use by application");
          pair(heap.pages?.dirtyBytes, "Bytes in page heap freelist");
          pair(heap.pages?.releasedBytes, "Bytes released to OS");
          pair(heap.metadataBytes, "Bytes in malloc metadata");
          const caches = (t: string) =>
            tcmallocStat(t, "Bytes in central cache freelist") +
            tcmallocStat(t, "Bytes in transfer cache freelist") +
            tcmallocStat(t, "Bytes in thread cache freelists");
          within(heap.pages?.cachedBytes, at("caches"), caches(b), caches(a));
          // resident and mapped describe the page heap; the metadata is apart, so resident ≤ mapped.
          expect(heap.residentBytes as number, at("resident ≤ mapped")).toBeLessThanOrEqual(heap.mappedBytes as number);
          const vas = (t: string) =>
            tcmallocStat(t, "Virtual address space used") - tcmallocStat(t, "Bytes in malloc metadata");
          within(heap.mappedBytes, at("mapped vs address space − metadata"), vas(b), vas(a));
        } else if (heap.committedBytes !== undefined) {
          within(
            heap.committedBytes,
            at("committed"),
            mimallocCommitted(before.printer),
            mimallocCommitted(after.printer),
          );
        }
      }
    }
  });

  it("a second allocator holding memory gets its own parts, named, and stays while it keeps resident pages", () => {
    const holding = checkpoints().find((c) => c.name === "second allocator holding 96 MiB") as Checkpoint;
    const freed = checkpoints().find((c) => c.name === "second allocator after freeing") as Checkpoint;
    if (which === "jemalloc") {
      // The addon's mallocx binds to the preloaded jemalloc: there is only one, and it holds the 96 MiB.
      expect(holding.standard.allocators.map((a) => a.allocator)).toEqual(["jemalloc"]);
      return;
    }
    for (const s of [holding.standard, holding.deep]) {
      const aside = s.allocators.find((a) => !a.servesMalloc);
      expect(aside?.allocator).toBe("jemalloc");
      expect(aside?.library).toBe(jemallocStaticAddon);
      const inUse = s.breakdown?.parts.find((p) => p.name === "other-in-use");
      expect(inUse).toEqual(expect.objectContaining({ allocator: "jemalloc", library: jemallocStaticAddon }));
      within(inUse?.bytes, "other-in-use vs the 96 MiB held", 96 * MiB, 96 * MiB + 2 * MiB);
      // It is measured: the remainder does not blame "another allocator" for it.
      const unattributed = s.findings?.find((f) => f.id === "high-unattributed");
      expect(unattributed?.message ?? "").not.toMatch(/another allocator/);
    }
    // Freed, its pages stay resident as dirty pages: still listed, with a free part.
    const aside = freed.standard.allocators.find((a) => !a.servesMalloc);
    expect(aside?.allocator).toBe("jemalloc");
    expect(aside?.pages?.dirtyBytes).toBeGreaterThan(16 * MiB);
    expect(part(freed.standard, "other-free")?.bytes).toBe(aside?.pages?.dirtyBytes);
  });

  it("no estimated native part exceeds what the kernel shows anonymous and resident", () => {
    for (const c of checkpoints()) {
      for (const s of [c.standard, c.deep]) {
        const anonParts = (s.breakdown?.parts ?? [])
          .filter((p) => p.allocator !== undefined || p.name === "v8-heap" || p.name === "lazy-free")
          .reduce((n, p) => n + p.bytes, 0);
        const anon = s.process?.rssAnonBytes as number;
        const estimated = (s.breakdown?.parts ?? []).filter((p) => p.estimated && p.allocator !== undefined);
        for (const p of estimated) expect(p.bytes, `${c.name} ${p.name}`).toBeLessThanOrEqual(anon);
        if (estimated.length > 0 && anonParts > anon) {
          // Only measured parts (which may count untouched pages) may take the sum past RssAnon.
          expect(
            estimated.every((p) => p.bytes === 0 || p.source.includes("capped")),
            c.name,
          ).toBe(true);
        }
      }
    }
  });

  if (which !== "mimalloc") {
    it("|unattributed| ≤ max(4 MiB, 3 % of RSS), and what the kernel saw move during the reading, in every single-isolate checkpoint", () => {
      for (const c of checkpoints()) {
        if (c.multiIsolate) continue;
        // glibc's free memory is measured in the deep tier; jemalloc and tcmalloc count theirs in every tier.
        for (const [s, before, after] of judged(c)) {
          if (which === "glibc" && s.tier !== "deep") continue;
          const b = s.breakdown;
          // A reading takes the allocator's figures, then the kernel's milliseconds later: what the
          // process gave back or took in between (jemalloc purging pages it counted dirty; 2 to 5 MiB
          // was seen) is in neither's view of the other. The kernel's readings just before and just
          // after the reading say how much that was.
          const moved = Math.max(
            Math.abs(before.kernel.rss - after.kernel.rss),
            Math.abs(before.kernel.anonymous - after.kernel.anonymous),
          );
          const bound = Math.max(4 * MiB, 0.03 * (s.process?.rssBytes ?? 0)) + moved;
          expect(
            Math.abs(b?.unattributedBytes ?? Number.NaN),
            `${c.name} ${s.tier} (the kernel saw ${moved} bytes move): ${JSON.stringify(b?.parts.map((p) => [p.name, p.bytes]))}`,
          ).toBeLessThanOrEqual(bound);
        }
      }
    });
  }

  it("no warning that the independent figures contradict", () => {
    const unchecked: string[] = [];
    for (const c of checkpoints()) {
      for (const s of [c.standard, c.deep]) {
        for (const f of (s.findings ?? []).filter((x: Finding) => x.severity === "warn")) {
          const at = `${c.name} ${s.tier}: ${f.id}`;
          switch (f.id) {
            case "glibc-releasable-now":
            case "glibc-main-arena-fragmentation":
            case "glibc-arena-pile-up":
            case "glibc-thread-arena-high-water":
            case "glibc-retains-freed-memory":
            case "glibc-free-fragmented": {
              const truth = Math.max(
                ...judged(c).flatMap(([, b, a]) => [independentGlibcFree(b), independentGlibcFree(a)]),
              );
              const e = f.evidence as unknown as Partial<Record<string, number | string>>;
              const claimed = (e.releasableBytes ??
                e.fragmentedBytes ??
                e.freeResidentBytes ??
                e.mainArenaFragmentedBytes ??
                e.threadArenasFreeResidentBytes) as number;
              expect(claimed, at).toEqual(expect.any(Number));
              // It claims no more free resident memory than there is, and enough to be worth a warning.
              expect(claimed, at).toBeLessThanOrEqual(truth + tolerance(truth));
              expect(truth, at).toBeGreaterThanOrEqual(64 * MiB);
              expect(f.evidence.asOf, at).toBeUndefined();
              break;
            }
            case "jemalloc-partly-used-slabs": {
              // jemalloc's own printer: stats.active − stats.allocated, around the reading.
              const slack = judged(c).flatMap(([, b, a]) =>
                [b, a].map((i) => {
                  const j = jemallocStats(i.printer).stats;
                  return (j.active as number) - (j.allocated as number);
                }),
              );
              within(f.evidence.slackBytes as number, at, Math.min(...slack), Math.max(...slack));
              expect(Math.min(...slack), at).toBeGreaterThanOrEqual(64 * MiB);
              break;
            }
            case "tcmalloc-free-pages-kept": {
              // tcmalloc's own printer: "Bytes in page heap freelist" (free, mapped), around the reading.
              const free = judged(c).flatMap(([, b, a]) =>
                [b, a].map((i) => tcmallocStat(i.printer, "Bytes in page heap freelist")),
              );
              within(f.evidence.pageheapFreeBytes as number, at, Math.min(...free), Math.max(...free));
              expect(Math.min(...free), at).toBeGreaterThanOrEqual(64 * MiB);
              break;
            }
            case "mimalloc-free-pages-kept": {
              // No printer of mimalloc 2.0 counts its free memory (the remedies suite applies the
              // remedy to measure it); what it claims is held under what mimalloc's own printer
              // says it has committed and what the kernel shows anonymous and resident, around the reading.
              const kept = f.evidence.keptBytes as number;
              for (const [, b, a] of judged(c))
                for (const i of [b, a]) {
                  expect(kept, at).toBeLessThanOrEqual(mimallocCommitted(i.printer));
                  expect(kept, at).toBeLessThanOrEqual(i.kernel.anonymous);
                }
              expect(kept, at).toBeGreaterThanOrEqual(64 * MiB);
              break;
            }
            default:
              unchecked.push(`${at}: ${f.message}`);
          }
        }
      }
    }
    expect(unchecked, "warnings this suite has no independent check for").toEqual([]);
  });
});
