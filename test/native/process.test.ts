/**
 * The binding inside a real process: threads and workers, an allocator that is linked but unused,
 * the binding forced off or missing, argument checks, exported symbols, and both module systems.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../lib/core/model/types";
import {
  childEnv,
  inBeforeAll,
  jemallocStaticAddon,
  MiB,
  parseJson,
  printerAddon,
  requireLib,
  root,
  runChild,
} from "../helpers";

const binding = join(root, "build", "Release", "heapstate.node");

interface Summary {
  allocator?: string;
  allocated?: number;
  codes: string[];
}

describe("collect() and trim() from several worker threads and the main thread, while others allocate hard", () => {
  for (const preload of [undefined, "jemalloc", "tcmalloc", "mimalloc"] as const) {
    it(`${preload ?? "glibc"}: every reading names the heap, none fails; a terminated worker takes nothing down; exit with a sampler running`, () => {
      const out = runChild<{ main: Summary[]; fromWorkers: Summary[][]; exitCode: number; afterTerminate: Summary }>(
        "workers.cjs",
        [],
        preload ? { LD_PRELOAD: requireLib(preload) } : {},
      );
      const expected = preload ?? "glibc";
      const all = [...out.main, ...out.fromWorkers.flat(), out.afterTerminate];
      expect(out.fromWorkers).toHaveLength(4);
      expect(all).toHaveLength(100 + 4 * 100 + 1);
      // glibc's chunk walk reads heaps the churning workers split, grow and unmap while it reads:
      // it tries again, and now and then keeps the estimate and says so. Rarely, and never a failure.
      const incomplete = all.filter((s) => s.codes.includes("GLIBC_WALK_INCOMPLETE")).length;
      expect(incomplete).toBeLessThanOrEqual(all.length * 0.02);
      for (const s of all) {
        expect(s.allocator).toBe(expected);
        // mimalloc has no allocated counter; its commit figure may be withheld when it underflows.
        if (expected !== "mimalloc") expect(s.allocated).toBeGreaterThan(0);
        expect(s.codes.filter((c) => c !== "MIMALLOC_COUNTER_INVALID" && c !== "GLIBC_WALK_INCOMPLETE")).toEqual([]);
      }
      expect(out.exitCode).toBe(1); // terminate() resolves with 1 for a worker stopped mid-run
    });
  }
});

describe("a jemalloc linked into an addon but not serving malloc", () => {
  const out = inBeforeAll(() =>
    runChild<{
      discovered: Array<{ allocator: string; library: string; servesMalloc: boolean }>;
      dormant: Snapshot;
      holding: Snapshot;
      released: Snapshot;
    }>("jemalloc-static.cjs", [], {
      GLIBC_TUNABLES: "glibc.rtld.optional_static_tls=16384",
      HEAPSTATE_TEST_JEMALLOC_STATIC: jemallocStaticAddon,
      HEAPSTATE_TEST_BINDING: binding,
    }),
  );

  it("is found inside the RTLD_LOCAL addon", () => {
    expect(out().discovered).toContainEqual({
      allocator: "jemalloc",
      library: jemallocStaticAddon,
      symbol: "mallctl",
      servesMalloc: false,
    });
  });

  it("is collapsed while it holds nothing: heap stays glibc, allocators lists glibc only", () => {
    for (const s of [out().dormant, out().released]) {
      expect(s.heap?.allocator).toBe("glibc");
      expect(s.allocators.map((a) => a.allocator)).toEqual(["glibc"]);
    }
  });

  it("is reported beside the heap once it holds application bytes", () => {
    expect(out().holding.heap?.allocator).toBe("glibc");
    const je = out().holding.allocators.find((a) => a.allocator === "jemalloc");
    expect(je?.library).toBe(jemallocStaticAddon);
    expect(je?.servesMalloc).toBe(false);
    expect(je?.allocatedBytes).toBeGreaterThanOrEqual(16 * MiB);
  });
});

describe("without the binding", () => {
  it("forced off by HEAPSTATE_NO_NATIVE: no heap, a warning that says why, the rest stands", () => {
    const out = runChild<{ snapshot: Snapshot; trim: { actions: unknown[]; releasedBytes?: number } }>(
      "plain.cjs",
      [],
      {
        HEAPSTATE_NO_NATIVE: "1",
      },
    );
    expect(out.snapshot.heap).toBeUndefined();
    expect(out.snapshot.allocators).toEqual([]);
    expect(out.snapshot.warnings).toEqual([
      expect.objectContaining({
        source: "native",
        code: "NATIVE_DISABLED",
        message: expect.stringContaining("HEAPSTATE_NO_NATIVE"),
      }),
    ]);
    expect(out.snapshot.process?.rssBytes).toBeGreaterThan(0);
    expect(out.trim.actions).toEqual([]);
    expect(out.trim.releasedBytes).toEqual(expect.any(Number));
  });

  it("a file that is not a loadable addon (HEAPSTATE_BINDING): NATIVE_NOT_LOADED naming it, the rest stands", () => {
    const dir = mkdtempSync(join(tmpdir(), "heapstate-badbinding-"));
    const bad = join(dir, "heapstate.node");
    writeFileSync(bad, "this is not an ELF shared object\n");
    try {
      const out = runChild<{ snapshot: Snapshot }>("plain.cjs", [], { HEAPSTATE_BINDING: bad });
      expect(out.snapshot.heap).toBeUndefined();
      const w = out.snapshot.warnings.find((x) => x.source === "native");
      expect(w?.code).toBe("NATIVE_NOT_LOADED");
      expect(w?.message).toContain(bad);
      expect(out.snapshot.process?.rssBytes).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an addon of another shape (HEAPSTATE_BINDING): NATIVE_WRONG_SHAPE, the rest stands", () => {
    const out = runChild<{ snapshot: Snapshot }>("plain.cjs", [], { HEAPSTATE_BINDING: printerAddon });
    expect(out.snapshot.heap).toBeUndefined();
    expect(out.snapshot.warnings.map((x) => x.code)).toContain("NATIVE_WRONG_SHAPE");
    expect(out.snapshot.process?.rssBytes).toBeGreaterThan(0);
  });

  describe("laid out without a usable addon", () => {
    const copies: string[] = [];
    afterAll(() => {
      for (const c of copies) rmSync(c, { recursive: true, force: true });
    });
    /** A copy of the package as npm would install it, with `prebuilds` laid out by `layout`. */
    function installed(withLoader: boolean, layout?: (prebuilds: string) => void): string {
      const copy = mkdtempSync(join(tmpdir(), "heapstate-nobuild-"));
      copies.push(copy);
      const pkg = join(copy, "node_modules", "heapstate");
      cpSync(join(root, "dist"), join(pkg, "dist"), { recursive: true });
      cpSync(join(root, "package.json"), join(pkg, "package.json"));
      if (withLoader)
        cpSync(join(root, "node_modules", "node-gyp-build"), join(copy, "node_modules", "node-gyp-build"), {
          recursive: true,
        });
      if (layout) layout(join(pkg, "prebuilds"));
      return join(pkg, "dist", "index.js");
    }
    const prebuild = join(root, "prebuilds", "linux-x64", "heapstate.napi.glibc.node");

    it("never built (no build/, no prebuilds/): NATIVE_NOT_LOADED with the command that builds it", () => {
      const out = runChild<{ snapshot: Snapshot }>("plain.cjs", [], { HEAPSTATE_TEST_DIST: installed(true) });
      expect(out.snapshot.heap).toBeUndefined();
      const w = out.snapshot.warnings.find((x) => x.source === "native");
      expect(w?.code).toBe("NATIVE_NOT_LOADED");
      expect(w?.message).toMatch(/build[/]Release[/]heapstate\.node is missing/);
      expect(w?.message).toContain("npm run build:native");
      expect(out.snapshot.process?.rssBytes).toBeGreaterThan(0);
    });

    it("a package that carries another platform's prebuild only: the warning names this platform and that one", () => {
      expect(existsSync(prebuild), `${prebuild} (npm run build:prebuild makes it; npm test runs it)`).toBe(true);
      const dist = installed(true, (dir) => {
        mkdirSync(join(dir, "linux-arm64"), { recursive: true });
        cpSync(prebuild, join(dir, "linux-arm64", "heapstate.napi.glibc.node"));
      });
      const out = runChild<{ snapshot: Snapshot }>("plain.cjs", [], { HEAPSTATE_TEST_DIST: dist });
      expect(out.snapshot.heap).toBeUndefined();
      expect(out.snapshot.allocators).toEqual([]);
      const w = out.snapshot.warnings.find((x) => x.source === "native");
      expect(w?.code).toBe("NATIVE_UNSUPPORTED_PLATFORM");
      expect(w?.message).toContain(`no native addon for linux-${process.arch} (glibc)`);
      expect(w?.message).toContain("prebuilt addons for linux-arm64 (glibc) only");
      expect(out.snapshot.process?.rssBytes).toBeGreaterThan(0);
      expect(out.snapshot.v8?.heapUsedBytes).toBeGreaterThan(0);
    });

    it("the same package with this platform's prebuild loads it", () => {
      const dist = installed(true, (dir) => {
        mkdirSync(join(dir, `linux-${process.arch}`), { recursive: true });
        cpSync(prebuild, join(dir, `linux-${process.arch}`, "heapstate.napi.glibc.node"));
      });
      const out = runChild<{ snapshot: Snapshot }>("plain.cjs", [], { HEAPSTATE_TEST_DIST: dist });
      expect(out.snapshot.warnings.filter((x) => x.source === "native")).toEqual([]);
      expect(out.snapshot.heap?.allocator).toBe("glibc");
    });

    it("its loader (node-gyp-build) missing: NATIVE_NOT_LOADED saying so, the rest stands", () => {
      const out = runChild<{ snapshot: Snapshot }>("plain.cjs", [], { HEAPSTATE_TEST_DIST: installed(false) });
      expect(out.snapshot.heap).toBeUndefined();
      const w = out.snapshot.warnings.find((x) => x.source === "native");
      expect(w?.code).toBe("NATIVE_NOT_LOADED");
      expect(w?.message).toContain("node-gyp-build is missing");
      expect(out.snapshot.process?.rssBytes).toBeGreaterThan(0);
    });
  });
});

