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
export function ownPath(root: string, pid: number | "self", file: string): string | undefined {
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

/**
 * Files of the own process read ahead for the reading under way, all in one call into the addon
 * (addon/kernel-files.ts): a kept read of one of them takes its bytes from here, once. Cleared at
 * the end of every reading, so a later reading never sees them.
 */
interface ReadAhead {
  paths: readonly string[];
  /** One Buffer over the addon's output, made again only when that output is replaced. */
  bytes: Buffer;
  start: Int32Array;
  /** Each file's length, −1 once consumed (or not read). */
  length: Int32Array;
}
let ahead: ReadAhead | undefined;

/**
 * The files read ahead for the reading under way: path i's bytes are `bytes[start[i], start[i] +
 * length[i])`, consumed by the next kept read of it. Numbers and one Buffer, not an object per file:
 * a Buffer view per file, kept in a module's map until the reading's end, made young collections
 * promote 100 KiB each (test/e2e/weight.test.ts).
 */
export function prefetchKept(paths: readonly string[], bytes: Buffer, start: Int32Array, length: Int32Array): void {
  ahead = { paths, bytes, start, length };
}

/** Forgets every file read ahead (the end of a reading). */
export function clearPrefetched(): void {
  ahead = undefined;
}

/** A kept file's text (latin1: these files are ASCII, and decoding latin1 is a copy, not a UTF-8 validation). */
export function readKept(path: string): string {
  const ahead = takePrefetched(path);
  if (ahead !== undefined) return ahead.toString("latin1");
  const n = readInto(path); // first: it may replace the buffer with a larger one
  return buffer.toString("latin1", 0, n);
}

/** A kept file's bytes: a view of the reused buffer, valid until the next kept read. */
export function readKeptBytes(path: string): Buffer {
  const within = readKeptSpan(path);
  return within.subarray(keptSpan.start, keptSpan.end);
}

/**
 * Where the last {@link readKeptSpan} found its file: `[start, end)` of the buffer it returned.
 * One object for the module: a view made per file was an object per file per reading.
 */
export const keptSpan = { start: 0, end: 0 };

/**
 * A kept file's bytes without a view made for them: the buffer they lie in (the files read ahead,
 * or the reused buffer), with `keptSpan` saying where; valid until the next kept read. The fast
 * tier reads its few files this way at every reading.
 */
export function readKeptSpan(path: string): Buffer {
  const a = ahead;
  if (a !== undefined) {
    for (let i = 0; i < a.paths.length; i++) {
      if (a.paths[i] !== path) continue;
      const length = a.length[i] as number;
      if (length < 0) break;
      a.length[i] = -1;
      keptSpan.start = a.start[i] as number;
      keptSpan.end = keptSpan.start + length;
      return a.bytes;
    }
  }
  const n = readInto(path); // first: it may replace the buffer with a larger one
  keptSpan.start = 0;
  keptSpan.end = n;
  return buffer;
}

function takePrefetched(path: string): Buffer | undefined {
  const a = ahead;
  if (a === undefined) return undefined;
  for (let i = 0; i < a.paths.length; i++) {
    if (a.paths[i] !== path) continue;
    const length = a.length[i] as number;
    if (length < 0) return undefined;
    a.length[i] = -1;
    const start = a.start[i] as number;
    return a.bytes.subarray(start, start + length);
  }
  return undefined;
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
