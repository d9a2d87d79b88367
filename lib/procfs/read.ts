/** procfs I/O. The root is injectable so tests can feed captured and broken trees. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HeapstateError } from "../errors";

export const DEFAULT_PROC_ROOT = "/proc";

/** Reads `<root>/<pid>/<file>`; errors keep their errno `code`. */
export function readProcFile(root: string, pid: number | "self", file: string): string {
  return readFileSync(join(root, String(pid), file), "utf8");
}

/** The package's error for a process file that could not be read. */
export function processError(pid: number, file: string, error: unknown): HeapstateError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ESRCH") {
    return new HeapstateError("NO_SUCH_PROCESS", `process ${pid} does not exist (or exited while being read)`, {
      cause: error,
    });
  }
  if (code === "EACCES" || code === "EPERM") {
    return new HeapstateError(
      "PROCESS_NOT_READABLE",
      `process ${pid} may not be read by this user (${file}: ${code})`,
      {
        cause: error,
      },
    );
  }
  return new HeapstateError(
    "PROCFS_UNAVAILABLE",
    `reading ${file} of process ${pid} failed: ${(error as Error).message}`,
    {
      cause: error,
    },
  );
}