describe("the addon's surface", () => {
  it("exports its Node-API entry points and nothing else (no allocator symbol)", () => {
    const symbols = execFileSync("nm", ["-D", "--defined-only", binding], { encoding: "utf8", maxBuffer: 256 << 20 })
      .trim()
      .split("\n")
      .map((line) => line.split(/\s+/).pop());
    expect(symbols.sort()).toEqual(["napi_register_module_v1", "node_api_module_get_api_version_v1"]);
  });

  it("rejects wrong argument types with a TypeError and keeps working", () => {
    const script = `
      const b = require(${JSON.stringify(binding)});
      const errors = [];
      for (const call of [() => b.read("x"), () => b.read({ glibc: 1 }), () => b.read([]), () => b.trim({ glibc: "yes" }), () => b.read({ mallocInfo: null })]) {
        try { call(); errors.push("no error"); } catch (e) { errors.push(e.constructor.name + ": " + e.message); }
      }
      console.log(JSON.stringify({ errors, after: b.read().instances.length }));`;
    const out = parseJson(
      execFileSync(process.execPath, ["-e", script], { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20 }),
    ) as {
      errors: string[];
      after: number;
    };
    expect(out.errors).toHaveLength(5);
    for (const e of out.errors) expect(e).toMatch(/^TypeError: heapstate native: /);
    expect(out.errors[1]).toContain("'glibc' must be a boolean");
    expect(out.after).toBeGreaterThan(0);
  });

  it("hostInfo() reads the libc version without reading an allocator (jemalloc's epoch does not move)", () => {
    const script = `
      const h = require(${JSON.stringify(join(root, "dist", "index.js"))});
      const epoch = () => h.collect({ tier: "fast" }).heap.raw.epoch;
      const first = epoch();
      const libc = h.hostInfo().libc;
      const second = epoch();
      console.log(JSON.stringify({ first, second, libc }));`;
    const out = parseJson(
      execFileSync(process.execPath, ["-e", script], {
        env: childEnv({ LD_PRELOAD: requireLib("jemalloc") }),
        encoding: "utf8",
        maxBuffer: 256 << 20,
      }),
    ) as { first: number; second: number; libc: { family: string; version?: string } };
    expect(out.libc).toEqual({ family: "glibc", version: expect.stringMatching(/^2\.\d+$/) });
    // One epoch write per reading, none in between.
    expect(out.second).toBe(out.first + 1);
  });
});

describe("module systems", () => {
  const check = (args: string[]) =>
    parseJson(
      execFileSync(process.execPath, args, { cwd: root, env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20 }),
    ) as {
      allocator: string;
      same?: boolean;
    };

  it("require('heapstate') works", () => {
    const out = check([
      "-e",
      "console.log(JSON.stringify({ allocator: require('heapstate').collect().heap.allocator }))",
    ]);
    expect(out.allocator).toBe("glibc");
  });

  it("import 'heapstate' works and shares the CommonJS module's state", () => {
    const out = check([
      "--input-type=module",
      "-e",
      "import { collect, snapshot } from 'heapstate'; import { createRequire } from 'node:module'; const cjs = createRequire(process.cwd() + '/')('heapstate'); console.log(JSON.stringify({ allocator: collect().heap.allocator, same: cjs.snapshot === snapshot }))",
    ]);
    expect(out.allocator).toBe("glibc");
    expect(out.same).toBe(true);
  });
});
