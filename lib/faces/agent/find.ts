/**
 * Finding a process's agent socket, and trusting it only when it is provably the process's own
 * (client.ts says the rules); removing stale sockets only from this user's own verified directories.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats, unlinkSync } from "node:fs";
import { join } from "node:path";
import { AGENT_DIR_MODE, agentDirs } from "./paths";

/** How many of a process's descriptors are looked at for the agent's socket, at most. */
const MAX_FDS_LOOKED_AT = 65_536;

/** The users of a process, from its status (world-readable): real (names the directory) and fs (owns what it creates). */
function uidsOf(pid: number): { real: number; fs: number } | undefined {
  try {
    const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? { real: Number(m[1]), fs: Number(m[4]) } : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    lstatSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Why `dir` may not hold the agent sockets of user `uid`, or undefined when it may: it must be a
 * directory itself (not a symbolic link to one), owned by that user, and reachable by nobody else
 * (mode 0700, as the agent creates it).
 */
export function dirProblem(dir: string, st: Stats, uid: number): string | undefined {
  if (st.isSymbolicLink()) return `${dir} is a symbolic link`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== uid) return `${dir} is owned by uid ${st.uid}, not by the process's user (uid ${uid})`;
  if ((st.mode & 0o777) !== AGENT_DIR_MODE)
    return `${dir} has mode 0${(st.mode & 0o777).toString(8)}, not 0${AGENT_DIR_MODE.toString(8)}`;
  return undefined;
}

/** Why the file at `path` is not an agent socket of user `uid`, or undefined when it is. */
export function socketProblem(path: string, st: Stats, uid: number): string | undefined {
  if (!st.isSocket()) return `${path} is not a socket`;
  if (st.uid !== uid) return `the socket ${path} is owned by uid ${st.uid}, not by the process's user (uid ${uid})`;
  if ((st.mode & 0o077) !== 0)
    return `the socket ${path} may be reached by other users (mode 0${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * The directories where process `pid` of user `uid` may have its agent: its own
 * `$XDG_RUNTIME_DIR/heapstate` (from its environment, when this user may read it; this CLI's own
 * when it runs as that user), then `/run/user/<uid>/heapstate` and `/tmp/heapstate-<uid>`.
 */
function candidateDirs(pid: number, uid: number): string[] {
  let xdg: string | undefined;
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
    xdg = env.find((e) => e.startsWith("XDG_RUNTIME_DIR="))?.slice("XDG_RUNTIME_DIR=".length);
  } catch {
    // another user's environment: its agent is looked for where its user's would be by default
  }
  const own = uid === (process.getuid?.() ?? -1) ? agentDirs(uid) : [];
  const theirs = agentDirs(uid, xdg !== undefined ? { XDG_RUNTIME_DIR: xdg } : {});
  return [...new Set([...theirs, ...own])];
}

/** The inodes of the listening Unix sockets bound to `path` in process `pid`'s network namespace. */
function listeningInodes(pid: number, path: string): Set<number> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/unix`, "latin1");
  } catch {
    return undefined;
  }
  const inodes = new Set<number>();
  // "Num: RefCount Protocol Flags Type St Inode Path"; Flags 00010000 is __SO_ACCEPTCON (listening).
  for (const line of text.split("\n")) {
    const m = /^\s*[0-9a-fA-F]+: [0-9A-Fa-f]+ [0-9A-Fa-f]+ ([0-9A-Fa-f]+) [0-9A-Fa-f]+ [0-9A-Fa-f]+ +(\d+) (.*)$/.exec(
      line,
    );
    if (m && m[3] === path && (Number.parseInt(m[1] as string, 16) & 0x10000) !== 0) inodes.add(Number(m[2]));
  }
  return inodes;
}

/** Whether one of process `pid`'s descriptors is a socket in `inodes`; undefined when they may not be read. */
function holdsSocket(pid: number, inodes: Set<number>): boolean | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds.slice(0, MAX_FDS_LOOKED_AT)) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m && inodes.has(Number(m[1]))) return true;
  }
  return false;
}

/** What was found of a process's agent: a socket to ask, one that must not be used (and why), or nothing. */
export type AgentLookup = { path: string; dir: string; uid: number } | { refused: string } | undefined;

/**
 * The agent socket of process `pid`, checked as the file's opening comment says before anything
 * connects to it; `{ refused }` names why a socket found for it is not trusted; undefined when it
 * runs no agent (or is gone).
 */
export function findAgent(pid: number): AgentLookup {
  const uids = uidsOf(pid);
  if (uids === undefined) return undefined;
  let refused: string | undefined;
  for (const dir of candidateDirs(pid, uids.real)) {
    const path = join(dir, `${pid}.sock`);
    const dirStat = lstatOrUndefined(dir);
    if (dirStat === undefined) continue;
    const sockStat = lstatOrUndefined(path);
    if (sockStat === undefined) continue; // no agent of this pid here
    const problem = dirProblem(dir, dirStat, uids.fs) ?? socketProblem(path, sockStat, uids.fs);
    if (problem !== undefined) {
      refused ??= problem;
      continue;
    }
    const inodes = listeningInodes(pid, path);
    if (inodes !== undefined && inodes.size === 0) {
      refused ??= `nothing listens on ${path}`;
      continue;
    }
    if (inodes !== undefined && holdsSocket(pid, inodes) === false) {
      refused ??= `the socket ${path} is not one of process ${pid}'s own descriptors`;
      continue;
    }
    return { path, dir, uid: uids.fs };
  }
  return refused !== undefined ? { refused } : undefined;
}

/** The agent socket of a process when one exists that may be trusted (see {@link findAgent}). */
export function agentSocket(pid: number): string | undefined {
  const found = findAgent(pid);
  return found && "path" in found ? found.path : undefined;
}

/** Whether `dir` is one of this user's own verified agent directories (the only place anything is removed). */
function ownVerifiedDir(dir: string): boolean {
  const uid = process.getuid?.() ?? -1;
  const st = lstatOrUndefined(dir);
  return st !== undefined && dirProblem(dir, st, uid) === undefined;
}

/** Removes `path` when it is a socket of this user's in one of its verified directories and its process is gone. */
export function removeStale(dir: string, name: string, pid: number): boolean {
  const uid = process.getuid?.() ?? -1;
  if (alive(pid) || !ownVerifiedDir(dir)) return false;
  const path = join(dir, name);
  const st = lstatOrUndefined(path);
  if (st === undefined || socketProblem(path, st, uid) !== undefined) return false;
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the sockets of processes that no longer run from this user's own agent directories, when
 * each directory passes the checks (a real directory of this user's, mode 0700) and each entry is
 * a socket of this user's: a directory another user made in `/tmp` under this user's name, or a
 * symbolic link to somewhere else, is left alone.
 */
export function cleanStaleSockets(): number {
  let removed = 0;
  for (const dir of agentDirs(process.getuid?.() ?? -1)) {
    if (!ownVerifiedDir(dir)) continue;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^([1-9]\d{0,9})\.sock$/.exec(name);
      if (m && removeStale(dir, name, Number(m[1]))) removed++;
    }
  }
  return removed;
}
