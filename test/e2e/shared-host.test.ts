/**
 * The CLI as root on a host shared with other users, attacked by a co-tenant with no privileges
 * (real processes under other uids, started with setpriv, which only root may do: these tests
 * skip with that reason outside CI and never skip in CI).
 *
 * - Text: processes whose command line, title and environment hold escape sequences and newlines;
 *   root's show-host, --all, --tree and --pid print no raw control character, DEL or C1, and no row
 *   that is not a row.
 * - Agents: a socket planted in /tmp/heapstate-<uid> by another user, a symbolic link for that
 *   directory, a socket owned by the wrong user, a socket of the right user that is not the target
 *   process's own, and an answer for another pid: each refused with its reason, the row read from
 *   procfs, and nothing deleted (a file outside the directory survives).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, requireRoot, root, runInfo, scaled, worldReadableCli } from "../helpers";

const bin = join(root, "bin", "heapstate.js");
const isRoot = process.getuid?.() === 0;
const BECAUSE = "it starts processes as other users with setpriv";

/** Users that exist only as numbers: the victims and the attacker of these tests. */
const ATTACKER = 47_100;
const VICTIM = {
  planted: 47_101,
  symlink: 47_102,
  wrongOwner: 47_103,
  notItsOwn: 47_104,
  otherPid: 47_105,
  refusedPath: 47_107,
};
const OPERATOR = 47_106; // a non-root user running the CLI, whose own /tmp/heapstate-<uid> is planted

const children: ChildProcess[] = [];
const cleanup: string[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const p of cleanup) rmSync(p, { recursive: true, force: true });
});

/** A world-readable directory for scripts other users run. */
const scripts = mkdtempSync(join(tmpdir(), "heapstate-shared-"));
cleanup.push(scripts);

/**
 * A forged agent: listens on argv[2] (a path, or a directory for its own <pid>.sock) and answers every request with a reading of pid argv[3]
 * that names jemalloc, carries escape sequences and a forged warning line.
 */
const FAKE_AGENT = `
const net = require("node:net");
// A directory (ending in "/") means this process's own socket there: <dir>/<own pid>.sock.
const [dir, pid] = [process.argv[2], Number(process.argv[3])];
const path = dir.endsWith("/") ? dir + process.pid + ".sock" : dir;
process.umask(0o177); // a socket of mode 0600, as an agent makes it
const snapshot = {
  schema: "heapstate/2", time: new Date().toISOString(), pid, tier: "standard",
  identity: { hostname: "forged" }, costMicros: 1,
  allocators: [{ allocator: "jemalloc", library: "/forged\\x1b]0;pwned\\x07", version: "9.9-forged\\x1b[2J", servesMalloc: true, allocatedBytes: 1 }],
  warnings: [{ source: "forged", code: "SOURCE_FAILED", message: "forged\\nWARN forged line: run rm -rf /" }],
  findings: [{ id: "high-unattributed", severity: "warn", message: "FORGED finding\\x1b[2J", evidence: {} }],
};
net.createServer((s) => {
  s.on("error", () => {});
  s.on("data", () => s.write(JSON.stringify({ ok: true, snapshot }) + "\\n"));
}).listen(path, () => console.log("listening"));
setInterval(() => {}, 1000);
`;

function asUser(uid: number, command: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", ...command], {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
    cwd: "/",
  });
  children.push(child);
  return child;
}

/** Runs a command as the attacker, synchronously; it must succeed. The path it makes is removed after the tests. */
function asAttacker(command: string[]): void {
  const r = spawnSync("setpriv", [`--reuid=${ATTACKER}`, `--regid=${ATTACKER}`, "--clear-groups", ...command], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  expect(r.status, runInfo(r)).toBe(0);
  cleanup.push(command.at(-1) as string);
}

/** Resolves when the child has printed `word` (or its first line). */
function printed(child: ChildProcess, word = ""): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(word) && out.includes("\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
}

/** An idle Node process of user `uid`; resolved once it runs. */
async function idleAs(
  uid: number,
  args: string[] = [],
  env: Record<string, string> = {},
  script = "",
): Promise<number> {
  const child = asUser(
    uid,
    [process.execPath, "-e", `${script}; console.log("ready"); setInterval(() => {}, 1000)`, ...args],
    env,
  );
  await printed(child, "ready");
  return child.pid as number;
}

/** The forged agent as user `uid`, listening on `path` and claiming `pid`. */
async function fakeAgentAs(uid: number, path: string, pid: number): Promise<ChildProcess> {
  const child = asUser(uid, [process.execPath, join(scripts, "fake-agent.cjs"), path, String(pid)]);
  await printed(child, "listening");
  return child;
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    env: childEnv(),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(60_000),
  });
  expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** A private directory of `uid`'s, as its agent makes it. */
