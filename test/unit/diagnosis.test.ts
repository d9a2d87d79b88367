/** The pure parts of the diagnosis: the trend's line, the CPU files, MALLOC_ARENA_MAX, the leak finding. */
import { describe, expect, it } from "vitest";
import { glibcArenaLimit } from "../../lib/core/allocators/glibc";
import { findings, recommendedArenaMax } from "../../lib/core/judge/findings";
import { fitLine, fitTrend } from "../../lib/core/judge/trend";
import type { AllocatorState, ArenaGroup, Breakdown, FindingOf, Snapshot } from "../../lib/core/model/types";
import { withViews } from "../../lib/core/model/views";
import { parseCpuList, parseCpuQuota } from "../../lib/core/procfs/cgroup";

const MiB = 1024 * 1024;

describe("the trend of native-unclassified", () => {
  it("a straight line: its rate per hour and R² 1; a flat line: no growth", () => {
    const ts = Array.from({ length: 31 }, (_, i) => 1_700_000_000_000 + i * 1000);
    const up = fitLine(
      ts,
      ts.map((_, i) => 50 * MiB + i * MiB),
    );
    expect(up?.ratePerHourBytes).toBe(3600 * MiB);
    expect(up?.growthBytes).toBe(30 * MiB);
    expect(up?.r2).toBe(1);
    expect(up?.windowSeconds).toBe(30);
    const flat = fitLine(
      ts,
      ts.map((_, i) => 50 * MiB + (i % 2) * 4096),
    );
    expect(Math.abs(flat?.growthBytes as number)).toBeLessThan(64 * 1024);
    expect(fitLine([1, 2], [1, 2])).toBeUndefined();
    expect(fitLine([5, 5, 5], [1, 2, 3])).toBeUndefined();
  });
});

describe("the CPU files", () => {
  it("cpu.max, cfs_quota_us/cfs_period_us, and the online list", () => {
    expect(parseCpuQuota("max 100000\n")).toBeUndefined();
    expect(parseCpuQuota("50000 100000\n")).toBe(0.5);
    expect(parseCpuQuota("-1\n", "100000\n")).toBeUndefined();
    expect(parseCpuQuota("150000\n", "100000\n")).toBe(1.5);
    expect(parseCpuQuota("garbage")).toBeUndefined();
    expect(parseCpuList("0-3,8,10-11\n")).toBe(7);
    expect(parseCpuList("0\n")).toBe(1);
    expect(parseCpuList("3-1")).toBeUndefined();
    expect(parseCpuList("")).toBeUndefined();
  });
});

describe("glibc's arena limit and MALLOC_ARENA_MAX", () => {
  it("the tunable, then the variable, then 8 per online CPU", () => {
    expect(glibcArenaLimit({}, 4)).toEqual({ arenas: 32, source: "8 × 4 online CPUs (glibc's default)" });
    expect(glibcArenaLimit({ MALLOC_ARENA_MAX: "2" }, 4)).toEqual({ arenas: 2, source: "MALLOC_ARENA_MAX" });
    expect(
      glibcArenaLimit(
        { MALLOC_ARENA_MAX: "2", GLIBC_TUNABLES: "glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=3" },
        4,
      ),
    ).toEqual({ arenas: 3, source: "GLIBC_TUNABLES glibc.malloc.arena_max" });
    expect(glibcArenaLimit({}, undefined)).toBeUndefined();
  });

  it("two per CPU the quota allows, else per online CPU, at least 2", () => {
    expect(recommendedArenaMax(0.5, 64)).toBe(2);
    expect(recommendedArenaMax(1.5, 64)).toBe(4);
    expect(recommendedArenaMax(undefined, 8)).toBe(16);
    expect(recommendedArenaMax(undefined, undefined)).toBeUndefined();
  });
});

