/**
 * show-host's host view and process trees, on real processes, against the kernel's own files:
 * a C parent with four forked children sharing file pages and copy-on-write memory (the tree's Σ
 * PSS is the kernel's, RSS double-counts what they share, USS is each one's private memory); Node
 * children with and without a preloaded jemalloc (the table names each allocator); 200 processes
 * (the view's time, and no smaps read outside --deep, as strace sees it).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectTree } from "../../lib/core/read/host-tree";
import { hostProcesses } from "../../lib/core/read/host-view";
import {
  childEnv,
  fixtures,
  idleChild,
  requireLib,
  requireRoot,
  root,
  runInfo,
  scaled,
  worldReadableCli,
} from "../helpers";

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), "heapstate-hostview-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The kernel's word, read here: smaps_rollup's Rss, Pss and Private_* of a process, in bytes. */
function rollup(pid: number): { rss: number; pss: number; uss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1]) * 1024;
  return { rss: kb("Rss"), pss: kb("Pss"), uss: kb("Private_Clean") + kb("Private_Dirty") };
}

function cli(args: string[], env: Record<string, string> = {}) {
  // Another process on the host may have a command line of a megabyte (printed whole by --json
  // and --width 0): the buffer is not what fails.
  return spawnSync(process.execPath, [join(root, "bin", "heapstate.js"), ...args], {
    env: childEnv(env),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(120_000),
  });
}

