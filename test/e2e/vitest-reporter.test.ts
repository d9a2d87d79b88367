/**
 * The Vitest reporter and setup file on a fixture project of three files (a ~100 MiB native leak,
 * an allocate-and-release, an idle one), run by the pinned Vitest (4) and by Vitest 3 (installed
 * from test/compat/vitest3's lock file), in forks and threads pools.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { FileRecord, KeyFigures, SidecarRun } from "../../lib/faces/sidecar";
import { HeapstateReporter } from "../../lib/faces/vitest/reporter";
import { childEnv, fixtures, glibcTotals, inBeforeAll, MiB, parseJson, root, runChild, scaled } from "../helpers";

const projects: string[] = [];
afterAll(() => {
  for (const p of projects) rmSync(p, { recursive: true, force: true });
});

/** A temporary project: the fixture files, heapstate as a consumer installs it, and one Vitest. */
function project(vitestDir: string, linked = false): string {
  expect(existsSync(join(vitestDir, "vitest.mjs")), `${vitestDir} (npm test installs it)`).toBe(true);
  const dir = mkdtempSync(join(tmpdir(), "heapstate-vitest-"));
  projects.push(dir);
  cpSync(join(fixtures, "vitest-project"), dir, { recursive: true });
  const pkg = join(dir, "node_modules", "heapstate");
  if (linked) {
    // As `npm link heapstate` or a workspace lays it out: a symbolic link to the checkout.
    mkdirSync(join(dir, "node_modules"), { recursive: true });
    symlinkSync(root, pkg, "dir");
  } else {
    // Laid out as npm installs it: the package's files (with the prebuilt addon) and its dependency.
    for (const part of ["dist", "bin", "prebuilds", "package.json"])
      cpSync(join(root, part), join(pkg, part), { recursive: true });
    cpSync(join(root, "node_modules", "node-gyp-build"), join(dir, "node_modules", "node-gyp-build"), {
      recursive: true,
    });
  }
  symlinkSync(vitestDir, join(dir, "node_modules", "vitest"), "dir");
  return dir;
}

function runVitest(dir: string, pool: string, options: object = {}, config: "two-entry" | "plugin" = "two-entry") {
  const r = spawnSync(process.execPath, [join(dir, "node_modules", "vitest", "vitest.mjs"), "run"], {
    cwd: dir,
    env: childEnv({
      HEAPSTATE_FIXTURE_POOL: pool,
      HEAPSTATE_REPORTER_OPTIONS: JSON.stringify(options),
      HEAPSTATE_FIXTURE_CONFIG: config,
      CI: "1",
    }),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(120_000),
  });
  const file = join(dir, (options as { outputFile?: string }).outputFile ?? ".vitest/heapstate/sidecar.json");
  const sidecar = existsSync(file) ? (parseJson(readFileSync(file, "utf8")) as SidecarRun) : undefined;
  return { code: r.status, out: `${r.stdout}${r.stderr}`, sidecar };
}

function byFile(run: SidecarRun | undefined, name: string) {
  const f = run?.files.find((x) => x.file === name);
  expect(f, `${name} in ${JSON.stringify(run?.files.map((x) => x.file))}`).toBeDefined();
  return f as SidecarRun["files"][number];
}

/** The rows of one summary table, file names in order. */
function tableOrder(out: string, title: string): string[] {
  const lines = out.split("\n");
  const start = lines.findIndex((l) => l.startsWith(title));
  const names: string[] = [];
  for (const line of lines.slice(start + 2)) {
    const m = /^ {2}(\S+\.test\.mjs) /.exec(line);
    if (!m) break;
    names.push(m[1] as string);
  }
  return names;
}

const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
const versions: Array<[string, string]> = [
  ["Vitest 4 (pinned)", join(root, "node_modules", "vitest")],
  ["Vitest 3", join(root, "test", "compat", "vitest3", "node_modules", "vitest")],
  // Vitest 5 needs Node 22.12 or later: the Node matrix runs it.
  ...(major > 22 || (major === 22 && minor >= 12)
    ? [["Vitest 5", join(root, "test", "compat", "vitest5", "node_modules", "vitest")] as [string, string]]
    : []),
];