describe("the leak finding when a reading has no split of its own", () => {
  const ts = Array.from({ length: 31 }, (_, i) => Date.parse("2026-01-01T00:00:00.000Z") + i * 1000);
  const trend = fitTrend(
    ts,
    ts.map((_, i) => 50 * MiB + i * MiB),
  ) as NonNullable<ReturnType<typeof fitTrend>>;
  const at = (ms: number) =>
    ({ time: new Date((ts.at(-1) as number) + ms).toISOString(), pid: 1, tier: "standard" }) as Snapshot;
  const leak = (s: Snapshot, current: boolean) =>
    findings(s, undefined, { trend, trendCurrent: current }).find((f) => f.id === "native-unclassified-growing");

  it("a reading that split the heap says 'over the last', with no asOf", () => {
    const f = leak(at(0), true);
    expect(f?.severity).toBe("warn");
    expect(f?.message).toMatch(/grew steadily by 30\.0 MiB over the last 30 s \(31 readings/);
    expect(f?.evidence.to).toBe(trend.to);
    expect(f?.evidence.asOf).toBeUndefined();
  });

  it("one that did not keeps the finding for a minute after the line's last reading, and says up to when", () => {
    const f = leak(at(9_000), false);
    expect(f?.severity).toBe("warn");
    expect(f?.evidence.asOf).toBe(trend.to);
    expect(f?.message).toContain(`over 30 s up to ${trend.to}, 9 s before this reading`);
    expect(leak(at(60_000), false)).toBeDefined();
    expect(leak(at(61_000), false)).toBeUndefined();
    // A line whose last reading is after this one (a clock that went back) is not this reading's evidence.
    expect(leak(at(-5_000), false)).toBeUndefined();
  });
});

describe("the leak finding says how to have its code named, by the allocator serving malloc", () => {
  const ts = Array.from({ length: 31 }, (_, i) => Date.parse("2026-01-01T00:00:00.000Z") + i * 1000);
  const trend = fitTrend(
    ts,
    ts.map((_, i) => 50 * MiB + i * MiB),
  ) as NonNullable<ReturnType<typeof fitTrend>>;
  const message = (heap?: Partial<AllocatorState>) => {
    const s = {
      time: new Date(ts.at(-1) as number).toISOString(),
      pid: 1,
      tier: "standard",
      allocators: heap ? [{ library: "/x.so", servesMalloc: true, ...heap }] : [],
    } as unknown as Snapshot;
    return findings(s, undefined, { trend, trendCurrent: true }).find((f) => f.id === "native-unclassified-growing")
      ?.message;
  };

  it("the MALLOC_CONF line for jemalloc without its profile, the sites for jemalloc with it", () => {
    expect(message({ allocator: "jemalloc", config: {} })).toContain(
      "Restarted with MALLOC_CONF=prof:true,prof_active:false,lg_prof_sample:19",
    );
    expect(message({ allocator: "jemalloc", config: { prof: true } })).toMatch(
      /collect\(\{ tier: "deep", nativeSites: true \}\) .* names the code that allocated it from jemalloc's profile, on here/,
    );
  });

  it("TCMALLOC_SAMPLE_PARAMETER for tcmalloc; heapstate's sampler for glibc; a jemalloc with sampling preloaded for mimalloc", () => {
    expect(message({ allocator: "tcmalloc" })).toContain("Restarted with TCMALLOC_SAMPLE_PARAMETER=524288");
    expect(message({ allocator: "glibc" })).toContain("LD_PRELOAD=$(npx heapstate sampler-path)");
    expect(message({ allocator: "mimalloc" })).toContain(
      "LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=prof:true,lg_prof_sample:19",
    );
  });
});

describe("the leak finding clears when the growth stops", () => {
  const T0 = Date.parse("2026-01-01T00:00:00.000Z");
  /** The finding at each reading of a series sampled every `intervalMs` (the trend as collect() fits it). */
  function verdicts(values: number[], intervalMs: number, rss?: number[]) {
    const ts = values.map((_, i) => T0 + i * intervalMs);
    return values.map((_, i) => {
      const trend = fitTrend(ts.slice(0, i + 1), values.slice(0, i + 1), rss?.slice(0, i + 1));
      const s = { time: new Date(ts[i] as number).toISOString(), pid: 1, tier: "standard" } as Snapshot;
      return findings(s, undefined, { trend, trendCurrent: true }).find((f) => f.id === "native-unclassified-growing");
    });
  }
  /** A ramp of `rampReadings` readings growing `step` each, then flat for `flatReadings`. */
  const rampThenFlat = (rampReadings: number, flatReadings: number, step: number) =>
    Array.from({ length: rampReadings + flatReadings }, (_, i) => 50 * MiB + Math.min(i, rampReadings - 1) * step);

  for (const [label, intervalMs, rampReadings] of [
    ["a sampler every second, a 60 s warm-up", 1000, 61],
    ["a sampler every 5 s, a 600 s warm-up", 5000, 121],
    ["a sampler every minute, a 20 min warm-up", 60_000, 21],
  ] as const) {
    it(`${label}: warned during the ramp, cleared within 2 intervals + 60 s of the plateau`, () => {
      const flat = Math.ceil((2 * intervalMs + 60_000) / intervalMs) + 5;
      const v = verdicts(rampThenFlat(rampReadings, flat, 2 * MiB), intervalMs);
      expect(v[rampReadings - 1]?.severity).toBe("warn");
      const clearedBy = rampReadings - 1 + Math.floor((2 * intervalMs + 60_000) / intervalMs);
      for (let i = clearedBy; i < v.length; i++) expect(v[i], `reading ${i}`).toBeUndefined();
    });
  }

  it("a leak that goes on, with noisy readings, is warned at every reading once the line is long enough", () => {
    let x = 7;
    const noise = () => {
      x = (x * 48271) % 2147483647;
      return (x / 2147483647 - 0.5) * 1.2 * MiB;
    };
    const v = verdicts(
      Array.from({ length: 90 }, (_, i) => 50 * MiB + i * MiB + noise()),
      1000,
    );
    for (let i = 30; i < v.length; i++) expect(v[i]?.severity, `reading ${i}`).toBe("warn");
  });

  it("says its rate is of allocated bytes, and RSS's own rate over the same readings", () => {
    // Leaked blocks never written: allocated grows 1 MiB a reading, RSS a tenth of it.
    const values = Array.from({ length: 40 }, (_, i) => 50 * MiB + i * MiB);
    const rss = Array.from({ length: 40 }, (_, i) => 200 * MiB + i * 0.1 * MiB);
    const f = verdicts(values, 1000, rss).at(-1);
    expect(f?.evidence.rssRatePerHourBytes).toBe(360 * MiB);
    expect(f?.message).toMatch(
      /about 3\.5 GiB an hour \(allocated bytes; RSS grew about 360\.0 MiB an hour over the same readings: much of what is allocated has not been written/,
    );
  });
});

describe("glibc's thread arenas: the words match the figures, and followed advice is not given again", () => {
  const group = (over: Partial<ArenaGroup>): ArenaGroup => ({
    arenas: 1,
    systemBytes: 0,
    peakSystemBytes: 0,
    inUseBytes: 0,
    freeBytes: 0,
    residentBytes: 0,
    freeResidentBytes: 0,
    releasableBytes: 0,
    fragmentedBytes: 0,
    ...over,
  });
  /** A reading whose 4 thread arenas keep 100 MiB free, 96 MiB of it in their top chunks. */
  function reading(limit: { arenas: number; source: string }): Snapshot {
    const threads = group({
      arenas: 4,
      systemBytes: 110 * MiB,
      peakSystemBytes: 110 * MiB,
      inUseBytes: 10 * MiB,
      freeBytes: 100 * MiB,
      residentBytes: 110 * MiB,
      freeResidentBytes: 100 * MiB,
      releasableBytes: 2 * MiB,
      fragmentedBytes: 98 * MiB,
      topBytes: 96 * MiB,
    });
    const main = group({ systemBytes: 10 * MiB, inUseBytes: 10 * MiB, residentBytes: 10 * MiB });
    return withViews({
      schema: "heapstate/3",
      time: "2026-01-01T00:00:00.000Z",
      pid: 1,
      tier: "deep",
      costMicros: 1,
      identity: { hostname: "h" },
      warnings: [],
      cpu: { onlineCpus: 2 },
      process: { rssBytes: 200 * MiB },
      allocators: [
        {
          allocator: "glibc",
          library: "/lib/libc.so.6",
          servesMalloc: true,
          arenas: 5,
          arenaLimit: limit,
          arenaGroups: { main, threads },
        } as AllocatorState,
      ],
    } as Snapshot);
  }
  const breakdown: Breakdown = { unattributedBytes: 0, parts: [] };
  const glibc = (s: Snapshot) =>
    findings(s, breakdown, {}).filter((f) => f.id.startsWith("glibc-") && f.severity === "warn") as Array<
      FindingOf<"glibc-arena-pile-up"> | FindingOf<"glibc-thread-arena-high-water">
    >;

  it("top chunks are named as top chunks, not as pieces smaller than a page", () => {
    const [f] = glibc(reading({ arenas: 16, source: "8 × 2 online CPUs (glibc's default)" }));
    expect(f?.message).toContain(
      "(2.0 MiB in whole pages inside free chunks, 98.0 MiB in pieces smaller than a page and in the arenas' top chunks, which hold 96.0 MiB free)",
    );
    expect(f?.evidence.threadArenasTopBytes).toBe(96 * MiB);
  });

  it("MALLOC_ARENA_MAX=4 already set, near its limit: not advised again; the high-water verdict says it is in force", () => {
    for (const limit of [
      { arenas: 4, source: "MALLOC_ARENA_MAX" },
      { arenas: 4, source: "GLIBC_TUNABLES glibc.malloc.arena_max" },
      { arenas: 2, source: "MALLOC_ARENA_MAX" },
    ]) {
      const found = glibc(reading(limit));
      expect(found.map((f) => f.id)).toEqual(["glibc-thread-arena-high-water"]);
      expect(found[0]?.message).not.toMatch(/With MALLOC_ARENA_MAX/);
      expect(found[0]?.message).toMatch(/(MALLOC_ARENA_MAX|glibc\.malloc\.arena_max)=\d is in force already/);
    }
    // Glibc's default limit on 2 CPUs (16), reached: the pile-up verdict, advising 4.
    const pile = glibc(reading({ arenas: 5, source: "8 × 2 online CPUs (glibc's default)" }));
    expect(pile.map((f) => f.id)).toEqual(["glibc-arena-pile-up"]);
    // 4 arenas leave 3 thread arenas of the 4: up to a quarter of their 100 MiB, said as a
    // condition (peaks at different times), with what it is where the peaks come at once.
    expect(pile[0]?.message).toContain(
      "With MALLOC_ARENA_MAX=4 (two per CPU online) they would share 3 thread arenas, which returns up to about 25.0 MiB here where the threads' peaks come at different times",
    );
    expect(pile[0]?.message).toContain("and nothing where they hold their peaks at once");
    const first = pile[0];
    expect(first?.id === "glibc-arena-pile-up" ? first.evidence.fewerArenasReturnAtMostBytes : undefined).toBe(
      25 * MiB,
    );
    // A limit set above what is advised is not followed advice: 4 is advised.
    expect(glibc(reading({ arenas: 6, source: "MALLOC_ARENA_MAX" }))[0]?.message).toMatch(/With MALLOC_ARENA_MAX=4 /);
  });

  it("one threadpool thread fewer: the thread arenas' free memory over the pool's threads", () => {
    const s = reading({ arenas: 64, source: "8 × 8 online CPUs (glibc's default)" });
    const names = { "libuv-worker": 4 };
    const f = findings(
      { ...s, process: { rssBytes: 200 * MiB, threads: 12, threadNames: names } } as Snapshot,
      breakdown,
      {},
    ).find((x) => x.id === "glibc-thread-arena-high-water");
    expect(f?.message).toContain(
      "Each threadpool thread fewer (UV_THREADPOOL_SIZE) lowers the sum of the peaks by about 25.0 MiB here",
    );
    // The pool's size from the environment where Node does not name its threads; clamped as libuv does.
    const env = (v: string) =>
      findings(s, breakdown, { env: { UV_THREADPOOL_SIZE: v } }).find((x) => x.id === "glibc-thread-arena-high-water")
        ?.evidence.poolThreads;
    expect(env("2")).toBe(2);
    expect(env("0")).toBe(1);
    expect(env("4096")).toBe(1024);
    expect(env("lots")).toBe(4);
  });
});
