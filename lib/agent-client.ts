/**
 * Asking a process's agent (agent.ts) for its own full reading: found by the process's pid in its
 * user's agent directories; a socket whose process is gone, or that refuses connections, is stale:
 * ignored, and removed where this user may.
 */
import { existsSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { agentDirs } from "./agent";
import { commonFindings, type HostProcess, type HostView, type ProcessTree, type ProcfsAllocator } from "./host-view";
import { parseSnapshot } from "./parse";
import type { Snapshot, Tier } from "./types";
import { servingAllocator } from "./views";

const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

function uidOf(pid: number): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

function removeStale(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // another user's directory: left alone, and ignored
  }
}

/** The agent socket of a process, when one exists and the process is alive. */
export function agentSocket(pid: number): string | undefined {
  const uid = uidOf(pid);
  if (uid === undefined) return undefined;
  for (const dir of agentDirs(uid)) {
    const path = join(dir, `${pid}.sock`);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** Removes the sockets of processes that no longer run from this user's agent directories. */
export function cleanStaleSockets(uid: number = process.getuid?.() ?? -1): number {
  let removed = 0;
  for (const dir of agentDirs(uid)) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^(\d+)\.sock$/.exec(name);
      if (m && !alive(Number(m[1]))) {
        removeStale(join(dir, name));
        removed++;
      }
    }
  }
  return removed;
}

/**
 * The process's own reading through its agent, or undefined (no agent, a stale socket, no answer
 * within `timeoutMs`, an answer that is not a snapshot).
 */
export function askAgent(pid: number, tier: Tier, timeoutMs = 3000): Promise<Snapshot | undefined> {
  const path = agentSocket(pid);
  if (path === undefined) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let done = false;
    let buffer = "";
    const finish = (s: Snapshot | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(s);
    };
    const socket = connect(path);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${JSON.stringify({ op: "reading", tier })}\n`));
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_ANSWER_BYTES) return finish(undefined);
      const nl = buffer.indexOf("\n");
      if (nl < 0) return;
      try {
        const answer = JSON.parse(buffer.slice(0, nl)) as { ok?: boolean; snapshot?: unknown };
        const s = answer.ok === true ? parseSnapshot(answer.snapshot) : undefined;
        finish(s !== undefined && s.pid === pid ? s : undefined);
      } catch {
        finish(undefined);
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // Nobody listens: the process died without removing its socket, or the pid was reused.
      if (error.code === "ECONNREFUSED" || !alive(pid)) removeStale(path);
      finish(undefined);
    });
    socket.on("end", () => finish(undefined));
  });
}

/** The host view with each row that has an agent filled from the process's own reading. */
export async function withAgents<V extends HostView>(view: V, tier: Tier): Promise<V> {
  cleanStaleSockets();
  const rows = await Promise.all(
    view.processes.map(async (p): Promise<HostProcess> => {
      const s = await askAgent(p.pid, tier);
      if (s === undefined) return p;
      const heap = servingAllocator(s);
      return {
        ...p,
        source: "agent",
        ...(heap
          ? {
              allocator: { name: heap.allocator as ProcfsAllocator, how: p.allocator?.how ?? "libc" },
              agent: {
                allocator: heap.allocator,
                ...(heap.version ? { version: heap.version } : {}),
                ...(heap.allocatedBytes !== undefined ? { allocatedBytes: heap.allocatedBytes } : {}),
                findings: (s.findings ?? []).map((f) => f.id),
              },
            }
          : { agent: { allocator: "unknown", findings: (s.findings ?? []).map((f) => f.id) } }),
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