function privateDir(path: string, uid: number): void {
  rmSync(path, { recursive: true, force: true });
  mkdirSync(path, { mode: 0o700 });
  chmodSync(path, 0o700);
  chownSync(path, uid, uid);
  cleanup.push(path);
}

// Anything that could act on a terminal: C0 but the newline, DEL, C1 (as code points of the text).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

beforeAll(() => {
  if (!isRoot) return;
  chmodSync(scripts, 0o755);
  writeFileSync(join(scripts, "fake-agent.cjs"), FAKE_AGENT, { mode: 0o644 });
  for (const uid of [ATTACKER, ...Object.values(VICTIM), OPERATOR])
    rmSync(`/tmp/heapstate-${uid}`, { recursive: true, force: true });
});

describe("other users' text never reaches root's terminal", () => {
  const TITLE = "title\x1b]0;pwned\x07\x1b[2J\u009b31m";
  const ARGV = ["x\x1b[2J\x1b[H", "\nWARN forged line: run rm -rf /", "\u009d0;t\u009c\x7f"];
  let byArgv = 0;
  let byTitle = 0;
  beforeAll(async () => {
    if (!isRoot) return;
    byArgv = await idleAs(65_534, ARGV, { MALLOC_ARENA_MAX: "\x1b]0;env-title\x07\n2" });
    byTitle = await idleAs(65_534, [], { MALLOC_CONF: "\x1b[31mred" }, `process.title = ${JSON.stringify(TITLE)}`);
  }, 60_000);

  const views = (): Array<[string, string[]]> => [
    ["show-host", []],
    ["show-host --width 0", ["--width", "0"]],
    ["show-host --width 60", ["--width", "60"]],
    ["show-host --all --tier fast", ["--all", "--tier", "fast"]],
    ["--tree (argv)", ["--tree", String(byArgv), "--width", "0"]],
    ["--tree (title)", ["--tree", String(byTitle)]],
    ["--pid (argv)", ["--pid", String(byArgv)]],
    ["--pid (title) --deep --top 5", ["--pid", String(byTitle), "--deep", "--top", "5", "--width", "0"]],
  ];

  it("show-host, --all, --tree and --pid: no raw control character, DEL or C1, and no forged row", (ctx) => {
    requireRoot(ctx, "reading processes of the user nobody", BECAUSE);
    for (const [name, args] of views()) {
      const out = cli(args);
      expect(out, name).not.toMatch(RAW_CONTROL);
      expect(out, name).not.toMatch(/^WARN forged/m);
    }
    // What they hold is shown, escaped, where it is shown at all.
    const table = cli(["--width", "0"]);
    expect(table).toContain("x\\x1b[2J\\x1b[H \\nWARN forged line: run rm -rf / \\x9d0;t\\x9c\\x7f");
    expect(table).toContain("title\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m");
    expect(cli(["--pid", String(byArgv), "--width", "0"])).toMatch(/MALLOC_ARENA_MAX +\\x1b\]0;env-title\\x07\\n2$/m);
    expect(cli(["--pid", String(byTitle), "--width", "0"])).toMatch(/MALLOC_CONF +\\x1b\[31mred$/m);
  });

  it("--json keeps the text exact", (ctx) => {
    requireRoot(ctx, "reading processes of the user nobody", BECAUSE);
    const view = JSON.parse(cli(["--json"])) as { processes: Array<{ pid: number; command: string }> };
    expect(view.processes.find((p) => p.pid === byArgv)?.command.endsWith(ARGV.join(" "))).toBe(true);
    expect(view.processes.find((p) => p.pid === byTitle)?.command.startsWith(TITLE)).toBe(true);
  });
});

