/**
 * The addon's numbers-only read (readNumbers), decoded into read()'s shape by readAllocators, held
 * to read() itself: under glibc and each preloaded allocator, for every kind of request, the same
 * instances, the same counters under the same names in the same order and of the same types, the
 * same texts, flags and errors, and numbers that agree (the two calls are made one after the
 * other, so a counter may move by what the process allocated between them; jemalloc's epoch moves
 * by exactly one: each call advanced it once).
 */
import { describe, expect, it } from "vitest";
import type { NativeReading } from "../../lib/core/addon/native";
import { inBeforeAll, jemallocStaticAddon, MiB, type PreloadName, requireLib, runChild } from "../helpers";

interface Output {
  pairs: Array<{ request: object; round: number; ours: NativeReading; theirs: NativeReading }>;
  small: number;
  smallContent: number[];
  array: string;
  float32: string;
  option: string;
  none: string;
  beforeLoad?: NativeReading;
  afterLoad?: NativeReading;
  again?: NativeReading;
  theirsAfterLoad?: NativeReading;
}

/** Counters that move on their own between two calls (time, the epoch): compared apart. */
const MOVING = new Set(["epoch", "elapsed_msecs", "user_msecs", "system_msecs", "page_faults"]);

/** jemalloc's byte counters that a purge moves. */
const PURGE_MOVES = new Set(["stats.retained", "stats.resident", "stats.mapped"]);

/** jemalloc's dirty and muzzy pages in a reading, in bytes: what a purge can move. */
function purgeableBytes(values: Record<string, unknown>): number {
  const page = Number(values["arenas.page"] ?? 4096);
  const pages = Number(values["stats.arenas.4096.pdirty"] ?? 0) + Number(values["stats.arenas.4096.pmuzzy"] ?? 0);
  return Number.isFinite(pages * page) ? pages * page : 0;
}

function expectSameReading(ours: NativeReading, theirs: NativeReading, label: string): void {
  expect(Object.keys(ours), label).toEqual(Object.keys(theirs));
  expect(ours.mallocOwner, label).toBe(theirs.mallocOwner);
  expect(ours.mainProgramDefinesMalloc, label).toBe(theirs.mainProgramDefinesMalloc);
  expect(ours.instances.length, label).toBe(theirs.instances.length);
  ours.instances.forEach((a, i) => {
    const b = theirs.instances[i] as (typeof theirs.instances)[number];
    const where = `${label} ${a.allocator} ${a.library}`;
    expect(Object.keys(a), where).toEqual(Object.keys(b));
    expect([a.allocator, a.library, a.symbol, a.servesMalloc], where).toEqual([
      b.allocator,
      b.library,
      b.symbol,
      b.servesMalloc,
    ]);
    expect(Object.keys(a.values), where).toEqual(Object.keys(b.values));
    expect(a.errors, where).toEqual(b.errors);
    for (const [name, v] of Object.entries(a.values)) {
      const w = b.values[name];
      expect(typeof v, `${where} ${name}`).toBe(typeof w);
      if (typeof v !== "number" || typeof w !== "number") {
        expect(v, `${where} ${name}`).toEqual(w);
      } else if (name === "epoch") {
        expect(w - v, `${where}: read() advanced the epoch once after readNumbers did`).toBe(1);
      } else if (!MOVING.has(name)) {
        // jemalloc's decay may purge between the two calls (another thread's allocations advance
        // it: V8's on Node 24): its dirty and muzzy pages of the first reading then move to
        // retained and out of resident and mapped (1.9 MB once).
        const purgeable = PURGE_MOVES.has(name) ? purgeableBytes(a.values) : 0;
        expect(Math.abs(v - w), `${where} ${name}: ${v} against ${w}`).toBeLessThanOrEqual(
          Math.max(MiB, w * 0.05) + purgeable,
        );
      }
    }
  });
}

for (const preload of [undefined, "jemalloc", "tcmalloc", "mimalloc"] as Array<PreloadName | undefined>) {
  describe(`readNumbers decoded, under ${preload ?? "glibc"}`, () => {
    const out = inBeforeAll(() =>
      runChild<Output>("native-read.cjs", [], preload ? { LD_PRELOAD: requireLib(preload) } : {}),
    );

    it("gives read()'s reading for every kind of request, first and later rounds", () => {
      expect(out().pairs).toHaveLength(9);
      for (const p of out().pairs) {
        expect(p.ours.instances.length).toBeGreaterThan(0);
        expectSameReading(p.ours, p.theirs, `${JSON.stringify(p.request)} round ${p.round}`);
      }
    });

    it("names the serving allocator's counters (the decoding is not empty)", () => {
      const first = out().pairs[0] as Output["pairs"][number];
      const serving = first.ours.instances.find((i) => i.servesMalloc);
      expect(serving?.allocator).toBe(preload ?? "glibc");
      expect(Object.keys(serving?.values ?? {}).length).toBeGreaterThanOrEqual(8);
    });

    it("writes nothing past a short buffer, says how much it needed, and refuses bad arguments", () => {
      const o = out();
      expect(o.small).toBeLessThan(-3);
      expect(o.smallContent).toHaveLength(2);
      expect(o.smallContent.every((v) => v !== -7)).toBe(true);
      expect(o.array).toMatch(/^TypeError: .*Float64Array/);
      expect(o.float32).toMatch(/Float64Array/);
      expect(o.option).toMatch(/^TypeError: .*'glibc' must be a boolean/);
      expect(o.none).toMatch(/^TypeError: .*Float64Array/);
    });
  });
}

describe("readNumbers decoded across a change of the loaded objects", () => {
  const out = inBeforeAll(() =>
    runChild<Output>("native-read.cjs", [], {
      GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=16384",
      HEAPSTATE_TEST_JEMALLOC_STATIC: jemallocStaticAddon,
    }),
  );

  it("sees the jemalloc an addon brought in, at once and at the next reading", () => {
    const o = out();
    const jemallocs = (r: NativeReading | undefined) =>
      (r?.instances ?? []).filter((i) => i.allocator === "jemalloc").map((i) => i.library);
    expect(jemallocs(o.beforeLoad)).toEqual([]);
    expect(jemallocs(o.afterLoad)).toEqual([jemallocStaticAddon]);
    expect(jemallocs(o.again)).toEqual([jemallocStaticAddon]);
    expectSameReading(o.again as NativeReading, o.theirsAfterLoad as NativeReading, "after the load");
  });
});
