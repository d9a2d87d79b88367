/**
 * The agent: a Node child started with `--require heapstate/agent` answers its own full reading
 * over its socket, and show-host uses it; the socket and its directory let no other user in (a
 * client run as nobody is refused by the kernel); a killed agent's socket is ignored and removed;
 * malformed, unknown and oversized requests get an error and the agent keeps answering.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostProcesses } from "../../lib/core/read/host-view";
import { agentSocket } from "../../lib/faces/agent/client";
import { childEnv, fixtures, requireLib, requireRoot, root, runInfo, scaled } from "../helpers";

async function agentChild(
  env: Record<string, string> = {},
  script = "idle.cjs",
): Promise<{ child: ChildProcess; socket: string }> {
  const child = spawn(process.execPath, [join(fixtures, "children", script)], {
    cwd: root,
    // As a user would: NODE_OPTIONS naming the package's agent entry.
    env: childEnv({ NODE_OPTIONS: "--require heapstate/agent", ...env }),
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("error", reject);
  });
  const pid = child.pid as number;
  const end = Date.now() + 10_000;
  let socket = agentSocket(pid);
  while (socket === undefined && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    socket = agentSocket(pid);
  }
  if (socket === undefined) throw new Error(`no agent socket for ${pid}`);
  return { child, socket };
}

/** Sends raw bytes on a fresh connection; resolves with what came back until the agent closed or the first line. */
function exchange(socket: string, bytes: string, untilClose = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let got = "";
    c.setEncoding("utf8");
    c.on("connect", () => c.write(bytes));
    c.on("data", (d: string) => {
      got += d;
      if (!untilClose && got.includes("\n")) {
        c.destroy();
        resolve(got);
      }
    });
    c.on("close", () => resolve(got));
    c.on("error", reject);
  });
}

function cli(args: string[]) {
  return spawnSync(process.execPath, [join(root, "bin", "heapstate.js"), ...args], {
    env: childEnv(),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(60_000),
  });
}

