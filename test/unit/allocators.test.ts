/** The policy over raw readings: which instances are reported, which is the heap, page conversion. */
import { describe, expect, it } from "vitest";
import type { NativeReadInstance, NativeReading } from "../../lib/core/addon/native";
import { allocatorsFromReading } from "../../lib/core/allocators/index";
import { buildBreakdown } from "../../lib/core/model/breakdown";
import type { AllocatorState, Warning } from "../../lib/core/model/types";
import { MiB } from "../helpers";

const libc = "/lib/x86_64-linux-gnu/libc.so.6";
const addon = "/srv/app/node_modules/x/build/Release/x.node";

function glibc(servesMalloc: boolean): NativeReadInstance {
  return {
    allocator: "glibc",
    library: libc,
    symbol: "gnu_get_libc_version",
    servesMalloc,
    values: {
      gnu_get_libc_version: "2.36",
      function: "mallinfo2",
      arena: 3031040,
      hblkhd: 135168,
      uordblks: 2553760,
      fordblks: 477280,
      keepcost: 132080,
    },
    errors: {},
  };
}

function jemalloc(
  values: NativeReadInstance["values"],
  errors: Record<string, number> = {},
  servesMalloc = false,
): NativeReadInstance {
  return {
    allocator: "jemalloc",
    library: addon,
    symbol: "mallctl",
    servesMalloc,
    values: { "arenas.page": 4096, ...values },
    errors,
  };
}

function reading(instances: NativeReadInstance[], mallocOwner: string | null = libc): NativeReading {
  return { mainProgramDefinesMalloc: false, instances, ...(mallocOwner ? { mallocOwner } : {}) };
}

function run(r: NativeReading) {
  const warnings: Warning[] = [];
  return { ...allocatorsFromReading(r, warnings), warnings };
}

describe("the linked-but-unused collapse", () => {
  it("drops a dormant jemalloc whose only bytes are the reading thread's tcache (5.3: 28672/32768)", () => {
    const dormant = jemalloc({
      "stats.allocated": 28672,
      "stats.active": 32768,
      "stats.arenas.4096.internal": 28672,
      "stats.arenas.4096.tcache_bytes": 0,
      "stats.arenas.4096.pactive": 8,
    });
    const out = run(reading([glibc(true), dormant]));
    expect(out.heap?.allocator).toBe("glibc");
    expect(out.allocators.map((a) => a.allocator)).toEqual(["glibc"]);
    expect(out.warnings).toEqual([]);
  });

  it("drops the 0/0 shape (tcache off)", () => {
    const out = run(reading([glibc(true), jemalloc({ "stats.allocated": 0, "stats.active": 0 })]));
    expect(out.allocators.map((a) => a.allocator)).toEqual(["glibc"]);
  });

  it("keeps a jemalloc that holds application bytes, beside the heap", () => {
    const out = run(
      reading([
        glibc(true),
        jemalloc({
          "stats.allocated": 8417280,
          "stats.active": 8421376,
          "stats.arenas.4096.internal": 28672,
          "stats.arenas.4096.tcache_bytes": 0,
        }),
      ]),
    );
    expect(out.heap?.allocator).toBe("glibc");
    expect(out.allocators.map((a) => [a.allocator, a.servesMalloc])).toEqual([
      ["glibc", true],
      ["jemalloc", false],
    ]);
    expect(out.allocators[1]?.allocatedBytes).toBe(8417280);
  });

  it("keeps a stats-less jemalloc it cannot judge, says so, and prints no byte counts", () => {
    const out = run(
      reading([
        glibc(true),
        jemalloc(
          { "stats.arenas.4096.pactive": 8, "stats.arenas.4096.pdirty": 0 },
          { "stats.allocated": 2, "stats.active": 2 },
        ),
      ]),
    );
    const je = out.allocators[1];
    expect(je?.allocator).toBe("jemalloc");
    expect(je?.allocatedBytes).toBeUndefined();
    expect(je?.pages).toEqual({ dirtyBytes: 0 });
    expect(je?.activeBytes).toBeUndefined();
    expect(je?.raw?.["stats.arenas.4096.pactive"]).toBe(8);
    expect(out.warnings.map((w) => w.code).sort()).toEqual(["JEMALLOC_STATS_DISABLED", "JEMALLOC_UNUSED_UNKNOWN"]);
  });

  it("keeps a stats-less jemalloc that keeps freed pages resident: it holds memory, whatever else it cannot say", () => {
    const out = run(
      reading([
        glibc(true),
        jemalloc(
          { "stats.arenas.4096.pactive": 8, "stats.arenas.4096.pdirty": 1281 },
          { "stats.allocated": 2, "stats.active": 2 },
        ),
      ]),
    );
    expect(out.allocators[1]?.pages).toEqual({ dirtyBytes: 1281 * 4096 });
    expect(out.warnings.map((w) => w.code)).toEqual(["JEMALLOC_STATS_DISABLED"]);
  });

  it("keeps a jemalloc aside that has freed everything but keeps its dirty pages; drops it once purged", () => {
    const boot = { "stats.arenas.4096.internal": 28672, "stats.arenas.4096.tcache_bytes": 0 };
    const freed = run(
      reading([
        glibc(true),
        jemalloc({ "stats.allocated": 28672, "stats.active": 32768, ...boot, "stats.arenas.4096.pdirty": 10_000 }),
      ]),
    );
    expect(freed.allocators.map((a) => a.allocator)).toEqual(["glibc", "jemalloc"]);
    const purged = run(
      reading([
        glibc(true),
        jemalloc({ "stats.allocated": 28672, "stats.active": 32768, ...boot, "stats.arenas.4096.pdirty": 0 }),
      ]),
    );
    expect(purged.allocators.map((a) => a.allocator)).toEqual(["glibc"]);
  });

  it("never reports glibc's counters when libc does not serve malloc", () => {
    const preloaded = jemalloc({ "stats.allocated": 5000000, "stats.active": 6000000 }, {}, true);
    const out = run(reading([preloaded, glibc(false)], preloaded.library));
    expect(out.heap?.allocator).toBe("jemalloc");
    expect(out.allocators.map((a) => a.allocator)).toEqual(["jemalloc"]);
  });
});

