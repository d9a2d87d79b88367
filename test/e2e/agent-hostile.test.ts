/**
 * The agent against clients that would make the service pay: a burst of pipelined requests in one
 * write, a client that never reads its answers, a hundred slow connections, a line of multibyte
 * characters that is short in characters and long in bytes. The service (a child that runs the
 * agent) measures its own event loop's longest stall (monitorEventLoopDelay, and the gaps between
 * a 5 ms timer's ticks) and its RSS over each attack: under 50 ms and +8 MiB. Also: the agent's
 * readings are the repeated reader's (glibc's costly walk backs off whoever asks), its socket path
 * is checked against sun_path's limit before listening, and its socket is removed on SIGTERM and
 * SIGINT without the signal being swallowed.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEADLINE_MS, IDLE_MS, MAX_CONNECTIONS, MAX_REQUEST_BYTES } from "../../lib/faces/agent/server";
import { announced, childEnv, dist, fixtures, MiB, printerAddon } from "../helpers";

const READING = `${JSON.stringify({ op: "reading", tier: "standard" })}\n`;

interface Stats {
  maxDelayMs: number;
  rssGrowthBytes: number;
}

interface Host {
  child: ChildProcess;
  socket: string;
  ask: <T>(message: string) => Promise<T>;
}

const hosts: ChildProcess[] = [];
afterAll(() => {
  for (const c of hosts) c.kill("SIGKILL");
});

async function agentHost(env: Record<string, string> = {}): Promise<Host> {
  const child = fork(join(fixtures, "children", "agent-host.cjs"), [], {
    env: childEnv({ HEAPSTATE_TEST_DIST: dist, HEAPSTATE_TEST_PRINTER: printerAddon, ...env }),
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  hosts.push(child);
  const { socket } = await announced<{ socket: string }>(child, "socket");
  const ask = <T>(message: string) =>
    new Promise<T>((resolve) => {
      child.once("message", (m) => resolve(m as T));
      child.send(message);
    });
  return { child, socket, ask };
}

/**
 * The attack between "start" and "stats": what it cost the host. Before it, the service answers
 * 150 requests the ordinary way, as a service whose agent has been asked for a while has: the
 * first hundred answers touch new code pages of the node binary as V8's optimizing compilers take
 * the reading's code, and size V8's young generation (5–7 MiB on Node 24, measured), a cost of
 * using the agent at all, not of the attack.
 */
async function measured(host: Host, attack: () => Promise<void>): Promise<Stats> {
  const warm = await open(host.socket);
  warm.write(READING.repeat(150));
  expect(await lines(warm, 150)).toHaveLength(150);
  warm.destroy();
  await host.ask("start");
  await attack();
  return host.ask<Stats>("stats");
}

function expectCheap(s: Stats) {
  expect(s.maxDelayMs, JSON.stringify(s)).toBeLessThan(50);
  expect(s.rssGrowthBytes, JSON.stringify(s)).toBeLessThan(8 * MiB);
}

/** Connects; resolves with the socket once connected. */
function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

/** Reads answer lines from a connection until `n` have come (or it closed). */
function lines(c: Socket, n: number, timeoutMs = 30_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = "";
    const got = () => text.split("\n").slice(0, -1);
    const timer = setTimeout(() => reject(new Error(`${got().length} of ${n} answers in ${timeoutMs} ms`)), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve(got());
    };
    c.on("data", (d: Buffer) => {
      text += d.toString("utf8");
      if (got().length >= n) done();
    });
    c.on("close", done);
  });
}

/** One request on a fresh connection; its answer. */
async function request(path: string, body: string): Promise<{ ok: boolean; error?: string; snapshot?: unknown }> {
  const c = await open(path);
  c.write(`${body}\n`);
  const [line] = await lines(c, 1);
  c.destroy();
  return JSON.parse(line as string);
}

