import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseHeapProfile, parseHeapSample, unsampled } from "../../lib/core/allocators/heap-profile";
import { parseSnapshot } from "../../lib/core/model/parse";
import { demangle, fileMappings } from "../../lib/core/procfs/elf-symbols";
import { formatHuman } from "../../lib/faces/format";

describe("a heap_v2 profile", () => {
  const text = [
    "heap_v2/524288",
    "  t*: 3: 300 [0: 0]",
    "  t0: 3: 300 [0: 0]",
    "@ 0x10 0x20 0x30",
    "  t*: 2: 131072 [0: 0]",
    "  t0: 2: 131072 [0: 0]",
    "@ 0x11 0x21",
    "  t*: 0: 0 [0: 0]",
    "",
    "MAPPED_LIBRARIES:",
    "00400000-00500000 r-xp 00000000 fe:00 12 /usr/bin/node",
    "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ",
    "7f0000100000-7f0000200000 r-xp 00010000 fe:00 13 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (deleted)",
  ].join("\n");

  it("gives the period, each stack with its t* figures (stacks holding nothing dropped), and the file mappings", () => {
    const p = parseHeapProfile(text);
    expect(p.period).toBe(524288);
    expect(p.stacks).toEqual([{ addresses: [0x10, 0x20, 0x30], objects: 2, bytes: 131072 }]);
    expect(p.mappings.map((m) => m.path)).toEqual(["/usr/bin/node", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"]);
    expect(p.mappings[1]?.offset).toBe(0x10000);
  });

  it("is refused when it is not one", () => {
    expect(() => parseHeapProfile("heap profile: 1: 2 [3: 4] @ heapprofile")).toThrow(/heap_v2/);
  });

  it("unsamples as jeprof: by 1 / (1 − e^(−average size / period)); with every allocation sampled, as is", () => {
    const u = unsampled({ addresses: [], objects: 2, bytes: 131072 }, 524288);
    const scale = 1 / (1 - Math.exp(-65536 / 524288));
    expect(u.bytes).toBeCloseTo(131072 * scale, 6);
    expect(u.objects).toBeCloseTo(2 * scale, 6);
    expect(unsampled({ addresses: [], objects: 2, bytes: 100 }, 1)).toEqual({ objects: 2, bytes: 100 });
  });
});

describe("tcmalloc's heap sample (gperftools' GetHeapSample)", () => {
  const text = [
    "%warn an older gperftools' warning line",
    "heap profile:      3:   131172 [     3:   131172] @ heap_v2/524288",
    "     1:    65536 [     1:    65536] @ 0x7f0000100a70 0x10 0x20",
    "     1:    65536 [     1:    65536] @ 0x7f0000100a70 0x10 0x20",
    "     1:      100 [     1:      100] @ 0x7f0000100a70 0x11",
    "     0:        0 [     0:        0] @ 0x12",
    "",
    "MAPPED_LIBRARIES:",
    "00400000-00500000 r-xp 00000000 fe:00 12 /usr/bin/node",
    "7f0000100000-7f0000200000 r-xp 00010000 fe:00 13 /usr/lib/x86_64-linux-gnu/libtcmalloc.so.4.5.10",
  ].join("\n");

  it("gives the period, one stack per sample line (those holding nothing dropped), and the file mappings", () => {
    const p = parseHeapSample(text);
    expect(p.period).toBe(524288);
    expect(p.stacks).toEqual([
      { addresses: [0x7f0000100a70, 0x10, 0x20], objects: 1, bytes: 65536 },
      { addresses: [0x7f0000100a70, 0x10, 0x20], objects: 1, bytes: 65536 },
      { addresses: [0x7f0000100a70, 0x11], objects: 1, bytes: 100 },
    ]);
    expect(p.mappings.map((m) => m.path)).toEqual(["/usr/bin/node", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4.5.10"]);
  });

  it("says period 0 for a tcmalloc that samples nothing, and is refused when it is not one", () => {
    expect(parseHeapSample("heap profile:      0:        0 [     0:        0] @ heap_v2/0\n").period).toBe(0);
    expect(() => parseHeapSample("heap_v2/524288\n  t*: 1: 2 [0: 0]")).toThrow(/heap_v2/);
    expect(() => parseHeapSample("")).toThrow(/heap_v2/);
  });
});

describe("C++ names, as far as the sites need them", () => {
  it.each([
    [
      "_ZN4node12_GLOBAL__N_117CompressionStreamINS0_11ZlibContextEE12AllocForZlibEPvjj",
      "node::(anonymous namespace)::CompressionStream<…>::AllocForZlib",
    ],
    ["_ZN2v88internal8Malloced3NewEm", "v8::internal::Malloced::New"],
    ["_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<…>::push_back"],
    ["_ZN4node5StartEiPPc", "node::Start"],
    ["_ZN3FooC2Ev", "Foo::Foo"],
    ["_ZN3FooD1Ev", "Foo::~Foo"],
    ["_Z3barv", "bar"],
    ["deflateInit2_", "deflateInit2_"],
    ["_ZN3Foo", "_ZN3Foo"],
    ["_ZN99x", "_ZN99x"],
  ])("%s → %s", (mangled, plain) => {
    expect(demangle(mangled)).toBe(plain);
  });

  it("a maps line without a file is no file mapping", () => {
    expect(fileMappings("7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n")).toEqual([]);
  });
});

describe("nativeSites in a saved snapshot", () => {
  const base = () =>
    JSON.parse(
      JSON.stringify(
        parseSnapshot(readFileSync(join(__dirname, "..", "fixtures", "snapshots", "deep-jemalloc.json"), "utf8")),
      ),
    ) as Record<string, unknown>;
  const site = {
    bytes: 67108864,
    plusMinusBytes: 6000000,
    objects: 1024,
    samples: 120,
    owner: "addon",
    library: "sites.node",
    frames: [{ symbol: "sites_leak_site", library: "sites.node" }],
  };

  it("round-trips", () => {
    const s = base();
    s.nativeSites = {
      source: "jemalloc prof.dump",
      sampleIntervalBytes: 524288,
      estimatedBytes: 70000000,
      samples: 130,
      sites: [site],
      costMicros: 1000,
    };
    expect(JSON.parse(JSON.stringify(parseSnapshot(JSON.stringify(s)))).nativeSites).toEqual(s.nativeSites);
  });

  it("drops, and says so, a site whose frames are not words or whose owner is unknown", () => {
    const s = base();
    s.nativeSites = {
      source: "jemalloc prof.dump",
      sampleIntervalBytes: 524288,
      estimatedBytes: 1,
      samples: 1,
      sites: [site, { ...site, frames: [{ symbol: { toString: 1 } }] }, { ...site, owner: "root" }],
      costMicros: 1,
    };
    const parsed = parseSnapshot(JSON.stringify(s));
    expect(parsed.nativeSites?.sites).toHaveLength(1);
    expect(parsed.warnings.filter((w) => w.code === "INVALID_FIELD").length).toBeGreaterThanOrEqual(2);
  });
});

describe("nativeSites as text", () => {
  it("shows each site's estimate, ± and owner with its first frames, a saved file's names escaped", () => {
    const s = JSON.parse(
      JSON.stringify(
        parseSnapshot(readFileSync(join(__dirname, "..", "fixtures", "snapshots", "deep-jemalloc.json"), "utf8")),
      ),
    ) as Record<string, unknown>;
    s.nativeSites = {
      source: "jemalloc prof.dump",
      sampleIntervalBytes: 524288,
      estimatedBytes: 70000000,
      samples: 130,
      sites: [
        {
          bytes: 64 * 1048576,
          plusMinusBytes: 6 * 1048576,
          objects: 1024,
          samples: 120,
          owner: "addon",
          library: "sites.node",
          frames: [{ symbol: "leak\u001b]0;owned\u0007", library: "sites.node" }, { address: "0x10" }],
        },
      ],
      costMicros: 1,
    };
    const text = formatHuman(parseSnapshot(JSON.stringify(s)));
    expect(text).toContain("native heap by allocation site (jemalloc prof.dump, a sample per 512.0 KiB on average");
    expect(text).toMatch(/64\.0 MiB ± 6\.0 MiB {2}\(120 samples\) {2}addon sites\.node/);
    expect(text).toContain("0x10");
    expect(text).not.toContain("\u001b");
    expect(text).not.toContain("\u0007");
  });
});
