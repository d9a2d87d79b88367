/**
 * The agent: a running process answers its own full reading on demand (as `jcmd <pid>
 * VM.native_memory` asks a JVM), so `heapstate show-host` and `--pid` can show its allocator's
 * counters, breakdown and findings instead of what procfs alone tells.
 *
 * It listens on a Unix domain socket `<pid>.sock` in a per-user directory: `$XDG_RUNTIME_DIR/heapstate`
 * when that is the user's own, else `/run/user/<uid>/heapstate`, else `/tmp/heapstate-<uid>`; the
 * directory is created mode 0700 and refused when it is not the user's, is a symbolic link or others
 * may reach it, and the socket is mode 0600: only the owning user (and root) can connect. One request
 * per line, JSON, at most 4 KiB (bytes): `{"op":"reading","tier":"standard"}` answers
 * `{"ok":true,"snapshot":{…}}`; `{"op":"trim"}` runs trim() only when the agent was started with
 * `trim: true`; anything else answers `{"ok":false,"error":"…"}`, and a request past 4 KiB closes
 * the connection.
 *
 * Whatever a client does, the host's cost stays bounded: requests are answered one at a time per
 * connection, and the next is not read until the answer is written (a client that never reads
 * holds one answer, not thousands); all connections share one queue, and after each answer the
 * agent yields the event loop for as long as the answer took (it takes at most half of it); at
 * most 8 connections at once (the rest get a line saying so); a connection is closed when it has
 * sent no complete request for 10 s, and after 30 s whatever it does. Readings are the repeated
 * reader's (glibc's costly walk backs off, whoever asks). The server never keeps the process alive,
 * and the socket is removed when the process exits, and on SIGTERM and SIGINT when nothing else
 * handles them (the signal then does what it would have done).
 */
import { chmodSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { isMainThread } from "node:worker_threads";
import {
  collectRepeated,
  defaultProcess,
  errorText,
  is,
  nowMicros,
  parseReadRequest,
  sampleNativeSites,
  trim,
} from "../../core";
import { socketPath } from "./paths";

export { AGENT_DIR_MODE, agentDirs, MAX_SOCKET_PATH_BYTES } from "./paths";

export const MAX_REQUEST_BYTES = 4096;
/** Connections served at once; more are answered with an error line and closed. */
export const MAX_CONNECTIONS = 8;
/** A connection that has sent no complete request for this long is closed. */
export const IDLE_MS = 10_000;
/** A connection is closed this long after it opened, whatever it does. */
export const DEADLINE_MS = 30_000;
/** The longest a yield after an answer lasts (ms): a very slow reading does not silence the agent for long. */
const MAX_YIELD_MS = 1000;

export interface AgentOptions {
  /** Allow `{"op":"trim"}` (default false). */
  trim?: boolean;
}

export interface Agent {
  /** The socket's path. */
  readonly path: string;
  stop(): void;
}

/** The longest sampling window a request may ask (ms): it must end, and its reading be written, within DEADLINE_MS. */
export const MAX_WINDOW_MS = 20_000;

function handle(line: string, allowTrim: boolean): object | Promise<object> {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    return { ok: false, error: "the request is not JSON (one object per line)" };
  }
  if (request === null || typeof request !== "object" || Array.isArray(request))
    return { ok: false, error: "the request must be a JSON object" };
  const r = request as { op?: unknown; tier?: unknown; sites?: unknown; windowMs?: unknown };
  if (r.op === "reading") {
    const request = parseReadRequest({ tier: r.tier, sites: r.sites });
    if ("error" in request) return { ok: false, error: request.error };
    if (r.windowMs !== undefined && r.windowMs !== null) {
      // jemalloc's sampling switched on for a window (sampleNativeSites): the queue waits for it.
      const w = r.windowMs;
      if (typeof w !== "number" || !Number.isInteger(w) || w < 1 || w > MAX_WINDOW_MS)
        return { ok: false, error: `windowMs must be a whole number of milliseconds from 1 to ${MAX_WINDOW_MS}` };
      if (request.sites === undefined) return { ok: false, error: "windowMs goes with sites" };
      return sampleNativeSites({ durationMs: w, top: request.sites }).then((snapshot) => ({ ok: true, snapshot }));
    }
    const sites = request.sites !== undefined ? { nativeSites: { top: request.sites } } : {};
    return { ok: true, snapshot: collectRepeated({ tier: request.tier, ...sites }) };
  }
  if (r.op === "trim") {
    if (!allowTrim) return { ok: false, error: "trim is not enabled in this agent (startAgent({ trim: true }))" };
    return { ok: true, trim: trim() };
  }
  return { ok: false, error: 'op must be "reading" (or "trim" where enabled)' };
}

/** One request waiting for its answer, and where the answer goes. */
interface Queued {
  line: string;
  reply: (body: object) => void;
}

/**
 * The one queue of every connection's requests: answered one at a time, and after each the event
 * loop is given back for as long as the answer took (at most {@link MAX_YIELD_MS}), so a burst of
 * requests, however they arrive, stalls the host no longer than one reading at a time.
 */