describe("the heap", () => {
  it("is absent with a reason when no object defines malloc", () => {
    const out = run(reading([glibc(false)], null));
    expect(out.heap).toBeUndefined();
    expect(out.warnings.map((w) => w.code)).toEqual(["MALLOC_OWNER_UNKNOWN"]);
  });

  it("is absent with a reason when malloc comes from an allocator heapstate cannot read", () => {
    const out = run(reading([glibc(false)], "/opt/lib/libhoard.so"));
    expect(out.heap).toBeUndefined();
    expect(out.warnings).toEqual([
      expect.objectContaining({ code: "ALLOCATOR_UNSUPPORTED", message: expect.stringContaining("libhoard.so") }),
    ]);
  });
});

describe("counters → AllocatorState", () => {
  it("glibc: allocated = uordblks + hblkhd, mapped = arena + hblkhd, free = fordblks, top = keepcost", () => {
    const heap = run(reading([glibc(true)])).heap;
    expect(heap).toMatchObject({
      allocatedBytes: 2553760 + 135168,
      mappedBytes: 3031040 + 135168,
      pages: { freeBytes: 477280, topReleasableBytes: 132080 },
      version: "2.36",
    });
    expect(heap?.arenas).toBeUndefined(); // only malloc_info (deep tier) counts arenas
  });

  it("a sum with a missing term is absent, not partial", () => {
    const g = glibc(true);
    delete g.values.hblkhd;
    const heap = run(reading([g])).heap;
    expect(heap?.allocatedBytes).toBeUndefined();
    expect(heap?.mappedBytes).toBeUndefined();
  });

  it("jemalloc pages are page counts × arenas.page; without the page size they are absent", () => {
    const je = jemalloc({ "stats.arenas.4096.pdirty": 10, "stats.arenas.4096.pmuzzy": 3 }, {}, true);
    expect(run(reading([je], je.library)).heap?.pages).toEqual({ dirtyBytes: 40960, muzzyBytes: 12288 });
    delete je.values["arenas.page"];
    expect(run(reading([je], je.library)).heap?.pages).toBeUndefined();
  });

  it("mimalloc: a commit figure that underflowed is left out, with a warning", () => {
    const mi: NativeReadInstance = {
      allocator: "mimalloc",
      library: "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
      symbol: "mi_process_info",
      servesMalloc: true,
      values: { mi_version: 209, current_commit: 18446744073668698000, peak_commit: 95461376 },
      errors: {},
    };
    const out = run(reading([mi], mi.library));
    expect(out.heap?.version).toBe("2.0.9");
    expect(out.heap?.committedBytes).toBeUndefined();
    expect(out.warnings.map((w) => w.code)).toEqual(["MIMALLOC_COUNTER_INVALID"]);
    // Sticky: the counter was wrong long before it wrapped, so a positive value later is not trusted.
    const later = run(reading([{ ...mi, values: { mi_version: 209, current_commit: 124_780_544 } }], mi.library));
    expect(later.heap?.committedBytes).toBeUndefined();
    expect(later.warnings.map((w) => w.code)).toEqual(["MIMALLOC_COUNTER_INVALID"]);
    expect(later.warnings[0]?.message).toMatch(/left out for the rest of the process's life/);
    // Another mimalloc in the process (another library) is judged on its own.
    const other = {
      ...mi,
      library: "/opt/app/libmimalloc-other.so",
      values: { mi_version: 209, current_commit: 1 << 20 },
    };
    expect(run(reading([other], other.library)).heap?.committedBytes).toBe(1 << 20);
  });

  it("mimalloc: the committed part never exceeds what the kernel shows anonymous and resident", () => {
    const mimalloc: AllocatorState = {
      allocator: "mimalloc",
      library: "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
      servesMalloc: true,
      committedBytes: 503 * MiB,
    };
    const b = buildBreakdown({
      self: true,
      allocators: [mimalloc],
      v8: { physicalBytes: 10 * MiB },
      process: {
        rssBytes: 300 * MiB,
        rssSource: "smaps_rollup",
        rssAnonBytes: 250 * MiB,
        rssFileBytes: 50 * MiB,
        rssShmemBytes: 0,
      },
    });
    const committed = b?.parts.find((p) => p.name === "native-committed");
    expect(committed?.bytes).toBe(240 * MiB);
    expect(committed?.source).toMatch(/capped at status RssAnon/);
    expect(b?.unattributedBytes).toBe(0);
  });
});
