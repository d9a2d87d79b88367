/**
 * Asking a process's agent (agent.ts) for its own full reading. The CLI often runs as root on a
 * host shared with other users, so an agent is trusted only when it is provably the target
 * process's own:
 * - before connecting, its directory is a real directory (lstat: not a symbolic link), owned by the
 *   target process's user, mode 0700; the socket is a socket owned by that user; and, when this
 *   user may read the target's descriptors, the socket's inode (from the target's
 *   `/proc/<pid>/net/unix`) is one of the target's own descriptors (`/proc/<pid>/fd/* →
 *   socket:[inode]`);
 * - after connecting, the answer is a snapshot of the target's pid.
 * Anything else is not used: the row or reading comes from procfs, with the reason. A stale socket
 * (its process gone) is removed only from this user's own verified directories: nothing is ever
 * deleted through a directory another user could have made or swapped.
 */
import { connect } from "node:net";
import type { Snapshot, Tier } from "../../core";
import {
  commonFindings,
  type HostProcess,
  type HostView,
  keyFigures,
  type ProcessTree,
  type ProcfsAllocator,
  parseSnapshot,
  servingAllocator,
} from "../../core";
import { cleanStaleSockets, findAgent, removeStale } from "./find";

export { type AgentLookup, agentSocket, cleanStaleSockets, dirProblem, findAgent, socketProblem } from "./find";

const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** What asking a process's agent came to: its reading, or why none is used (absent: it runs no agent). */
export type AgentAnswer = { snapshot: Snapshot } | { refused: string } | undefined;

/**
 * The process's own reading through its agent when one may be trusted; `{ refused }` with the
 * reason when an agent was found and not trusted, did not answer within `timeoutMs`, or answered
 * something that is not this process's snapshot; undefined when it runs no agent.
 */
export function askAgent(
  pid: number,
  tier: Tier,
  timeoutMs = 3000,
  sites?: number,
  windowMs?: number,
): Promise<AgentAnswer> {
  const found = findAgent(pid);
  if (found === undefined || "refused" in found) return Promise.resolve(found);
  const { path, dir } = found;
  return new Promise((resolve) => {
    let done = false;
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (a: AgentAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(a);
    };
    const socket = connect(path);
    const timer = setTimeout(
      () => finish({ refused: `its agent did not answer within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    const ask = {
      op: "reading",
      tier,
      ...(sites !== undefined ? { sites } : {}),
      ...(windowMs !== undefined ? { windowMs } : {}),
    };
    socket.on("connect", () => socket.write(`${JSON.stringify(ask)}\n`));
    socket.on("data", (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      size += nl < 0 ? chunk.length : nl;
      if (size > MAX_ANSWER_BYTES) return finish({ refused: "its agent's answer was too large" });
      chunks.push(nl < 0 ? chunk : chunk.subarray(0, nl));
      if (nl < 0) return;
      finish(answerOf(Buffer.concat(chunks).toString("utf8"), pid));
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // Nobody listens: the process died without removing its socket (removed when it is this
      // user's, in a verified directory), or its pid was reused.
      if (error.code === "ECONNREFUSED") removeStale(dir, `${pid}.sock`, pid);
      finish({ refused: `its agent could not be reached (${error.code ?? "error"})` });
    });
    socket.on("end", () => finish({ refused: "its agent closed the connection without an answer" }));
  });
}

/** An agent's answer line as this process's snapshot, or why it is not used. */
function answerOf(line: string, pid: number): AgentAnswer {
  let answer: { ok?: unknown; snapshot?: unknown; error?: unknown };
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch {
    return { refused: "its agent's answer is not JSON" };
  }
  if (answer === null || typeof answer !== "object" || answer.ok !== true)
    return { refused: "its agent refused the request" };
  let s: Snapshot;
  try {
    s = parseSnapshot(answer.snapshot);
  } catch {
    return { refused: "its agent's answer is not a reading" };
  }
  if (s.pid !== pid) return { refused: `its agent answered a reading of process ${s.pid}, not of ${pid}` };
  return { snapshot: s };
}

/** What a host view's row shows of a process's own reading: its serving allocator, native heap (its key figure) and findings. */
export function agentFigures(s: Snapshot): NonNullable<HostProcess["agent"]> {
  const serving = servingAllocator(s);
  const native = keyFigures(s).nativeHeap;
  return {
    allocator: serving?.allocator ?? "unknown",
    ...(serving?.version ? { version: serving.version } : {}),
    ...(native ? { nativeHeapBytes: native.bytes, nativeHeapCounter: native.counter } : {}),
    findings: (s.findings ?? []).map((f) => f.id),
  };
}

/** The host view with each row that has an agent filled from the process's own reading. */
export async function withAgents<V extends HostView>(view: V, tier: Tier): Promise<V> {
  cleanStaleSockets();
  const rows = await Promise.all(
    view.processes.map(async (p): Promise<HostProcess> => {
      const a = await askAgent(p.pid, tier);
      if (a === undefined) return p;
      if ("refused" in a) return { ...p, agentNotUsed: a.refused };
      const serving = servingAllocator(a.snapshot)?.allocator;
      return {
        ...p,
        source: "agent",
        ...(serving ? { allocator: { name: serving as ProcfsAllocator, how: p.allocator?.how ?? "libc" } } : {}),
        agent: agentFigures(a.snapshot),
      };
    }),
  );
  // A tree: the findings its processes raise in their own readings, where several raise the same.
  if ("findings" in view) {
    const tree = view as unknown as ProcessTree;
    const filled: ProcessTree = { ...tree, processes: rows, findings: [...tree.findings, ...commonFindings(rows)] };
    return filled as unknown as V;
  }
  return { ...view, processes: rows };
}