function requestQueue(allowTrim: boolean): (q: Queued) => void {
  const waiting: Queued[] = [];
  let busy = false;
  const next = () => {
    const q = waiting.shift();
    if (q === undefined) {
      busy = false;
      return;
    }
    const t = nowMicros();
    const finish = (body: object) => {
      try {
        q.reply(body);
      } catch {
        // an answer that could not be written: that connection's loss, not the queue's
      }
      const tookMs = (nowMicros() - t) / 1000;
      setTimeout(next, Math.min(MAX_YIELD_MS, tookMs)).unref();
    };
    let body: object | Promise<object>;
    try {
      body = handle(q.line, allowTrim);
    } catch (error) {
      body = { ok: false, error: errorText(error) };
    }
    // A sampling window answers later; the queue waits for it, one request at a time as ever.
    if (body instanceof Promise) body.then(finish, (error: unknown) => finish({ ok: false, error: errorText(error) }));
    else finish(body);
  };
  return (q) => {
    waiting.push(q);
    if (!busy) {
      busy = true;
      setImmediate(next).unref();
    }
  };
}

/** Serves one connection: one request at a time, the next read only once the answer is written. */
function serve(socket: Socket, enqueue: (q: Queued) => void, onClose: () => void): void {
  // A client connected must not keep the process alive either.
  socket.unref();
  let pending: Buffer = Buffer.alloc(0);
  let inFlight = false;
  let closed = false;
  const deadline = setTimeout(() => socket.destroy(), DEADLINE_MS).unref();
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => socket.destroy(), IDLE_MS).unref();
  };
  const write = (body: object, then?: () => void) => {
    if (closed) return;
    socket.write(`${JSON.stringify(body)}\n`, then === undefined ? undefined : () => then());
  };
  const refuse = () => {
    write({ ok: false, error: `a request is at most ${MAX_REQUEST_BYTES} bytes` });
    closed = true;
    pending = Buffer.alloc(0);
    socket.end();
  };
  const take = () => {
    if (closed || inFlight) return;
    const nl = pending.indexOf(0x0a);
    if (nl < 0) {
      if (pending.length > MAX_REQUEST_BYTES) refuse();
      else socket.resume();
      return;
    }
    if (nl > MAX_REQUEST_BYTES) return refuse();
    const line = pending.subarray(0, nl).toString("utf8");
    pending = pending.subarray(nl + 1);
    inFlight = true;
    if (idle) clearTimeout(idle);
    // Nothing more is read until this answer is written: a client that never reads holds one answer.
    socket.pause();
    enqueue({
      line,
      reply: (body) => {
        if (closed) return;
        armIdle();
        write(body, () => {
          inFlight = false;
          take();
        });
      },
    });
  };
  armIdle();
  socket.on("data", (chunk: Buffer) => {
    if (closed) return;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    take();
  });
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    closed = true;
    clearTimeout(deadline);
    if (idle) clearTimeout(idle);
    onClose();
  });
}

/**
 * The agent's server: each connection served in turn through the queue, and past
 * MAX_CONNECTIONS at once, refused with one line and closed.
 */
function agentServer(enqueue: ReturnType<typeof requestQueue>): Server {
  let open = 0;
  return createServer((socket) => {
    if (open >= MAX_CONNECTIONS) {
      socket.unref();
      socket.on("error", () => socket.destroy());
      // Closed as soon as the line is written (a Unix socket's peer keeps what was written to it):
      // refused connections hold no descriptor while the client lingers.
      socket.end(
        `${JSON.stringify({ ok: false, error: `the agent serves ${MAX_CONNECTIONS} connections at once: try again` })}\n`,
        () => socket.destroy(),
      );
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    open++;
    serve(socket, enqueue, () => {
      open--;
    });
  });
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
  const running = defaultProcess.agent;
  if (running) return running;
  // The socket is named by the process's pid: one agent per process, in its main thread.
  if (!isMainThread)
    throw is.invalidOption(where, "the agent runs in the main thread (a worker shares its process's pid)");
  const uid = process.getuid?.() ?? -1;
  const path = socketPath(where, uid);
  try {
    unlinkSync(path); // a stale socket of an earlier process with this pid
  } catch {}
  const server = agentServer(requestQueue(allowTrim));
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
  // On SIGTERM or SIGINT with no other listener, the process is about to be ended by the signal's
  // default action, and no exit handler runs then: the socket is removed, and the signal raised
  // again with this listener gone, so the process ends as it would have (status 128 + signal).
  // When the host listens too, the host decides; its exit then runs the exit handler.
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    cleanup();
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  };
  process.once("exit", cleanup);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const agent: Agent = {
    path,
    stop() {
      server.close();
      cleanup();
      process.removeListener("exit", cleanup);
      process.removeListener("SIGTERM", onSignal);
      process.removeListener("SIGINT", onSignal);
      if (defaultProcess.agent === agent) defaultProcess.agent = undefined;
    },
  };
  defaultProcess.agent = agent;
  return agent;
}
