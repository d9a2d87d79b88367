/**
 * Where a user's agents listen: a per-user directory, mode 0700, its user's own, never a link, and
 * a socket path that fits in sun_path. The agent creates it; the CLI looks in it (client.ts).
 */
import { lstatSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { errorText, is } from "../../core";

/** The mode of an agent directory: its user's alone. */
export const AGENT_DIR_MODE = 0o700;
/** sockaddr_un's sun_path holds 108 bytes with the terminating NUL; libuv cuts a longer path silently. */
export const MAX_SOCKET_PATH_BYTES = 107;
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

/** Whether a directory is safe for this user's sockets: its own, a directory, not a link, reachable by it alone. */
function ownedPrivateDir(dir: string, uid: number): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o777) === AGENT_DIR_MODE;
  } catch {
    return false;
  }
}

/**
 * The socket path this process's agent uses, its directory created 0700 when missing: the first
 * directory that is safe and whose socket path fits in sun_path. Throws INVALID_OPTION when none is.
 */
export function socketPath(where: string, uid: number): string {
  const tried: string[] = [];
  for (const dir of agentDirs(uid)) {
    const path = join(dir, `${process.pid}.sock`);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      tried.push(
        `${dir}: the socket path would be ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH_BYTES} a Unix socket's path may have`,
      );
      continue;
    }
    try {
      mkdirSync(dir, { mode: AGENT_DIR_MODE, recursive: false });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        tried.push(`${dir}: ${errorText(error, 120)}`);
        continue;
      }
    }
    if (ownedPrivateDir(dir, uid)) return path;
    tried.push(`${dir}: not a directory of this user's with mode 0700`);
  }
  throw is.invalidOption(where, `no private directory for the socket (${tried.join("; ")})`);
}
