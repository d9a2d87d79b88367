/**
 * The agent: a running process answers its own full reading on demand (as `jcmd <pid>
 * VM.native_memory` asks a JVM), so `heapstate show-host` and `--pid` can show its allocator's
 * counters, breakdown and findings instead of what procfs alone tells.
 *
 * It listens on a Unix domain socket `<pid>.sock` in a per-user directory: `$XDG_RUNTIME_DIR/heapstate`
 * when that is the user's own, else `/tmp/heapstate-<uid>`; the directory is created mode 0700 and
 * refused when it is not the user's or others may write to it, and the socket is mode 0600: only
 * the owning user (and root) can connect. One request per line, JSON, at most 4 KiB:
 * `{"op":"reading","tier":"standard"}` answers `{"ok":true,"snapshot":{…}}`; `{"op":"trim"}` runs
 * trim() only when the agent was started with `trim: true`; anything else answers
 * `{"ok":false,"error":"…"}`, and a request past 4 KiB closes the connection. The server never
 * keeps the process alive, and the socket is removed when the process exits.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";
import { collect } from "./collect";
import { trim } from "./trim";
import { TIERS, type Tier } from "./types";
import * as is from "./validate";

export const MAX_REQUEST_BYTES = 4096;
const IDLE_MS = 10_000;

/** The directories where a user's agents listen, most preferred first. */
export function agentDirs(uid: number, env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg?.startsWith("/")) dirs.push(join(xdg, "heapstate"));
  const run = `/run/user/${uid}/heapstate`;
  if (!dirs.includes(run)) dirs.push(run);
  dirs.push(`/tmp/heapstate-${uid}`);
  return dirs;
}

/** Whether a directory is safe for this user's sockets: its own, a directory, not a link, writable by it alone. */
function ownedPrivateDir(dir: string, uid: number): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

/** The directory this process's agent uses, created 0700 when missing; undefined when none is safe. */
function ensureDir(uid: number): string | undefined {
  for (const dir of agentDirs(uid)) {
    try {
      mkdirSync(dir, { mode: 0o700, recursive: false });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") continue;
    }
    if (ownedPrivateDir(dir, uid)) return dir;
  }
  return undefined;
}

export interface AgentOptions {
  /** Allow `{"op":"trim"}` (default false). */
  trim?: boolean;
}

export interface Agent {
  /** The socket's path. */
  readonly path: string;
  stop(): void;
}

let running: Agent | undefined;

function answer(socket: Socket, body: object): void {
  socket.write(`${JSON.stringify(body)}\n`);
}

function handle(line: string, allowTrim: boolean): object {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    return { ok: false, error: "the request is not JSON (one object per line)" };
  }
  if (request === null || typeof request !== "object" || Array.isArray(request))
    return { ok: false, error: "the request must be a JSON object" };
  const r = request as { op?: unknown; tier?: unknown };
  if (r.op === "reading") {
    const tier = r.tier ?? "standard";
    if (typeof tier !== "string" || !(TIERS as readonly string[]).includes(tier))
      return { ok: false, error: "tier must be fast, standard or deep" };
    return { ok: true, snapshot: collect({ tier: tier as Tier }) };
  }
  if (r.op === "trim") {
    if (!allowTrim) return { ok: false, error: "trim is not enabled in this agent (startAgent({ trim: true }))" };
    return { ok: true, trim: trim() };
  }
  return { ok: false, error: 'op must be "reading" (or "trim" where enabled)' };
}

/**
 * Starts this process's agent (once: a second call returns the running one).
 * @example
 * const { startAgent } = require("heapstate");
 * const agent = startAgent(); // heapstate show-host now shows this process's full reading
 */
export function startAgent(options?: AgentOptions): Agent {
  const where = "startAgent(options)";
  const o = is.optionsObject(where, options, ["trim"]);
  const allowTrim = is.bool(where, "trim", o.trim, false);
  if (running) return running;
  // The socket is named by the process's pid: one agent per process, in its main thread.
  if (!isMainThread)
    throw is.invalidOption(where, "the agent runs in the main thread (a worker shares its process's pid)");
  const uid = process.getuid?.() ?? -1;
  const dir = ensureDir(uid);
  if (dir === undefined)
    throw is.invalidOption(where, `no private directory for the socket (tried ${agentDirs(uid).join(", ")})`);
  const path = join(dir, `${process.pid}.sock`);
  try {
    unlinkSync(path); // a stale socket of an earlier process with this pid
  } catch {}
  const server: Server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    let buffer = "";
    let closed = false;
    const refuse = () => {
      answer(socket, { ok: false, error: `a request is at most ${MAX_REQUEST_BYTES} bytes` });
      socket.end();
      closed = true;
      buffer = "";
    };
    socket.on("data", (chunk: string) => {
      if (closed) return;
      buffer += chunk;
      for (;;) {
        const nl = buffer.indexOf("\n");
        if (nl < 0) break;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.length > MAX_REQUEST_BYTES) return refuse();
        try {
          answer(socket, handle(line, allowTrim));
        } catch (error) {
          answer(socket, { ok: false, error: (error as Error).message });
        }
      }
      if (buffer.length > MAX_REQUEST_BYTES) refuse();
    });
    socket.on("error", () => socket.destroy());
  });
  server.on("error", () => {
    // A failed listen or accept must not end the service; the agent is then absent.
  });
  // The socket is created 0600 (umask), and chmod'ed again once listening; the directory's 0700 is
  // what keeps other users out. process.umask() is not allowed in worker threads: there only the
  // directory and the chmod apply.
  let old: number | undefined;
  try {
    old = process.umask(0o177);
  } catch {}
  try {
    // exclusive: in a cluster worker, listen here rather than through the primary.
    server.listen({ path, exclusive: true });
  } finally {
    if (old !== undefined) process.umask(old);
  }
  server.unref();
  const cleanup = () => {
    try {
      unlinkSync(path);
    } catch {}
  };
  server.once("listening", () => {
    try {
      chmodSync(path, 0o600);
    } catch {}
  });
  process.once("exit", cleanup);
  running = {
    path,
    stop() {
      server.close();
      cleanup();
      process.removeListener("exit", cleanup);
      running = undefined;
    },
  };
  return running;
}