describe("a process tree: a parent and four forked children sharing pages", () => {
  let parent: ChildProcess;
  let kids: number[] = [];
  beforeAll(async () => {
    const file = join(work, "shared.bin");
    writeFileSync(file, Buffer.alloc(32 * MiB, 7));
    parent = spawn(join(fixtures, "native", "build", "forktree"), [file, "32"], { stdio: ["pipe", "pipe", "inherit"] });
    const line = await new Promise<string>((resolve, reject) => {
      parent.stdout?.once("data", (d: Buffer) => resolve(d.toString()));
      parent.once("exit", (code) => reject(new Error(`forktree exited with ${code}`)));
    });
    kids = (JSON.parse(line) as { pids: number[] }).pids;
  });
  afterAll(() => parent?.stdin?.end());

  it("Σ PSS is the sum of the kernel's per-process PSS; Σ RSS counts the shared pages in each; USS is each one's private memory", () => {
    const tree = collectTree({ pid: parent.pid as number });
    const pids = [parent.pid as number, ...kids];
    expect(tree.processes.map((p) => p.pid).sort()).toEqual([...pids].sort());
    const kernel = pids.map(rollup);
    const sum = (k: "rss" | "pss" | "uss") => kernel.reduce((n, r) => n + r[k], 0);
    expect(Math.abs((tree.totals.pssBytes ?? 0) - sum("pss"))).toBeLessThanOrEqual(sum("pss") * 0.02);
    expect(Math.abs((tree.totals.rssBytes ?? 0) - sum("rss"))).toBeLessThanOrEqual(sum("rss") * 0.02);
    // What they share, counted in each process's RSS: the file's 32 MiB in two children (one
    // extra), the parent's untouched 16 MiB in five (four extra) and its written half in three
    // (two extra): at least 32 + 64 + 32 MiB more than Σ PSS.
    expect((tree.totals.rssBytes ?? 0) - (tree.totals.pssBytes ?? 0)).toBeGreaterThan(120 * MiB);
    for (const [k, pid] of pids.entries()) {
      const row = tree.processes.find((p) => p.pid === pid);
      const uss = kernel[k]?.uss ?? -1;
      expect(Math.abs((row?.ussBytes ?? 0) - uss), `uss of ${pid}`).toBeLessThanOrEqual(
        Math.max(uss * 0.02, 64 * 1024),
      );
    }
    // Children 3 and 4 wrote their own copy of half the parent's memory: 16 MiB each of their own.
    for (const pid of kids.slice(2))
      expect(tree.processes.find((p) => p.pid === pid)?.ussBytes).toBeGreaterThan(16 * MiB);
    for (const pid of kids.slice(0, 2))
      expect(tree.processes.find((p) => p.pid === pid)?.ussBytes).toBeLessThan(4 * MiB);
    const shares = Object.values(tree.pssShare).reduce((a, b) => a + b, 0);
    expect(shares).toBeGreaterThan(0.99);
    expect(shares).toBeLessThan(1.01);
    expect(tree.findings.map((f) => f.id)).toContain("tree-shared-pages");
  });

  it("--tree PID prints the rows with each one's share and the totals; --json gives the same as data", () => {
    const text = cli(["--tree", String(parent.pid), "--width", "0"]);
    expect(text.status, runInfo(text)).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^process tree of ${parent.pid} \\(5 processes, by rss\\)`, "m"));
    for (const pid of kids) expect(text.stdout).toMatch(new RegExp(`^ +${pid} +${parent.pid} .*%`, "m"));
    expect(text.stdout).toMatch(/Σ pss .* \(each shared page counted once/);
    expect(text.stdout).toContain("tree-shared-pages");
    const json = JSON.parse(cli(["--tree", String(parent.pid), "--json"]).stdout) as {
      schema: string;
      tree: { root: number; pssShare: Record<string, number>; findings: unknown[] };
      processes: Array<{ pid: number }>;
      host: object;
    };
    // The host view's shape, with the tree's own fields under `tree`.
    expect(json.schema).toBe("heapstate-host/1");
    expect(Object.keys(json).sort()).toEqual(["host", "processes", "schema", "tier", "time", "totals", "tree"]);
    expect(json.tree.root).toBe(parent.pid);
    expect(json.processes).toHaveLength(5);
    expect(Object.keys(json.tree.pssShare).sort()).toEqual(json.processes.map((p) => String(p.pid)).sort());
    const gone = cli(["--tree", "4194304"]);
    expect(gone.status).toBe(1);
    expect(gone.stderr.trim().split("\n")).toEqual(["heapstate: process 4194304 does not exist"]);
    expect(cli(["--tree", "1", "--pid", "1"]).status).toBe(2);
  });
});

describe("the host's Node processes", () => {
  let glibcA: ChildProcess;
  let glibcB: ChildProcess;
  let jemalloc: ChildProcess;
  beforeAll(async () => {
    [glibcA, glibcB, jemalloc] = await Promise.all([
      idleChild(),
      idleChild(),
      idleChild({ LD_PRELOAD: requireLib("jemalloc") }),
    ]);
  });
  afterAll(() => {
    for (const c of [glibcA, glibcB, jemalloc]) c?.kill();
  });

  it("names each one's allocator: glibc for two, jemalloc (preloaded) for the third", () => {
    const view = hostProcesses({ exclude: [process.pid] });
    const row = (c: ChildProcess) => view.processes.find((p) => p.pid === c.pid);
    expect(row(glibcA)?.allocator).toEqual({ name: "glibc", how: "libc" });
    expect(row(glibcB)?.allocator).toEqual({ name: "glibc", how: "libc" });
    expect(row(jemalloc)?.allocator).toEqual({ name: "jemalloc", how: "preloaded" });
    expect(row(glibcA)?.glibcArenas).toBeGreaterThanOrEqual(1);
    expect(row(jemalloc)?.glibcArenas).toBeUndefined();
    expect(view.processes.find((p) => p.pid === process.pid)).toBeUndefined();
    // Sorted by RSS, and the totals are the rows' sums.
    const rss = view.processes.map((p) => p.rssBytes ?? -1);
    expect(rss).toEqual([...rss].sort((a, b) => b - a));
    expect(view.totals.rssBytes).toBe(view.processes.reduce((n, p) => n + (p.rssBytes ?? 0), 0));
  });

  it("show-host lists them (not itself), with --json the same as data", () => {
    const text = cli(["--width", "0"]);
    expect(text.status, runInfo(text)).toBe(0);
    expect(text.stdout).toMatch(/^host$/m);
    expect(text.stdout).toMatch(/^node processes \(\d+, by rss; this CLI, process \d+, left out/m);
    expect(text.stdout).toMatch(new RegExp(`^ +${jemalloc.pid} .* jemalloc \\(p\\) `, "m"));
    expect(text.stdout).toMatch(/^ {2}sizes: K\/M\/G = KiB\/MiB\/GiB; \(p\) preloaded \(LD_PRELOAD\)$/m);
    expect(text.stdout).toMatch(new RegExp(`^ +${glibcA.pid} .* glibc `, "m"));
    const json = JSON.parse(cli(["--json"]).stdout) as {
      schema: string;
      host: { kernel: string };
      processes: Array<{ pid: number; command: string }>;
      totals: { rssBytes: number };
    };
    expect(json.schema).toBe("heapstate-host/1");
    expect(json.host.kernel).toBeTruthy();
    expect(json.processes.map((p) => p.pid)).toEqual(expect.arrayContaining([glibcA.pid, glibcB.pid, jemalloc.pid]));
    expect(json.processes.some((p) => p.command.includes("heapstate.js --json"))).toBe(false);
    const all = JSON.parse(cli(["--json", "--all", "--tier", "fast"]).stdout) as { processes: unknown[] };
    expect(all.processes.length).toBeGreaterThan(json.processes.length);
  });
});

describe("the host table fits 100 columns, whatever the command lines", () => {
  let long: ChildProcess;
  let workers: ChildProcess[] = [];
  beforeAll(async () => {
    // A command line of 1.2 MiB with a newline in it (another user's, on a shared host), and three
    // workers of one service told apart only by their last argument.
    const huge = Array.from({ length: 10 }, (_, i) => `--pad${i}=${"x".repeat(120_000)}`);
    long = spawn(process.execPath, [join(fixtures, "children", "idle.cjs"), "a\nfake row", ...huge], {
      env: childEnv(),
      stdio: ["ignore", "pipe", "inherit"],
    });
    workers = [1, 2, 3].map((n) =>
      spawn(
        process.execPath,
        [join(fixtures, "children", "idle.cjs"), "--port", "8080", "--log-level", "info", `--worker=${n}`],
        {
          env: childEnv(),
          stdio: ["ignore", "pipe", "inherit"],
        },
      ),
    );
    await Promise.all([long, ...workers].map((c) => new Promise((r) => c.stdout?.once("data", r))));
  });
  afterAll(() => {
    for (const c of [long, ...workers]) c.kill();
  });

  it("by default (not a terminal) every line is at most 100 columns, and the workers' rows differ by their tails", () => {
    const r = cli([]);
    expect(r.status, runInfo(r)).toBe(0);
    for (const line of r.stdout.split("\n")) expect([...line].length, line).toBeLessThanOrEqual(100);
    const rows = r.stdout.split("\n").filter((l) => workers.some((w) => new RegExp(`^ +${w.pid} `).test(l)));
    expect(rows).toHaveLength(3);
    for (const [i, w] of workers.entries()) {
      const row = rows.find((l) => new RegExp(`^ +${w.pid} `).test(l)) as string;
      expect(row).toMatch(/ node idle\.cjs /);
      expect(row.endsWith(`--worker=${i + 1}`), row).toBe(true);
    }
    // The newline is escaped, not a row of its own.
    expect(r.stdout).not.toMatch(/^fake row/m);
    const narrow = cli(["--width", "80"]);
    for (const line of narrow.stdout.split("\n")) expect([...line].length, line).toBeLessThanOrEqual(80);
  });

  it("as a user who may not read the others' smaps: the totals say permission denied, not the tier", (ctx) => {
    requireRoot(ctx, "reading the view as another user");
    const r = spawnSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, worldReadableCli()],
      { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20, timeout: scaled(60_000) },
    );
    expect(r.status, runInfo(r)).toBe(0);
    expect(r.stdout).toMatch(/^ {2}Σ pss \(permission denied: run as the processes' user or as root\)$/m);
    expect(r.stdout).toMatch(/^ {2}\? could not be read: smaps_rollup: EACCES/m);
    expect(r.stdout).not.toContain("not read in this tier");
  });

  it("--json keeps a command exact up to 4096 characters and marks the cut", () => {
    const json = JSON.parse(cli(["--json"]).stdout) as {
      processes: Array<{ pid: number; command: string; commandTruncated?: boolean }>;
    };
    const row = json.processes.find((p) => p.pid === long.pid);
    expect(row?.command).toHaveLength(4096);
    expect(row?.commandTruncated).toBe(true);
    expect(
      row?.command.startsWith(`${process.execPath} ${join(fixtures, "children", "idle.cjs")} a\nfake row --pad0=xxx`),
    ).toBe(true);
    const worker = json.processes.find((p) => p.pid === workers[0]?.pid);
    expect(worker?.commandTruncated).toBeUndefined();
    expect(worker?.command.endsWith("--worker=1")).toBe(true);
  });
});

describe("200 processes", () => {
  const fakes: ChildProcess[] = [];
  beforeAll(() => {
    // Copies of sleep named node: what the view reads of them is what it reads of Node (status,
    // smaps_rollup, maps, environ, cgroup), at a fraction of 200 real Node processes' memory.
    const node = join(work, "node");
    copyFileSync("/bin/sleep", node);
    for (let i = 0; i < 200; i++) fakes.push(spawn(node, ["600"], { stdio: "ignore" }));
  });
  afterAll(() => {
    for (const c of fakes) c.kill();
  });

  it("the host view lists them within 10 s (the bench measures it) and opens no smaps outside --deep", () => {
    const trace = join(work, "trace");
    const start = Date.now();
    const r = spawnSync(
      "strace",
      ["-f", "-qq", "-e", "trace=openat", "-o", trace, process.execPath, join(root, "bin", "heapstate.js"), "--json"],
      { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20, timeout: scaled(60_000) },
    );
    const took = Date.now() - start;
    expect(r.status, runInfo(r)).toBe(0);
    const listed = (JSON.parse(r.stdout) as { processes: Array<{ pid: number }> }).processes.map((p) => p.pid);
    for (const c of fakes) expect(listed).toContain(c.pid);
    expect(took).toBeLessThan(10_000);
    const opened = readFileSync(trace, "utf8");
    expect(opened).toMatch(/\/smaps_rollup"/);
    expect(opened).not.toMatch(/\/smaps"/);
    const deep = spawnSync(
      "strace",
      [
        "-f",
        "-qq",
        "-e",
        "trace=openat",
        "-o",
        trace,
        process.execPath,
        join(root, "bin", "heapstate.js"),
        "--deep",
        "--json",
      ],
      { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20, timeout: scaled(120_000) },
    );
    expect(deep.status, runInfo(deep)).toBe(0);
    expect(readFileSync(trace, "utf8")).toMatch(/\/smaps"/);
  }, 180_000);
});