describe("a process running the agent", () => {
  let child: ChildProcess;
  let socket: string;
  beforeAll(async () => {
    ({ child, socket } = await agentChild());
  });
  afterAll(() => child?.kill());

  it("listens on a socket only its user may reach: mode 0600 in a 0700 directory of its own", () => {
    const s = statSync(socket);
    expect(s.isSocket()).toBe(true);
    expect(s.mode & 0o777).toBe(0o600);
    const d = statSync(dirname(socket));
    expect(d.mode & 0o777).toBe(0o700);
    expect(d.uid).toBe(process.getuid?.());
  });

  it("answers its own full reading: --pid shows its allocator, which procfs alone cannot", () => {
    const r = cli(["--pid", String(child.pid), "--json"]);
    expect(r.status, runInfo(r)).toBe(0);
    const s = JSON.parse(r.stdout) as {
      pid: number;
      readBy: string;
      allocators?: Array<{ allocator: string; servesMalloc: boolean; allocatedBytes?: number }>;
    };
    expect(s.readBy).toBe("agent");
    expect(s.pid).toBe(child.pid);
    const heap = s.allocators?.find((a) => a.servesMalloc);
    expect(heap?.allocator).toBe("glibc");
    expect(heap?.allocatedBytes).toBeGreaterThan(0);
    // Without an agent, a process read from procfs has no allocator.
    const plain = JSON.parse(cli(["--pid", String(process.pid), "--json"]).stdout) as {
      readBy: string;
      allocators?: unknown[];
    };
    expect(plain.readBy).toBe("procfs");
    expect(plain.allocators ?? []).toEqual([]);
    const text = cli(["--pid", String(child.pid), "--width", "0"]).stdout;
    expect(text).toMatch(/^ {2}serves malloc +glibc /m);
    expect(text).toContain(`read by process ${child.pid}'s own heapstate agent`);
  });

  it("--pid P --watch reads through P's agent each time, as one reading does", () => {
    const r = cli(["--pid", String(child.pid), "--watch", "0.2", "--count", "2", "--width", "0"]);
    expect(r.status, runInfo(r)).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).toMatch(/ heap allocated [\d.]+ \w+/);
      expect(line).not.toContain("(unknown)");
      expect(line).toContain(`(read by process ${child.pid}'s own agent)`);
    }
    const json = cli(["--pid", String(child.pid), "--watch", "0.2", "--count", "1", "--json"]);
    expect((JSON.parse(json.stdout) as { readBy: string }).readBy).toBe("agent");
  });

  it("the arenas the host view counts from maps are the heaps glibc's own malloc_info lists", async () => {
    // Arenas only ever grow (a thread's first malloc may add one): compared when the count read
    // from maps is the same before and after the process's own reading.
    const fromMaps = () => hostProcesses().processes.find((p) => p.pid === child.pid)?.glibcArenas;
    let compared = false;
    for (let attempt = 0; attempt < 20 && !compared; attempt++) {
      const before = fromMaps();
      const answer = JSON.parse(await exchange(socket, '{"op":"reading","tier":"deep"}\n')) as {
        snapshot: { allocators: Array<{ allocator: string; servesMalloc: boolean; arenas?: number }> };
      };
      const own = answer.snapshot.allocators.find((a) => a.servesMalloc);
      expect(own?.allocator).toBe("glibc");
      expect(own?.arenas).toBeGreaterThanOrEqual(1);
      if (fromMaps() !== before) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      expect(before).toBe(own?.arenas);
      compared = true;
    }
    expect(compared, "the arena count never held still for one reading").toBe(true);
  });

  it("the host view says which rows come from an agent", () => {
    const view = JSON.parse(cli(["--json"]).stdout) as {
      processes: Array<{ pid: number; source: string; agent?: { allocator: string } }>;
    };
    const row = view.processes.find((p) => p.pid === child.pid);
    expect(row?.source).toBe("agent");
    expect(row?.agent?.allocator).toBe("glibc");
    expect(view.processes.filter((p) => p.pid !== child.pid).every((p) => p.source === "procfs" || p.agent)).toBe(true);
    const text = cli(["--width", "0"]).stdout;
    expect(text).toMatch(new RegExp(`^ +${child.pid} .* glibc \\(a\\) `, "m"));
    expect(text).toMatch(/^ {2}sizes: .*\(a\) from the process's own agent/m);
  });

  it("malformed, unknown, trim-when-not-enabled and oversized requests get an error; the agent keeps answering", async () => {
    expect(JSON.parse(await exchange(socket, "not json\n"))).toEqual({
      ok: false,
      error: "the request is not JSON (one object per line)",
    });
    expect(JSON.parse(await exchange(socket, '{"op":"shell","cmd":"id"}\n')).ok).toBe(false);
    expect(JSON.parse(await exchange(socket, "[1,2]\n")).ok).toBe(false);
    expect(JSON.parse(await exchange(socket, '{"op":"reading","tier":"everything"}\n')).error).toMatch(/tier must be/);
    expect(JSON.parse(await exchange(socket, '{"op":"trim"}\n')).error).toMatch(/trim is not enabled/);
    // Past 4 KiB without a newline: an error, then the agent closes that connection.
    const big = await exchange(socket, "x".repeat(64 * 1024), true);
    expect(JSON.parse(big.split("\n")[0] as string)).toEqual({ ok: false, error: "a request is at most 4096 bytes" });
    const ok = JSON.parse(await exchange(socket, '{"op":"reading","tier":"fast"}\n')) as {
      ok: boolean;
      snapshot: { pid: number };
    };
    expect(ok.ok).toBe(true);
    expect(ok.snapshot.pid).toBe(child.pid);
    expect(child.exitCode).toBeNull();
  });

  it("another user cannot connect (a client run as nobody)", (ctx) => {
    requireRoot(ctx, "connecting as another user");
    const r = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/usr/bin/python3",
        "-c",
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print('connected')\nexcept OSError as e: print(e.errno)",
        socket,
      ],
      { encoding: "utf8", maxBuffer: 256 << 20 },
    );
    expect(r.status, runInfo(r)).toBe(0);
    // EACCES (13): the directory is 0700 and the socket 0600.
    expect(r.stdout.trim()).toBe("13");
  });
});