describe("an agent under attack by a client of its own user", () => {
  it("114 pipelined requests in one write of < 4 KiB: all answered, one at a time, the host's loop never stalled", async () => {
    const host = await agentHost();
    const burst = READING.repeat(114);
    expect(Buffer.byteLength(burst)).toBeLessThan(MAX_REQUEST_BYTES);
    let answers: string[] = [];
    const stats = await measured(host, async () => {
      const c = await open(host.socket);
      c.write(burst);
      answers = await lines(c, 114);
      c.destroy();
    });
    expect(answers).toHaveLength(114);
    expect(answers.every((a) => (JSON.parse(a) as { ok: boolean }).ok)).toBe(true);
    expectCheap(stats);
  });

  it("a client that never reads: its answers are not piled up in the host; others are still answered", async () => {
    const host = await agentHost();
    let other: { ok: boolean } | undefined;
    const stats = await measured(host, async () => {
      const c = await open(host.socket);
      c.pause(); // never reads
      c.on("error", () => {});
      // Far more requests than the socket's buffers hold: each answer is tens of KiB.
      for (let i = 0; i < 40; i++) c.write(READING.repeat(100));
      await new Promise((r) => setTimeout(r, 3000));
      other = await request(host.socket, READING.trim());
      c.destroy();
    });
    expect(other?.ok).toBe(true);
    expectCheap(stats);
  });

  it(`100 slow connections: ${MAX_CONNECTIONS} served, the rest refused with a line; bytes do not keep one open past ${IDLE_MS / 1000} s`, async () => {
    const host = await agentHost();
    const conns: Socket[] = [];
    const refused: string[] = [];
    const closedAt: number[] = [];
    const start = Date.now();
    const stats = await measured(host, async () => {
      for (let i = 0; i < 100; i++) {
        const c = connect(host.socket);
        c.on("error", () => {});
        c.on("data", (d: Buffer) => refused.push(d.toString()));
        c.on("close", () => closedAt.push(Date.now() - start));
        conns.push(c);
      }
      // A byte every 200 ms, never a whole request: the idle limit must close them anyway.
      const drip = setInterval(() => {
        for (const c of conns) if (c.writable) c.write(" ");
      }, 200);
      await new Promise((r) => setTimeout(r, IDLE_MS + 2000));
      clearInterval(drip);
    });
    expectCheap(stats);
    expect(refused.length).toBe(100 - MAX_CONNECTIONS);
    for (const r of refused)
      expect(JSON.parse(r)).toEqual({
        ok: false,
        error: `the agent serves ${MAX_CONNECTIONS} connections at once: try again`,
      });
    // Every connection is closed: the refused at once, the served ones by the idle limit.
    expect(closedAt).toHaveLength(100);
    expect(Math.max(...closedAt)).toBeLessThan(Math.min(IDLE_MS + 2000, DEADLINE_MS));
    // The agent answers again once they are gone.
    expect((await request(host.socket, READING.trim())).ok).toBe(true);
    for (const c of conns) c.destroy();
  }, 60_000);

  it("the 4 KiB limit is in bytes: 12 KB of 3-byte characters (4 000 characters) is refused; 4 000 bytes are answered", async () => {
    const host = await agentHost();
    const long = JSON.stringify({ op: "reading", tier: "fast", note: "€".repeat(4000) });
    expect(long.length).toBeLessThan(MAX_REQUEST_BYTES + 100);
    expect(Buffer.byteLength(long)).toBeGreaterThan(12_000);
    let answer: string[] = [];
    const stats = await measured(host, async () => {
      const c = await open(host.socket);
      c.write(`${long}\n`);
      answer = await lines(c, 2);
      c.destroy();
    });
    expect(answer.map((a) => JSON.parse(a))).toEqual([
      { ok: false, error: `a request is at most ${MAX_REQUEST_BYTES} bytes` },
    ]);
    expectCheap(stats);
    // Just under the limit in bytes, with multibyte characters: an answer.
    const fits = JSON.stringify({ op: "reading", tier: "fast", note: "€".repeat(1300) });
    expect(Buffer.byteLength(fits)).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
    expect((await request(host.socket, fits)).ok).toBe(true);
  });

  it("readings are the repeated reader's: a costly glibc walk is not repeated within its back-off, whoever asks", async () => {
    const host = await agentHost({ HEAPSTATE_TEST_FRAGMENT: "1" });
    const deep = JSON.stringify({ op: "reading", tier: "standard" });
    type Answer = { snapshot: { allocators: Array<{ servesMalloc: boolean; asOf?: string }> } };
    const first = (await request(host.socket, deep)) as unknown as Answer;
    // Two clients, one after the other: the second reading reuses the first one's walk.
    const second = (await request(host.socket, deep)) as unknown as Answer;
    const heap = (a: Answer) => a.snapshot.allocators.find((x) => x.servesMalloc);
    expect(heap(first)?.asOf).toBeUndefined();
    expect(heap(second)?.asOf).toBeDefined();
  });
});

describe("the agent's socket", () => {
  function agentProcess(
    script: string,
    env: Record<string, string> = {},
  ): Promise<{ child: ChildProcess; path: string }> {
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const a = require(${JSON.stringify(dist)}).startAgent(); console.log(JSON.stringify({ path: a.path })); ${script}`,
      ],
      { env: childEnv(env), stdio: ["ignore", "pipe", "pipe"] },
    );
    hosts.push(child);
    return announced<{ path: string }>(child, "path").then(({ path }) => ({ child, path }));
  }
  const listening = async (path: string) => {
    for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(path)).toBe(true);
  };
  const exited = (c: ChildProcess) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve({ code: c.exitCode, signal: c.signalCode });
      else c.once("exit", (code, signal) => resolve({ code, signal }));
    });

  it.each(["SIGTERM", "SIGINT"] as const)(
    "is removed on %s, and the process still ends by the signal",
    async (signal) => {
      const { child, path } = await agentProcess("setInterval(() => {}, 1000);");
      await listening(path);
      child.kill(signal);
      expect(await exited(child)).toEqual({ code: null, signal });
      expect(existsSync(path)).toBe(false);
    },
  );

  it("a host with its own SIGTERM handler keeps it: the agent does not end the process, and the socket goes at exit", async () => {
    const { child, path } = await agentProcess(
      'process.on("SIGTERM", () => { console.log("host: draining"); setTimeout(() => process.exit(7), 300); }); setInterval(() => {}, 1000);',
    );
    await listening(path);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 100));
    // Still running, its socket still there, while the host drains.
    expect(child.exitCode).toBeNull();
    expect(existsSync(path)).toBe(true);
    expect(await exited(child)).toEqual({ code: 7, signal: null });
    expect(out).toContain("host: draining");
    expect(existsSync(path)).toBe(false);
  });

  it("a $XDG_RUNTIME_DIR too long for a socket path is passed over for one that fits, never cut by libuv", async () => {
    const base = mkdtempSync(join(tmpdir(), "heapstate-xdg-"));
    const xdg = join(base, "d".repeat(100));
    mkdirSync(xdg, { recursive: true, mode: 0o700 });
    try {
      const { child, path } = await agentProcess("setInterval(() => {}, 1000);", { XDG_RUNTIME_DIR: xdg });
      expect(Buffer.byteLength(path)).toBeLessThanOrEqual(107);
      expect(path.startsWith(xdg)).toBe(false);
      await listening(path);
      expect((await request(path, READING.trim())).ok).toBe(true);
      child.kill("SIGKILL");
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