describe.each(versions)("%s", (_label, vitestDir) => {
  const dir = inBeforeAll(() => project(vitestDir));
  const forks = inBeforeAll(() => runVitest(dir(), "forks"), 180_000);

  it("forks: the sidecar exists, parses, and the leaking file leads native-heap growth with about 100 MiB", () => {
    expect(forks().code, forks().out).toBe(0);
    const run = forks().sidecar;
    expect(run?.schema).toBe("heapstate-sidecar/1");
    expect(run?.runner.name).toBe("vitest");
    expect(run?.runner.pool).toBe("forks");
    expect(run?.files).toHaveLength(3);
    expect(run?.unmeasured).toEqual([]);
    const leak = byFile(run, "leak.test.mjs");
    // About 100 MiB: the rest of the worker may free a few MiB of its own meanwhile.
    expect(leak.growth.nativeHeapBytes).toBeGreaterThanOrEqual(85 * MiB);
    expect(leak.growth.nativeHeapBytes).toBeLessThanOrEqual(110 * MiB);
    expect(leak.growth.rssBytes).toBeGreaterThanOrEqual(85 * MiB);
    expect(byFile(run, "release.test.mjs").growth.nativeHeapBytes).toBeLessThan(8 * MiB);
    expect(byFile(run, "idle.test.mjs").growth.nativeHeapBytes).toBeLessThan(8 * MiB);
    expect(tableOrder(forks().out, "top by native heap growth:")[0]).toBe("leak.test.mjs");
    expect(tableOrder(forks().out, "top by RSS growth:")[0]).toBe("leak.test.mjs");
  });

  it("forks: each file has its own process, and the record says so", () => {
    const files = forks().sidecar?.files ?? [];
    expect(new Set(files.map((f) => f.pid)).size).toBe(3);
    for (const f of files) {
      expect(f.attribution).toBe("own-process");
      expect(f.pid).not.toBe(process.pid);
      expect(f.start.allocator).toBe("glibc");
      expect(f.durationMs).toBeGreaterThanOrEqual(0);
      expect(f.peakRssBytes).toBeGreaterThan(0);
      // The peak is the file's own: VmHWM was reset when it started.
      expect(f.peakSince).toBe(f.start.time);
    }
    // release.test.mjs touches 100 MiB and frees it before its stop reading: only the peak shows it.
    const release = byFile(forks().sidecar, "release.test.mjs");
    const top = Math.max(release.start.rssBytes ?? 0, release.end.rssBytes ?? 0);
    expect((release.peakRssBytes ?? 0) - top).toBeGreaterThanOrEqual(90 * MiB);
    expect(forks().out).not.toContain("(shared)");
  });

  it("the run records the main process's heap state and the host", () => {
    const run = forks().sidecar as SidecarRun;
    expect(run.main.schema).toBe("heapstate/3");
    expect(run.main.heap?.allocator).toBe("glibc");
    expect(run.host.kernel).toBeTruthy();
    expect(run.host.node).toBe(process.versions.node);
  });

  it("a 50 MiB native-heap budget fails the run, naming the file and the figure", () => {
    const r = runVitest(dir(), "forks", { budgets: { nativeHeapBytes: "50MiB" }, outputFile: "budget.json" });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /BUDGET EXCEEDED: leak\.test\.mjs grew the native heap by \d+\.\d MiB, over its budget of 50\.0 MiB/,
    );
    expect(r.sidecar?.violations.map((v) => [v.file, v.figure, v.enforced])).toEqual([
      ["leak.test.mjs", "nativeHeapBytes", true],
    ]);
  });

  it("threads: files share a process; the sidecar and the summary say so, and budgets do not blame", () => {
    const r = runVitest(dir(), "threads", { budgets: { nativeHeapBytes: "50MiB" }, outputFile: "threads.json" });
    expect(r.code, r.out).toBe(0);
    const files = r.sidecar?.files ?? [];
    expect(files).toHaveLength(3);
    for (const f of files) {
      expect(f.pid).toBe(files[0]?.pid);
      expect(f.attribution).toBe("shared-process");
      expect(f.sharedWith?.length).toBe(2);
    }
    expect(r.out).toContain("(shared) = the file shared its process with other files");
    expect(r.out).toMatch(/budget \(not enforced\): leak\.test\.mjs/);
  });

  it("a baseline: the files whose growth changed most are reported", () => {
    const r = runVitest(dir(), "forks", { baseline: ".vitest/heapstate/sidecar.json", outputFile: "second.json" });
    expect(r.code).toBe(0);
    expect(r.sidecar?.baseline?.changes.map((c) => c.file).sort()).toEqual([
      "idle.test.mjs",
      "leak.test.mjs",
      "release.test.mjs",
    ]);
    const leak = r.sidecar?.baseline?.changes.find((c) => c.file === "leak.test.mjs");
    expect(leak?.nativeHeapGrowthBefore).toBe(byFile(forks().sidecar, "leak.test.mjs").growth.nativeHeapBytes);
    expect(r.out).toMatch(/compared with .*sidecar\.json:/);
  });

  it("one line of config (the plugin): the same records, with the collections from --expose-gc in execArgv", () => {
    const r = runVitest(dir(), "forks", { outputFile: "plugin.json" }, "plugin");
    expect(r.code, r.out).toBe(0);
    expect(r.sidecar?.files).toHaveLength(3);
    expect(r.sidecar?.unmeasured).toEqual([]);
    for (const f of r.sidecar?.files ?? []) expect(f.gcVia, f.file).toBe("exposed");
    expect(byFile(r.sidecar, "leak.test.mjs").growth.nativeHeapBytes as number).toBeGreaterThanOrEqual(85 * MiB);
    // The two-entry form has no --expose-gc: it sets the flag at run time.
    for (const f of forks().sidecar?.files ?? []) expect(f.gcVia, f.file).toBe("flag");
  });

  it("linked (npm link, a workspace): both forms load the reporter and the setup file", () => {
    const linked = project(vitestDir, true);
    for (const config of ["two-entry", "plugin"] as const) {
      const r = runVitest(linked, "forks", {}, config);
      expect(r.code, `${config}: ${r.out}`).toBe(0);
      expect(r.sidecar?.files, config).toHaveLength(3);
    }
  });

  it("a threads pool with budgets: warned at the start of the run that they are not enforced", () => {
    const r = runVitest(dir(), "threads", { budgets: { nativeHeapBytes: "50MiB" }, outputFile: "warn.json" }, "plugin");
    expect(r.out).toMatch(/heapstate: the threads pool runs several test files in one process at once/);
  });
});

