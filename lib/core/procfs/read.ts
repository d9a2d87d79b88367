/** procfs I/O. The root is injectable so tests can feed captured and broken trees. */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { errorText, HeapstateError } from "../base/errors";
import type { Text } from "./scan";

export const DEFAULT_PROC_ROOT = "/proc";

/**
 * Files the kernel generates as one record, so one read returns all of them. smaps is one record
 * per mapping and comes a page of records per read: it is read to the end every time.
 */
const singleRecord = new Set(["status", "statm", "smaps_rollup"]);

/** Reads `<root>/<pid>/<file>` as text; errors keep their errno `code`. */
export function readProcFile(root: string, pid: number | "self", file: string): string {
  const own = ownPath(root, pid, file);
  return own === undefined ? readOther(root, pid, file) : readKept(own);
}

/**
 * Reads `<root>/<pid>/<file>` for a scanner (lib/procfs/scan.ts): the own process's single-record
 * files come as their bytes in the reused buffer, valid until the next kept read (scan them at
 * once); other files as text.
 */
export function readProcText(root: string, pid: number | "self", file: string): Text {
  const own = ownPath(root, pid, file);
  return own === undefined ? readOther(root, pid, file) : readKeptBytes(own);
}

function readOther(root: string, pid: number | "self", file: string): string {
  return readFileSync(root === DEFAULT_PROC_ROOT ? `/proc/${pid}/${file}` : join(root, String(pid), file), "utf8");
}

/** The path of an own-process single-record file (read through a kept descriptor), else undefined. */
function ownPath(root: string, pid: number | "self", file: string): string | undefined {
  if (pid !== process.pid || !singleRecord.has(file)) return undefined;
  if (root !== DEFAULT_PROC_ROOT) return join(root, String(pid), file);
  // The own process's paths, built once (these are read at every reading).
  let path = ownPaths.get(file);
  if (path === undefined) {
    path = `/proc/${pid}/${file}`;
    ownPaths.set(file, path);
  }
  return path;
}
const ownPaths = new Map<string, string>();

/**
 * Small single-record files of the own process (status, smaps_rollup, the cgroup's files) are read through
 * a descriptor kept open and a reused buffer: open and close are most of the cost of a small
 * procfs or cgroupfs file, and a read at offset 0 makes the kernel generate the content afresh.
 * One read call, no end-of-file read (the buffer grows when a file fills it). The descriptors stay
 * open for the life of the thread (a handful, one per file). Never used for another process: its
 * pid could be reused by a new process while a descriptor is kept.
 */
const kept = new Map<string, number>();
let buffer = Buffer.allocUnsafe(16 * 1024);

/** A kept file's text (latin1: these files are ASCII, and decoding latin1 is a copy, not a UTF-8 validation). */
export function readKept(path: string): string {
  const n = readInto(path); // first: it may replace the buffer with a larger one
  return buffer.toString("latin1", 0, n);
}

/** A kept file's bytes: a view of the reused buffer, valid until the next kept read. */
export function readKeptBytes(path: string): Buffer {
  const n = readInto(path); // first: it may replace the buffer with a larger one
  return buffer.subarray(0, n);
}

/** Reads a kept file into `buffer` (grown until the file fits); returns its length. */
function readInto(path: string): number {
  let fd = kept.get(path);
  if (fd === undefined) {
    fd = openSync(path, "r");
    kept.set(path, fd);
  }
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, 0);
      if (n < buffer.length) return n;
      buffer = Buffer.allocUnsafe(buffer.length * 2);
    }
  } catch (error) {
    kept.delete(path);
    try {
      closeSync(fd);
    } catch {
      // already unusable
    }
    throw error;
  }
}

/**
 * Reads `<root>/<pid>/<file>` by chunks of 64 KiB, handing each to `onChunk` as text (a multi-byte
 * character split between chunks is kept whole). Errors keep their errno `code`.
 */
export function streamProcFile(
  root: string,
  pid: number | "self",
  file: string,
  onChunk: (text: string) => void,
): void {
  const path = root === DEFAULT_PROC_ROOT ? `/proc/${pid}/${file}` : join(root, String(pid), file);
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const decoder = new StringDecoder("utf8");
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      onChunk(decoder.write(chunk.subarray(0, n)));
    }
    const tail = decoder.end();
    if (tail) onChunk(tail);
  } finally {
    closeSync(fd);
  }
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
  return new HeapstateError("PROCFS_UNAVAILABLE", `reading ${file} of process ${pid} failed: ${errorText(error)}`, {
    cause: error,
  });
}
