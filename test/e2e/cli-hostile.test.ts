/**
 * The CLI against what its surroundings do to it: a reader that closes the pipe, a full disk,
 * processes with no user memory (a kernel thread, a zombie), numbers that do not fit, intervals
 * Node would turn into a 1 ms loop, and HEAPSTATE_BINDING naming things that are not the addon.
 * Always the built bin in real processes: exit codes and stderr as a shell sees them.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, printerAddon, root, scaled } from "../helpers";

const bin = join(root, "bin", "heapstate.js");

function sh(script: string, env: Record<string, string | undefined> = {}) {
  const r = spawnSync("/bin/bash", ["-c", script], {
    env: childEnv({ HEAPSTATE: `${process.execPath} ${bin}`, ...env }),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(60_000),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: childEnv(env),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(30_000),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** kthreadd (pid 2) on a host or VM, else any process /proc shows as a kernel thread. */
function kernelThread(): { pid: number; name: string } | undefined {
  for (const entry of ["2", ...readdirSync("/proc").filter((e) => /^\d+$/.test(e))]) {
    let status: string;
    try {
      status = readFileSync(`/proc/${entry}/status`, "utf8");
    } catch {
      continue;
    }
    const name = /^Name:\s*(.*)$/m.exec(status)?.[1];
    if (name && /^Kthread:\s*1/m.test(status)) return { pid: Number(entry), name };
    if (name && /^PPid:\s*[02]$/m.test(status) && !/^VmSize:/m.test(status)) return { pid: Number(entry), name };
  }
  return undefined;
}

function expectOneLine(err: string, pattern: RegExp) {
  expect(err.trim().split("\n"), err).toHaveLength(1);
  expect(err.trimEnd()).toMatch(pattern);
  expect(err).not.toMatch(/\n\s+at /);
}

describe("where the output goes", () => {
  it("a reader that closes the pipe (| head -1): quietly, status 0", () => {
    const r = sh(`$HEAPSTATE --watch 0.2 --count 5 | head -1; echo "status=$\{PIPESTATUS[0]}" >&2`);
    expect(r.out.trim().split("\n")).toHaveLength(1);
    expect(r.err.trim()).toBe("status=0");
    const json = sh(`$HEAPSTATE --deep --json | head -c 10 > /dev/null; echo "status=$\{PIPESTATUS[0]}" >&2`);
    expect(json.err.trim()).toBe("status=0");
  });

  it("a full disk (> /dev/full): status 1 and one line, no stack", () => {
    const r = sh('$HEAPSTATE > /dev/full; echo "status=$?" >&2');
    const lines = r.err.trim().split("\n");
    expect(lines.at(-1)).toBe("status=1");
    expectOneLine(lines.slice(0, -1).join("\n"), /^heapstate: the output could not be written \(ENOSPC\)$/);
  });
});