describe("native allocation sites of a service, through its agent (heapstate --pid P --sites)", () => {
  let child: ChildProcess;
  beforeAll(async () => {
    ({ child } = await agentChild(
      { LD_PRELOAD: requireLib("jemalloc"), MALLOC_CONF: "prof:true,lg_prof_sample:19" },
      "deflate-idle.cjs",
    ));
  });
  afterAll(() => child?.kill());

  it("names the code holding its native heap: 600 deflate streams under AllocForZlib", () => {
    const r = cli(["--pid", String(child.pid), "--sites", "3", "--width", "0"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/native heap by allocation site \(jemalloc prof.dump/);
    expect(r.stdout).toMatch(/CompressionStream[A-Za-z]*(<…>)?::AllocForZlib/);
    expect(r.stdout).toMatch(/read by process \d+'s own heapstate agent/);
    const json = cli(["--pid", String(child.pid), "--sites", "--json"]);
    const s = JSON.parse(json.stdout) as { tier: string; nativeSites?: { source: string; sites: unknown[] } };
    expect(s.tier).toBe("deep");
    expect(s.nativeSites?.source).toBe("jemalloc prof.dump");
    expect(s.nativeSites?.sites.length).toBeGreaterThan(0);
    expect(s.nativeSites?.sites.length).toBeLessThanOrEqual(10);
  });

  it("is a usage error without one process, or with a tier other than deep; a bad count is refused", () => {
    for (const args of [
      ["--sites"],
      ["--pid", String(child.pid), "--sites", "--tier", "standard"],
      ["--self", "--sites", "0"],
    ]) {
      const r = cli(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/--sites/);
    }
  });

  it("a process without an agent: the reading from procfs says why it has no sites", async () => {
    const plain = spawn(process.execPath, [join(fixtures, "children", "idle.cjs")], {
      env: childEnv(),
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      await new Promise((resolve) => plain.stdout?.once("data", resolve));
      const r = cli(["--pid", String(plain.pid), "--sites", "--json"]);
      expect(r.status, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as { nativeSites?: unknown; warnings: Array<{ code: string; message: string }> };
      expect(s.nativeSites).toBeUndefined();
      expect(s.warnings.find((w) => w.code === "NATIVE_SITES_UNAVAILABLE")?.message).toMatch(
        /through its agent .* it runs none/,
      );
    } finally {
      plain.kill();
    }
  });
});

describe("a sampling window through the agent (heapstate --pid P --sites --window S)", () => {
  let child: ChildProcess;
  let socket: string;
  beforeAll(async () => {
    ({ child, socket } = await agentChild(
      { LD_PRELOAD: requireLib("jemalloc"), MALLOC_CONF: "prof:true,prof_active:false,lg_prof_sample:19" },
      "deflate-growing.cjs",
    ));
  });
  afterAll(() => child?.kill());

  it("names what the window allocated (deflate streams opened meanwhile), and leaves sampling off", () => {
    const r = cli(["--pid", String(child.pid), "--sites", "3", "--window", "1.5", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as {
      nativeSites?: { window?: { durationMs: number }; sites: Array<{ frames: Array<{ symbol?: string }> }> };
    };
    expect(s.nativeSites?.window?.durationMs).toBe(1500);
    expect(s.nativeSites?.sites[0]?.frames[0]?.symbol, JSON.stringify(s.nativeSites?.sites)).toMatch(
      /CompressionStream[A-Za-z]*(<…>)?::AllocForZlib/,
    );
    const after = JSON.parse(cli(["--pid", String(child.pid), "--tier", "fast", "--json"]).stdout) as {
      allocators: Array<{ servesMalloc: boolean; config?: { profActive?: boolean } }>;
    };
    expect(after.allocators.find((a) => a.servesMalloc)?.config?.profActive).toBe(false);
  });

  it("the agent refuses a window that is not 1 to 20 000 ms, or without sites", async () => {
    for (const [ask, why] of [
      [
        { op: "reading", sites: 1, windowMs: 20_001 },
        /windowMs must be a whole number of milliseconds from 1 to 20000/,
      ],
      [{ op: "reading", sites: 1, windowMs: "1000" }, /windowMs must be/],
      [{ op: "reading", windowMs: 1000 }, /windowMs goes with sites/],
    ] as const) {
      const answer = JSON.parse((await exchange(socket, `${JSON.stringify(ask)}\n`)).split("\n")[0] as string);
      expect(answer.ok).toBe(false);
      expect(answer.error).toMatch(why);
    }
  });

  it("--window goes with --sites, for at most 20 s", () => {
    for (const args of [
      ["--pid", String(child.pid), "--window", "1"],
      ["--pid", String(child.pid), "--sites", "--window", "25"],
      ["--pid", String(child.pid), "--sites", "--window", "soon"],
    ]) {
      const r = cli(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/--window/);
    }
  });
});

describe("a killed agent", () => {
  it("leaves a socket that is ignored and removed; the process is not listed", async () => {
    const { child, socket } = await agentChild();
    const pid = child.pid as number;
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(existsSync(socket)).toBe(true); // SIGKILL: no exit handler ran
    const view = cli(["--json", "--tier", "fast"]);
    expect(view.status, runInfo(view)).toBe(0);
    expect(
      (JSON.parse(view.stdout) as { processes: Array<{ pid: number }> }).processes.map((p) => p.pid),
    ).not.toContain(pid);
    expect(existsSync(socket)).toBe(false);
    expect(cli(["--pid", String(pid)]).status).toBe(1);
  });

  it("a process that exits removes its socket itself", () => {
    // The child prints its socket's path (while it runs), then exits normally.
    const r = spawnSync(
      process.execPath,
      [
        "--require",
        join(root, "dist", "faces", "agent", "register.js"),
        "-e",
        `setTimeout(() => console.log(require(${JSON.stringify(join(root, "dist", "faces", "agent", "client.js"))}).agentSocket(process.pid)), 100)`,
      ],
      { env: childEnv(), encoding: "utf8", maxBuffer: 256 << 20, timeout: scaled(30_000) },
    );
    expect(r.status, runInfo(r)).toBe(0);
    const path = r.stdout.trim();
    expect(path).toMatch(new RegExp(`/${r.pid}\\.sock$`));
    expect(existsSync(path)).toBe(false);
  });
});
