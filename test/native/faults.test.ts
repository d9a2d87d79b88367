/**
 * Faults that need a real process: files this user may not read (EACCES, as "nobody" against a
 * copied tree), and smaps of tens of thousands of mappings (bounded time, and memory that does
 * not grow with them).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, fixtures, requireRoot, root, runChild, scaled } from "../helpers";

describe("files that may not be read (EACCES)", () => {
  const dir = mkdtempSync(join(tmpdir(), "heapstate-eacces-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let cgPath = "";
  beforeAll(() => {
    cpSync(join(fixtures, "procfs", "v1-hybrid"), dir, { recursive: true });
    for (const part of ["dist", "package.json"]) cpSync(join(root, part), join(dir, "pkg", part), { recursive: true });
    cgPath = (
      /^\d+:memory:(.*)$/m.exec(readFileSync(join(dir, "proc", "4242", "cgroup"), "utf8")) as RegExpExecArray
    )[1] as string;
  });

  function asNobody(options: object): { code?: string; warnings?: string[]; rss?: number } {
    const script = `
      const h = require(${JSON.stringify(join(dir, "pkg", "dist", "index.js"))});
      try { const s = h.collect(${JSON.stringify(options)}); console.log(JSON.stringify({ warnings: s.warnings.map((w) => w.code), rss: s.process && s.process.rssBytes })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, name: e.name })); }`;
    const out = execFileSync(
      "setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script],
      {
        encoding: "utf8",
        maxBuffer: 256 << 20,
        env: childEnv({ HEAPSTATE_NO_NATIVE: "1" }),
        cwd: "/",
      },
    );
    return JSON.parse(out);
  }

  it("a process file: PROCESS_NOT_READABLE for another process", (ctx) => {
    requireRoot(ctx, "reading as another user");
    chmodSync(dir, 0o755);
    for (const d of ["proc", "proc/4242", "sys", "pkg"]) chmodSync(join(dir, d), 0o755);
    chmodSync(join(dir, "proc", "4242", "smaps_rollup"), 0o000);
    const r = asNobody({ pid: 4242, procRoot: join(dir, "proc"), fsRoot: dir });
    expect(r.code).toBe("PROCESS_NOT_READABLE");
    chmodSync(join(dir, "proc", "4242", "smaps_rollup"), 0o644);
  });

  it("a cgroup file: a CGROUP_UNREADABLE warning, and the rest stands", (ctx) => {
    requireRoot(ctx, "reading as another user");
    chmodSync(dir, 0o755);
    for (const d of ["proc", "proc/4242", "sys", "pkg"]) chmodSync(join(dir, d), 0o755);
    const file = join(dir, "sys/fs/cgroup/memory", cgPath, "memory.usage_in_bytes");
    chmodSync(file, 0o000);
    const r = asNobody({ pid: 4242, procRoot: join(dir, "proc"), fsRoot: dir, tier: "standard" });
    expect(r.warnings).toContain("CGROUP_UNREADABLE");
    expect(r.rss).toBeGreaterThan(0);
    chmodSync(file, 0o644);
  });
});

describe("smaps of tens of thousands of mappings", () => {
  let child: ChildProcess | undefined;
  afterAll(() => child?.stdin?.end());

  it("are read in bounded time within a JS heap far smaller than their text, and nothing is kept", async () => {
    const helper = join(fixtures, "native", "build", "floor");
    child = spawn(helper, ["maps", "40000"], { stdio: ["pipe", "pipe", "inherit"] });
    await new Promise((resolve, reject) => {
      child?.stdout?.once("data", resolve);
      child?.once("exit", (code) => reject(new Error(`${helper} exited with ${code}`)));
    });
    const pid = String(child.pid);
    const smapsBytes = readFileSync(`/proc/${pid}/smaps`).length;
    expect(smapsBytes).toBeGreaterThan(20_000_000);
    // The reading runs in a Node whose old space is capped at 12 MiB, well under the ≈ 30 MB of
    // text. A control shows the cap bites: reading the text whole and splitting it into lines,
    // as a non-streaming parser would, dies there.
    const cap = ["--max-old-space-size=12"];
    // (It aborts: `ulimit -c 0` keeps it from leaving a core file behind.)
    const script = `require("fs").readFileSync("/proc/${pid}/smaps", "utf8").split("\\n")`;
    const control = spawnSync(
      "/bin/sh",
      ["-c", 'ulimit -c 0; exec "$0" "$@"', process.execPath, ...cap, "-e", script],
      { encoding: "utf8", maxBuffer: 256 << 20, timeout: scaled(60_000) },
    );
    expect(control.status, control.stderr.slice(0, 300)).not.toBe(0);
    expect(control.stderr).toMatch(/heap out of memory|heap limit/);
    const out = runChild<{ count: number; kept: number; ms: number; warnings: string[] }>(
      "smaps-bounded.cjs",
      [pid],
      {},
      cap,
    );
    expect(out.count).toBeGreaterThanOrEqual(39_000);
    expect(out.ms).toBeLessThan(10_000);
    // What stays on the JS heap after a full GC: the summary only, not the mappings.
    expect(out.kept).toBeLessThan(1024 * 1024);
  });
});