describe("a baseline that cannot be used", () => {
  it("missing, corrupt, foreign or with broken records: a line naming the file, never a TypeError", () => {
    const dir = mkdtempSync(join(tmpdir(), "heapstate-baseline-"));
    projects.push(dir);
    const record = (file: string, growth: unknown) => ({ file, pid: 1, threadId: 0, growth, start: {}, end: {} });
    const files: Array<[string, string, RegExp | undefined]> = [
      ["missing.json", "", /baseline not used: sidecar .*missing\.json: ENOENT/],
      ["corrupt.json", "{ not json", /baseline not used: sidecar .*corrupt\.json: .*JSON/],
      [
        "foreign.json",
        JSON.stringify({ schema: "heapstate/3", pid: 1 }),
        /baseline not used: .*foreign\.json: not a heapstate sidecar/,
      ],
      ["null.json", "null", /baseline not used: .*null\.json: not a heapstate sidecar/],
      [
        "records.json",
        JSON.stringify({
          schema: "heapstate-sidecar/1",
          files: [
            null,
            5,
            { file: 7 },
            record("a.test.mjs", null),
            record("b.test.mjs", { rssBytes: "x", nativeHeapBytes: 1024 }),
          ],
        }),
        undefined,
      ],
    ];
    for (const [name, content, problem] of files) {
      if (content) writeFileSync(join(dir, name), content);
      const printed: string[] = [];
      const reporter = new HeapstateReporter({
        baseline: name,
        outputFile: `out-${name}`,
        write: (t) => printed.push(t),
      });
      reporter.onInit({ config: { root: dir } });
      reporter.onTestRunEnd([
        {
          moduleId: join(dir, "b.test.mjs"),
          meta: () => ({ heapstate: record("b.test.mjs", { nativeHeapBytes: 4096 }) }),
        },
      ]);
      const text = printed.join("");
      if (problem) {
        expect(text, name).toMatch(problem);
        expect(reporter.lastRun?.baseline?.problem, name).toBeDefined();
      } else {
        // The usable record is compared; the broken ones are left out.
        expect(reporter.lastRun?.baseline?.problem).toBeUndefined();
        expect(reporter.lastRun?.baseline?.changes).toEqual([
          { file: "b.test.mjs", nativeHeapGrowthBefore: 1024, nativeHeapGrowthNow: 4096, change: 3072 },
        ]);
      }
    }
    expect(process.exitCode ?? 0).toBe(0);
  });
});