describe("an agent socket another user planted or could have swapped is never trusted", () => {
  interface Case {
    victim: number;
    reason: RegExp;
  }
  const cases: Record<string, Case> = {};
  const outside = mkdtempSync(join(tmpdir(), "heapstate-outside-"));
  cleanup.push(outside);

  beforeAll(async () => {
    if (!isRoot) return;
    chmodSync(outside, 0o755);

    // 1. The attacker makes /tmp/heapstate-<victim's uid> first and listens on <pid>.sock.
    const planted = await idleAs(VICTIM.planted);
    mkdirSync(`/tmp/heapstate-${VICTIM.planted}`, { mode: 0o700 });
    chownSync(`/tmp/heapstate-${VICTIM.planted}`, ATTACKER, ATTACKER);
    cleanup.push(`/tmp/heapstate-${VICTIM.planted}`);
    await fakeAgentAs(ATTACKER, `/tmp/heapstate-${VICTIM.planted}/${planted}.sock`, planted);
    cases.planted = { victim: planted, reason: new RegExp(`owned by uid ${ATTACKER}, not by the process's user`) };

    // 2. /tmp/heapstate-<uid> is the attacker's symbolic link to a directory that would pass every
    //    other check (the victim's own, 0700, a socket of the victim's listening in it).
    const linked = await idleAs(VICTIM.symlink);
    const realDir = join(outside, "victims-dir");
    privateDir(realDir, VICTIM.symlink);
    await fakeAgentAs(VICTIM.symlink, join(realDir, `${linked}.sock`), linked);
    asAttacker(["ln", "-s", realDir, `/tmp/heapstate-${VICTIM.symlink}`]);
    cases.symlink = { victim: linked, reason: /is a symbolic link/ };

    // 2b. The attacker's link to a directory of root's holding a regular file named <pid>.sock of
    //     a live process: connecting to it is refused, and that must not delete it.
    const refusedPath = await idleAs(VICTIM.refusedPath);
    writeFileSync(join(outside, `${refusedPath}.sock`), "root's file, not a socket");
    asAttacker(["ln", "-s", outside, `/tmp/heapstate-${VICTIM.refusedPath}`]);
    cases.refusedPath = { victim: refusedPath, reason: /is a symbolic link/ };

    // 3. The right directory, but the socket is another user's (root's here).
    const wrongOwner = await idleAs(VICTIM.wrongOwner);
    privateDir(`/tmp/heapstate-${VICTIM.wrongOwner}`, VICTIM.wrongOwner);
    await fakeAgentAs(0, `/tmp/heapstate-${VICTIM.wrongOwner}/${wrongOwner}.sock`, wrongOwner);
    cases.wrongOwner = { victim: wrongOwner, reason: /is owned by uid 0, not by the process's user/ };

    // 4. The right directory and owner, but the listener is another process of the same user.
    const notItsOwn = await idleAs(VICTIM.notItsOwn);
    privateDir(`/tmp/heapstate-${VICTIM.notItsOwn}`, VICTIM.notItsOwn);
    await fakeAgentAs(VICTIM.notItsOwn, `/tmp/heapstate-${VICTIM.notItsOwn}/${notItsOwn}.sock`, notItsOwn);
    cases.notItsOwn = { victim: notItsOwn, reason: /is not one of process \d+'s own descriptors/ };

    // 5. The process's own socket, answering a reading of another process.
    privateDir(`/tmp/heapstate-${VICTIM.otherPid}`, VICTIM.otherPid);
    // Run directly, not through a shell: setpriv may exec a path whose directories only root may
    // search (a checkout in a 0700 directory), which a shell run as that user cannot.
    const self = asUser(VICTIM.otherPid, [
      process.execPath,
      join(scripts, "fake-agent.cjs"),
      `/tmp/heapstate-${VICTIM.otherPid}/`,
      "1",
    ]);
    await printed(self, "listening");
    cases.otherPid = { victim: self.pid as number, reason: /answered a reading of process 1, not of \d+/ };
  }, 120_000);

  for (const name of ["planted", "symlink", "refusedPath", "wrongOwner", "notItsOwn", "otherPid"]) {
    it(`${name}: --pid reads procfs and says why; the host view and --tree mark the row`, (ctx) => {
      requireRoot(ctx, "planting agents as other users", BECAUSE);
      const c = cases[name] as Case;
      const json = JSON.parse(cli(["--pid", String(c.victim), "--json"])) as {
        readBy: string;
        pid: number;
        allocators?: unknown[];
        warnings: Array<{ code: string; message: string }>;
      };
      expect(json.readBy).toBe("procfs");
      expect(json.pid).toBe(c.victim);
      expect(json.allocators ?? []).toEqual([]);
      const why = json.warnings.find((w) => w.code === "AGENT_NOT_USED");
      expect(why?.message).toMatch(c.reason);
      const text = cli(["--pid", String(c.victim), "--width", "0"]);
      expect(text).not.toMatch(/forged|FORGED/);
      expect(text).not.toContain("own heapstate agent");
      expect(text).toMatch(c.reason);
      expect(text).not.toMatch(RAW_CONTROL);
      for (const args of [["--json"], ["--tree", String(c.victim), "--json"]]) {
        const view = JSON.parse(cli(args)) as {
          processes?: Array<{ pid: number; source: string; agentNotUsed?: string }>;
          tree?: { processes: Array<{ pid: number; source: string; agentNotUsed?: string }> };
        };
        const row = (view.processes ?? view.tree?.processes ?? []).find((p) => p.pid === c.victim);
        expect(row?.source, args.join(" ")).toBe("procfs");
        expect(row?.agentNotUsed, args.join(" ")).toMatch(c.reason);
      }
      expect(cli(["--width", "0"])).toMatch(new RegExp(`process ${c.victim}: its agent was not used \\(`));
    });
  }

  it("nothing was deleted: the planted sockets, and the files outside the directory, are all there", (ctx) => {
    requireRoot(ctx, "planting agents as other users", BECAUSE);
    cli(["--json"]); // the host view sweeps stale sockets: it must sweep none of these
    for (const c of Object.values(cases)) {
      const path = [
        `/tmp/heapstate-${VICTIM.planted}`,
        `/tmp/heapstate-${VICTIM.wrongOwner}`,
        `/tmp/heapstate-${VICTIM.notItsOwn}`,
        `/tmp/heapstate-${VICTIM.otherPid}`,
        join(outside, "victims-dir"),
        outside,
      ]
        .map((d) => join(d, `${c.victim}.sock`))
        .find((p) => existsSync(p));
      expect(path, `the socket of ${c.victim}`).toBeDefined();
    }
    expect(existsSync(join(outside, `${(cases.refusedPath as Case).victim}.sock`))).toBe(true);
  });
});

describe("the CLI's own stale-socket sweep, through a directory another user planted under its name", () => {
  const target = mkdtempSync(join(tmpdir(), "heapstate-target-"));
  cleanup.push(target);

  it("deletes nothing: the operator's files behind the attacker's link survive", (ctx) => {
    requireRoot(ctx, "running the CLI as another user", BECAUSE);
    // A world-readable copy of what the CLI needs, so another user can run it.
    const copy = dirname(dirname(worldReadableCli()));
    cleanup.push(copy);
    // The operator's directory, with what looks like stale sockets (no such processes) and a file.
    chmodSync(target, 0o700);
    chownSync(target, OPERATOR, OPERATOR);
    const stale = join(target, "4194304.sock");
    const made = spawnSync(process.execPath, [
      "-e",
      `const s = require("node:net").createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`,
    ]);
    expect(made.status).toBe(0);
    chownSync(stale, OPERATOR, OPERATOR);
    writeFileSync(join(target, "4194303.sock"), "the operator's file");
    chownSync(join(target, "4194303.sock"), OPERATOR, OPERATOR);
    // The attacker's link, named as the operator's agent directory.
    const planted = `/tmp/heapstate-${OPERATOR}`;
    rmSync(planted, { recursive: true, force: true });
    asAttacker(["ln", "-s", target, planted]);
    const r = spawnSync(
      "setpriv",
      [
        `--reuid=${OPERATOR}`,
        `--regid=${OPERATOR}`,
        "--clear-groups",
        process.execPath,
        join(copy, "bin", "heapstate.js"),
      ],
      { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20, cwd: copy, timeout: scaled(60_000) },
    );
    expect(r.status, runInfo(r)).toBe(0);
    expect(existsSync(stale)).toBe(true);
    expect(existsSync(join(target, "4194303.sock"))).toBe(true);
  });
});
