/**
 * The CLI as a user meets it: the built bin in real processes (a pseudo-terminal through tmux and
 * script where a terminal matters), plus main() in-process for the quick cases.
 */
import { type ChildProcess, execFileSync, spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { samplerPath } from "../../lib/core/addon/native";
import { parseSnapshot } from "../../lib/core/model/parse";
import type { Snapshot } from "../../lib/core/model/types";
import { main } from "../../lib/faces/cli";
import { childEnv, idleChild, inBeforeAll, parseJson, requireLib, requireRoot, root, scaled } from "../helpers";

const bin = join(root, "bin", "heapstate.js");

function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: childEnv(env),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(30_000),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function inProcess(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), isTTY: false, env: {} });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** A node child that is ready (exec'd) before it is read. */

function expectOneLineError(r: { code: number | null; err: string }, code: number, pattern: RegExp) {
  expect(r.code).toBe(code);
  expect(r.err.trim().split("\n")).toHaveLength(1);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/\n\s+at /);
}

describe("show-host --self: the CLI's own process", () => {
  const r = inBeforeAll(() => cli(["--self"]));

  it("prints the host, the allocator environment and the heap state, in that order", () => {
    expect(r().code).toBe(0);
    const order = ["host", "allocator environment (process", "heap state", "where the RSS is ("].map((h) =>
      r().out.indexOf(h),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(r().out).toContain(`  kernel                  ${release()}`);
    expect(r().out).toMatch(/^ {2}LD_PRELOAD +\(not set\)$/m);
    expect(r().out).toMatch(/^ {2}serves malloc +glibc 2\.\d+ \(\/.*libc\.so\.6\)$/m);
    expect(r().out).toMatch(/^ {2}memory +[\d.]+ GiB total, [\d.]+ GiB available$/m);
    expect(r().out).not.toContain("\x1b["); // not a terminal: no colour
  });

  it("--json is a snapshot with a host object", () => {
    const j = cli(["--self", "--json"]);
    expect(j.code).toBe(0);
    const parsed = parseJson(j.out) as {
      host: { kernel: string; allocatorEnvironment: object; libc: { family: string } };
    };
    const s = parseSnapshot(parsed);
    expect(s.heap?.allocator).toBe("glibc");
    expect(parsed.host.kernel).toBe(release());
    expect(parsed.host.libc.family).toBe("glibc");
    expect(parsed.host.allocatorEnvironment).toEqual({});
  });

  it("--deep --top 5 lists the regions and the top mappings, addresses only with --addresses", () => {
    const plain = cli(["--self", "--deep", "--top", "5"]);
    expect(plain.code).toBe(0);
    expect(plain.out).toContain("regions (smaps):");
    expect(plain.out).toContain("top 5 mappings by RSS");
    expect(plain.out).not.toMatch(/0x[0-9a-f]{6,}/);
    const detailed = cli(["--self", "--deep", "--top", "5", "--addresses"]);
    expect(detailed.out).toMatch(/0x[0-9a-f]{6,}-0x[0-9a-f]{6,}/);
    const json = parseJson(cli(["--self", "--json", "--top", "3"]).out) as {
      topRegions: object[];
      regions: Array<{ mappings?: unknown }>;
    };
    expect(json.topRegions).toHaveLength(3);
    expect(JSON.stringify(json)).not.toMatch(/"start":/);
    expect(json.regions.every((x) => x.mappings === undefined)).toBe(true);
  });
});

describe("show-host --pid", () => {
  let child: ChildProcess;
  beforeAll(async () => {
    child = await idleChild({ LD_PRELOAD: requireLib("jemalloc") });
  });
  afterAll(() => child.kill());

  it("of a process under an LD_PRELOAD jemalloc: shows the preload, says the allocator cannot be read, does not guess", () => {
    const r = cli(["--pid", String(child.pid), "--width", "0"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`allocator environment (process ${child.pid})`);
    expect(r.out).toMatch(new RegExp(`^ {2}LD_PRELOAD +${requireLib("jemalloc")}$`, "m"));
    expect(r.out).toMatch(
      /^ {2}serves malloc +\(unknown: the allocator lives inside that process and cannot be read from outside/m,
    );
    expect(r.out).toContain("heap: (unknown)");
    expect(r.out).not.toMatch(/jemalloc 5\./);
    expect(r.out).toMatch(/^rss +\d/m);
  });

  it("--json of it has no heap and a host object", () => {
    const s = parseJson(cli(["--pid", String(child.pid), "--json"]).out) as {
      heap?: unknown;
      pid: number;
      host: object;
    };
    expect(s.pid).toBe(child.pid);
    expect(s.heap).toBeUndefined();
    expect(s.host).toBeDefined();
  });

  it("--deep of a glibc process: its malloc arenas are a part, and the text says what loading heapstate there adds", async () => {
    const glibcChild = await idleChild();
    try {
      const s = parseJson(cli(["--pid", String(glibcChild.pid), "--deep", "--json"]).out) as Snapshot;
      const arenas = (s.regions ?? [])
        .filter((r) => r.category === "malloc-main-arena" || r.category === "malloc-arena")
        .reduce((n, r) => n + (r.rssBytes ?? 0), 0);
      expect(arenas).toBeGreaterThan(0);
      const part = s.breakdown?.parts.find((p) => p.name === "malloc-arenas");
      expect(part?.bytes).toBe(arenas);
      expect(part?.source).toMatch(/malloc arenas \(in use \+ free\)/);
      // What the kernel shows is attributed: the remainder is the anonymous memory it cannot name
      // (V8's heap, mmapped chunks), not the arenas, stacks and code beside it.
      const named = ["malloc-arenas", "stacks", "code"].map(
        (n) => s.breakdown?.parts.find((p) => p.name === n)?.bytes ?? 0,
      );
      expect(named.every((b) => b > 0)).toBe(true);
      const text = cli(["--pid", String(glibcChild.pid), "--deep", "--width", "0"]).out;
      expect(text).toMatch(
        /Loading heapstate in that process \(collect\(\), its \/debug\/memory, or its agent: NODE_OPTIONS="--require heapstate\/agent", which show-host then asks\) gives the rest/,
      );
    } finally {
      glibcChild.kill();
    }
  });

  it("a process that does not exist: one line, exit 1", () => {
    // 2²² is PID_MAX_LIMIT: no process can have it (pids stop at pid_max − 1).
    expectOneLineError(cli(["--pid", "4194304"]), 1, /^heapstate: process 4194304 does not exist/);
  });
});

describe("show-host --pid as an unprivileged user against a root-owned process", () => {
  const copy = mkdtempSync(join(tmpdir(), "heapstate-cli-"));
  let target: ChildProcess;
  beforeAll(async () => {
    // A world-readable copy of what the CLI needs, so the user "nobody" can run it.
    for (const part of ["dist", "bin", "package.json", "prebuilds", join("node_modules", "node-gyp-build")]) {
      cpSync(join(root, part), join(copy, part), { recursive: true });
    }
    chmodSync(copy, 0o755);
    target = await idleChild();
  });
  afterAll(() => {
    target.kill();
    rmSync(copy, { recursive: true, force: true });
  });

  it("one clear line on stderr and exit 1, no stack trace", (ctx) => {
    requireRoot(ctx, "the CLI as another user");
    const r = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        join(copy, "bin", "heapstate.js"),
        "--pid",
        String(target.pid),
      ],
      { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20, cwd: copy },
    );
    expectOneLineError(
      { code: r.status, err: r.stderr },
      1,
      new RegExp(`^heapstate: process ${target.pid} may not be read by this user`),
    );
  });
});

describe("diff", () => {
  const dir = mkdtempSync(join(tmpdir(), "heapstate-diff-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const snapshotFile = (name: string) =>
    parseJson(readFileSync(join(dir, name), "utf8")) as { process: { rssBytes: number } };

  it("compares two files written by --json", () => {
    writeFileSync(join(dir, "a.json"), cli(["--self", "--json"]).out);
    writeFileSync(join(dir, "b.json"), cli(["--self", "--json", "--deep"]).out);
    const r = cli(["diff", join(dir, "a.json"), join(dir, "b.json")]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^heapstate diff {2}pid \d+ → pid \d+ \(different processes\)/);
    // Who was read comes first: two processes, two tiers; whether any single figure such as RSS
    // moved between two processes is chance, so the rows checked are ones that must appear.
    expect(r.out).toMatch(/^what differs in what was read:\n {2}tier +standard → deep\n {2}pid +\d+ → \d+$/m);
    expect(r.out).toMatch(/^note: the tiers differ \(standard → deep\): the breakdown's parts and the regions/m);
    // Parts one side could not have are not compared: no regions, no "file" of two meanings.
    expect(r.out).not.toMatch(/regions\./);
    expect(r.out).not.toMatch(/breakdown\.file/);
    expect(r.out).not.toContain("(unknown) →");
    const j = parseJson(cli(["diff", "--json", join(dir, "a.json"), join(dir, "b.json")]).out) as {
      changes: { path: string; before?: number; after?: number }[];
    };
    const a = snapshotFile("a.json");
    const b = snapshotFile("b.json");
    expect(j.changes.find((c) => c.path === "process.rssBytes")).toEqual({
      path: "process.rssBytes",
      before: a.process.rssBytes,
      after: b.process.rssBytes,
      delta: b.process.rssBytes - a.process.rssBytes,
    });
  });

  it("shows exactly the figures that changed, with their signed difference", () => {
    const a = snapshotFile("a.json");
    a.process.rssBytes = 100 * 2 ** 20;
    writeFileSync(join(dir, "a100.json"), JSON.stringify(a));
    a.process.rssBytes = 103 * 2 ** 20;
    writeFileSync(join(dir, "a103.json"), JSON.stringify(a));
    const r = cli(["diff", join(dir, "a100.json"), join(dir, "a103.json")]);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^heapstate diff {2}pid \d+ {2}\S+ → \S+ {2}\(0\.0 s\)$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^ {2}process\.rssBytes +100\.0 MiB → +103\.0 MiB {2}\+3\.0 MiB$/),
      "top growers (this process's resident memory):",
      expect.stringMatching(/^ {2}process\.rssBytes +\+3\.0 MiB$/),
    ]);
    const same = cli(["diff", join(dir, "a100.json"), join(dir, "a100.json")]);
    expect(same.out.trimEnd().split("\n").slice(1)).toEqual(["  no byte figure changed"]);
  });

  it("a missing file or a non-snapshot: one line, exit 1; wrong arity: exit 2", () => {
    writeFileSync(join(dir, "not.json"), '{"hello": 1}');
    expectOneLineError(
      cli(["diff", join(dir, "a.json"), join(dir, "nope.json")]),
      1,
      /nope\.json: no such file \(ENOENT\)/,
    );
    expectOneLineError(
      cli(["diff", join(dir, "a.json"), join(dir, "not.json")]),
      1,
      /not\.json: parseSnapshot: not a heapstate snapshot/,
    );
    expectOneLineError(cli(["diff", join(dir, "a.json")]), 2, /needs two files/);
  });
});

describe("usage", () => {
  it("unknown flags and commands are named, exit 2", async () => {
    expectOneLineError(await inProcess(["--frobnicate"]), 2, /unknown option "--frobnicate"/);
    expectOneLineError(await inProcess(["show-host", "--pid"]), 2, /option --pid needs a value/);
    expectOneLineError(await inProcess(["--pid", "abc"]), 2, /--pid takes a process id/);
    expectOneLineError(
      await inProcess(["--tier", "huge"]),
      2,
      /--tier must be fast, standard or deep, received "huge"/,
    );
    expectOneLineError(await inProcess(["--top", "0"]), 2, /--top must be a whole number from 1 to 1000/);
    // A negative number is a wrong value, said as one; an option in its place is named.
    expectOneLineError(
      await inProcess(["--top", "-1"]),
      2,
      /--top must be a whole number from 1 to 1000, received "-1"/,
    );
    expectOneLineError(await inProcess(["--watch", "x"]), 2, /option --watch takes a number, received "x"/);
    expectOneLineError(
      await inProcess(["--self", "--top", "--json"]),
      2,
      /option --top needs a value, not the option "--json"/,
    );
    expectOneLineError(await inProcess(["--count", "3"]), 2, /--count goes with --watch/);
    expectOneLineError(await inProcess(["frobnicate"]), 2, /unknown command "frobnicate"/);
    expectOneLineError(await inProcess(["diff", "--frob", "a", "b"]), 2, /heapstate diff: unknown option "--frob"/);
  });

  it("--help for every command, --version", async () => {
    expect((await inProcess(["--help"])).out).toMatch(/^Usage: heapstate \[command\]/);
    for (const c of ["show-host", "diff", "trim", "sampler-path"]) {
      const r = await inProcess([c, "--help"]);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: heapstate ${c === "show-host" ? "[show-host]" : c}`);
      expect((await inProcess(["help", c])).out).toBe(r.out);
    }
    expect((await inProcess(["--version"])).out).toBe(
      JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version,
    );
  });

  it("sampler-path prints the glibc sampler's path: a file the dynamic loader preloads into a child", async () => {
    const r = await inProcess(["sampler-path"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(join(root, "build", "Release", "libheapstate-sampler.so"));
    const child = spawnSync(
      process.execPath,
      ["-e", "process.stdout.write(require('node:fs').readFileSync('/proc/self/maps', 'utf8'))"],
      {
        env: childEnv({ LD_PRELOAD: r.out }),
        encoding: "utf8",
      },
    );
    expect(child.stderr).toBe("");
    expect(child.stdout).toContain(r.out);
    expect((await inProcess(["sampler-path", "--json"])).code).toBe(2);
  });

  it("sampler-path says in one line where there is none: another platform, a package without it, a path LD_PRELOAD cannot carry", () => {
    const linux = { os: "linux" as const, arch: "x64", libc: "glibc" as const, label: "linux-x64 (glibc)" };
    const musl = samplerPath(root, { ...linux, libc: "musl", label: "linux-x64 (musl)" });
    expect(musl).toEqual({
      error: expect.stringContaining("in front of glibc's malloc, and this is linux-x64 (musl)"),
    });
    const empty = mkdtempSync(join(tmpdir(), "heapstate-no-sampler-"));
    expect(samplerPath(empty, linux)).toEqual({
      error: expect.stringContaining("has no sampler for linux-x64 (glibc)"),
    });
    const spaced = mkdtempSync(join(tmpdir(), "heapstate sampler "));
    mkdirSync(join(spaced, "prebuilds", "linux-x64"), { recursive: true });
    cpSync(
      join(root, "build", "Release", "libheapstate-sampler.so"),
      join(spaced, "prebuilds", "linux-x64", "libheapstate-sampler.so"),
    );
    expect(samplerPath(spaced, linux)).toEqual({ error: expect.stringContaining("which LD_PRELOAD cannot carry") });
    rmSync(empty, { recursive: true });
    rmSync(spaced, { recursive: true });
  });

  it("trim explains instead of pretending", async () => {
    const r = await inProcess(["trim"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("does not trim anything");
    expect(r.out).toContain('const { trim } = require("heapstate")');
  });
});

describe("--watch", () => {
  it("without a terminal: one line per reading with changes since the start", () => {
    const r = cli(["--self", "--watch", "0.2", "--count", "3", "--tier", "fast"]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT.*Z {2}rss [\d.]+ \w+/);
    expect(lines[0]).not.toContain("(");
    expect(lines[2]).toMatch(/rss [\d.]+ \w+ \((\+|-|±)/);
  });

  it("on a terminal: redraws in place with changes, and Ctrl-C stops it cleanly", async () => {
    // A tmux server of its own (no user configuration, no user session touched) running bash by
    // name, not the login shell: shells differ on Ctrl-C (dash exits with its child, bash goes on
    // when the child handles it), and the line after the bin is what reports its exit status.
    const socket = `heapstate-test-${process.pid}`;
    const tmux = (...a: string[]) =>
      execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...a], {
        encoding: "utf8",
        maxBuffer: 256 << 20,
        env: childEnv(),
      });
    const script = `"$0" "$1" --self --watch 0.3 --tier fast; echo "EXIT=$?"; sleep 30`;
    tmux("new-session", "-d", "-s", "watch", "-x", "160", "-y", "60", "bash", "-c", script, process.execPath, bin);
    try {
      // Wait for the third reading on screen: by then it has been redrawn twice.
      const screen = await vi.waitFor(
        () => {
          const text = tmux("capture-pane", "-p", "-t", "watch");
          expect(Number(/heapstate --watch 0\.3s {2}reading (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
          return text;
        },
        { timeout: 20_000, interval: 100 },
      );
      expect(screen).toMatch(/^ {2}rss +[\d.]+ \w+ \((\+|-|±)/m);
      expect(screen.match(/heapstate --watch/g)).toHaveLength(1); // redrawn, not appended
      tmux("send-keys", "-t", "watch", "C-c");
      const exit = await vi.waitFor(
        () => {
          const line = /^EXIT=\d+$/m.exec(tmux("capture-pane", "-p", "-t", "watch"));
          expect(line).not.toBeNull();
          return line?.[0];
        },
        { timeout: 20_000, interval: 100 },
      );
      expect(exit).toBe("EXIT=0");
    } finally {
      spawnSync("tmux", ["-L", socket, "kill-server"]);
    }
  });
});

describe("colour", () => {
  // script(1) runs its command with $SHELL: named here, so the login shell does not matter.
  // Without CI in the environment: Node gives a CI terminal two colours only, unless it knows the
  // CI service (tty.getColorDepth), so hasColors() is false there, as it should be.
  const scriptRun = (env: Record<string, string | undefined>) =>
    execFileSync("script", ["-qec", `${process.execPath} ${bin} --self --tier fast`, "/dev/null"], {
      encoding: "utf8",
      maxBuffer: 256 << 20,
      env: childEnv({ SHELL: "/bin/sh", CI: undefined, ...env }),
    });

  it("decided as Node decides: on a terminal, never with NO_COLOR, NODE_DISABLE_COLORS or TERM=dumb; FORCE_COLOR on a pipe", () => {
    expect(scriptRun({ TERM: "xterm-256color" })).toContain("\x1b[1mhost\x1b[0m");
    expect(scriptRun({ TERM: "xterm-256color", NO_COLOR: "1" })).not.toContain("\x1b[");
    expect(scriptRun({ TERM: "xterm-256color", NODE_DISABLE_COLORS: "1" })).not.toContain("\x1b[");
    expect(scriptRun({ TERM: "dumb" })).not.toContain("\x1b[");
    expect(cli(["--self", "--tier", "fast"], { FORCE_COLOR: "1" }).out).toContain("\x1b[1mhost\x1b[0m");
    expect(cli(["--tier", "fast"]).out).not.toContain("\x1b[");
  });

  it("wraps long lines at 100 columns when not on a terminal (--width N otherwise, 0 never), losing no word", async () => {
    // A stopped process: what the kernel shows of it does not move between the readings compared.
    const still = await idleChild();
    try {
      process.kill(still.pid as number, "SIGSTOP");
      const read = (args: string[]) => cli(["--pid", String(still.pid), "--deep", ...args]);
      const whole = read(["--width", "0"]).out;
      // Its findings and the deep reading's sources run past 100 columns: there is something to wrap.
      expect(Math.max(...whole.split("\n").map((l) => l.length))).toBeGreaterThan(100);
      const words = (t: string) => t.split(/\s+/).filter((w) => !/^\d|^-\d|µs\)$|^\(|Z$|^(KiB|MiB|GiB|B|%)$/.test(w));
      for (const [args, width] of [
        [[], 100],
        [["--width", "60"], 60],
      ] as const) {
        const r = read([...args]);
        expect(r.code).toBe(0);
        const lines = r.out.split("\n");
        for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(width);
        expect(lines.length).toBeGreaterThan(whole.split("\n").length);
        // The same words (the reading's time and cost aside), in the same order.
        expect(words(r.out)).toEqual(words(whole));
      }
    } finally {
      still.kill("SIGKILL");
    }
    expect(cli(["--width", "wide"]).code).toBe(2);
    expect(cli(["diff", "a", "b", "--width", "-1"]).code).toBe(2);
  });
});

describe("the README's commands", () => {
  it("npx heapstate works from the checkout", () => {
    const out = execFileSync("npx", ["--no-install", "heapstate", "show-host", "--self", "--tier", "fast"], {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 256 << 20,
      env: childEnv(),
    });
    expect(out).toContain("serves malloc");
  });
});