describe("--pid of a process with no user memory", () => {
  let zombie: ChildProcess | undefined;
  afterAll(() => zombie?.kill("SIGKILL"));

  it("a kernel thread says so, not that it does not exist", (ctx) => {
    const kthread = kernelThread();
    if (kthread === undefined) {
      // Inside a pid namespace (a container) no kernel thread is visible.
      if (process.env.CI) throw new Error("no kernel thread is visible in /proc, and CI must run this test");
      ctx.skip();
      return;
    }
    const r = cli(["--pid", String(kthread.pid)]);
    expect(r.code).toBe(1);
    expectOneLine(
      r.err,
      new RegExp(
        `^heapstate: process ${kthread.pid} \\(${kthread.name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}\\) is a kernel thread: it has no user memory to show$`,
      ),
    );
  });

  it("a zombie says it is one", async () => {
    // A parent that never reaps its child: the child is a zombie until the parent dies.
    zombie = spawn("/bin/bash", ["-c", "sleep 0.01 & echo $!; exec -a zombie-parent sleep 60"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = await new Promise<number>((resolve) => {
      zombie?.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    });
    for (let i = 0; i < 100 && !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8")); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/^State:\s*Z/m);
    const r = cli(["--pid", String(pid)]);
    expect(r.code).toBe(1);
    expectOneLine(r.err, new RegExp(`^heapstate: process ${pid} \\(sleep\\) is a zombie: it has exited`));
  });
});

describe("numbers that do not fit", () => {
  it("--pid beyond any pid, hex or exponent: exit 2 naming --pid", () => {
    for (const v of ["99999999999999999999", "4194305", "0x10", "1e3", "0", "-1", "+5", "Infinity"]) {
      const r = cli([`--pid=${v}`]);
      expect(r.code, v).toBe(2);
      expectOneLine(r.err, /--pid takes a process id from 1 to 4194304/);
    }
  });

  it("--watch of 2³¹ ms or more, or not written in decimal: exit 2 naming --watch (it was a 1 ms loop)", () => {
    for (const v of ["3000000", "2147484", "0x10", "1e3", "Infinity", "NaN", "0", "0.05"]) {
      const r = cli([`--watch=${v}`, "--count", "2"]);
      expect(r.code, v).toBe(2);
      expectOneLine(r.err, /--watch takes a number of seconds from 0\.1 to 2147483, written in decimal/);
    }
    const r = cli(["--count", "0x2", "--watch", "0.1"]);
    expect(r.code).toBe(2);
    expectOneLine(r.err, /--count takes a whole number/);
  });
});

describe("HEAPSTATE_BINDING naming what is not the addon", () => {
  const dir = mkdtempSync(join(tmpdir(), "heapstate-binding-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, "evil.js");
  const fifo = join(dir, "fifo.node");
  beforeAll(() => {
    writeFileSync(script, "process.exit(42); // a module that must never be run as the addon\n");
    execFileSync("mkfifo", [fifo]);
  });

  it("show-host (text and --json) and hostInfo(): a warning naming the file, exit 0, never 3", () => {
    const cases: Array<[string, RegExp]> = [
      [printerAddon, /NATIVE_WRONG_SHAPE.*it is not heapstate's addon: it has no discover, read, trim, libc function/],
      ["/dev/zero", /NATIVE_NOT_LOADED.*\/dev\/zero could not be loaded .*not a regular file/],
      [fifo, /NATIVE_NOT_LOADED.*fifo\.node could not be loaded .*not a regular file/],
      [dir, /NATIVE_NOT_LOADED.*not a regular file/],
      [script, /NATIVE_NOT_LOADED.*evil\.js could not be loaded .*no ELF header/],
      ["/usr/lib/x86_64-linux-gnu/libc.so.6", /NATIVE_(NOT_LOADED|WRONG_SHAPE).*libc\.so\.6 could not be loaded/],
      [join(dir, "missing.node"), /NATIVE_NOT_LOADED.*missing\.node could not be loaded .*ENOENT/],
    ];
    for (const [file, pattern] of cases) {
      const text = cli(["--self", "--tier", "fast", "--width", "0"], { HEAPSTATE_BINDING: file });
      expect(text.code, `${file}: ${text.err}`).toBe(0);
      expect(text.out, file).toMatch(pattern);
      expect(text.out, file).toMatch(/heapstate addon +none for linux-x64/);
      const json = cli(["--self", "--json", "--tier", "fast"], { HEAPSTATE_BINDING: file });
      expect(json.code, file).toBe(0);
      const s = JSON.parse(json.out) as { host: { addon: { loaded: boolean; reason: string } }; warnings: unknown[] };
      expect(s.host.addon.loaded, file).toBe(false);
      expect(s.host.addon.reason, file).toContain(file.split("/").pop() as string);
      const host = spawnSync(
        process.execPath,
        [
          "-e",
          `const h=require(${JSON.stringify(join(root, "dist", "index.js"))}); console.log(JSON.stringify(h.hostInfo().addon))`,
        ],
        { env: childEnv({ HEAPSTATE_BINDING: file }), encoding: "utf8", maxBuffer: 256 << 20, timeout: scaled(30_000) },
      );
      expect(host.status, `${file}: ${host.stderr}`).toBe(0);
      expect((JSON.parse(host.stdout) as { loaded: boolean }).loaded, file).toBe(false);
    }
  }, 120_000);
});