describe("the runner-neutral API (heapstate/sidecar)", () => {
  it("start/stop/buildRun/write give the same sidecar for a custom harness", () => {
    const dir = mkdtempSync(join(tmpdir(), "heapstate-sidecar-"));
    projects.push(dir);
    const out = runChild<{ path: string; summary: string }>("sidecar-neutral.cjs", [dir]);
    const run = parseJson(readFileSync(out.path, "utf8")) as SidecarRun;
    expect(run.runner.name).toBe("custom");
    expect(run.files.map((f) => f.file)).toEqual(["suite/grows.js", "suite/idle.js"]);
    expect(run.files[0]?.growth.nativeHeapBytes).toBeGreaterThanOrEqual(38 * MiB);
    // Both ran in one process, one after the other: not at the same time, so each owns its growth.
    expect(run.files.map((f) => f.attribution)).toEqual(["own-process", "own-process"]);
    expect(run.violations.map((v) => v.file)).toEqual(["suite/grows.js"]);
    expect(out.summary).toContain("BUDGET EXCEEDED: suite/grows.js grew the native heap");
  });

  it("start and stop read glibc afresh while its costly walk is backing off, so growth is not a stale 0", () => {
    const out = runChild<{
      walkMicros: number;
      reusedAsOf?: string;
      primedFigures: KeyFigures;
      reusedFigures: KeyFigures;
      statsAfterStart: string;
      statsBeforeStop: string;
      record: FileRecord;
    }>("sidecar-fresh.cjs");
    // The scene: the walk cost enough to back off, and a plain collect() did reuse its figures.
    expect(out.walkMicros).toBeGreaterThanOrEqual(1000);
    expect(out.reusedAsOf).toBeDefined();
    // A reused reading is an earlier moment's: its key figures carry no native-heap figure at all.
    expect(out.primedFigures.nativeHeapBytes).toBeGreaterThan(0);
    expect(out.reusedFigures).not.toHaveProperty("nativeHeapBytes");
    expect(out.reusedFigures.rssBytes).toBeGreaterThan(0);
    // glibc's own malloc_stats, printed just after start and just before stop, is the yardstick.
    const grewByGlibc = glibcTotals(out.statsBeforeStop).inUse - glibcTotals(out.statsAfterStart).inUse;
    // 64 MiB were malloc'd in between; glibc counts a few MiB less (it gave other chunks back).
    expect(grewByGlibc).toBeGreaterThanOrEqual(56 * MiB);
    const grew = out.record.growth.nativeHeapBytes;
    expect(grew).toBeDefined();
    // The sidecar's readings never confirm glibc's free memory from smaps, so nothing of theirs
    // lies on the heap between them and the printer.
    expect(Math.abs((grew ?? 0) - grewByGlibc)).toBeLessThanOrEqual(MiB);
  });
});
