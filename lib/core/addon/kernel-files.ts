/**
 * The own process's small kernel files of a reading (status, smaps_rollup, its cgroup's files),
 * read in one call into the addon through descriptors it keeps: a reading made one crossing per
 * file (fs.readSync), and on this kind of machine the calls, not the bytes, set the floor. The
 * bytes are handed to procfs/read.ts's kept reads, so the same TypeScript parses them as parses
 * what JavaScript reads: the two paths agree by construction, and test/native/kernel-files.test.ts
 * holds them to it. Without the addon (or with an addon built before readFiles), nothing is read
 * ahead and each file is read from JavaScript as before.
 */
import { prefetchKept } from "../procfs/read";
import { native } from "./native";

let kept: string[] = [];
let generation = Number.NaN;
let out = new Uint8Array(16 * 1024);
let outBytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
let lengths = new Int32Array(16);
let starts = new Int32Array(16);
let given = new Int32Array(16);
let enabled = true;

/** Turns reading ahead off or on (tests compare the two paths); on by default. */
export function setKernelFilesNative(on: boolean): void {
  enabled = on;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What readNumbers() needs to read the kept files in its own call (see {@link filesAhead}). */
export interface FilesAhead {
  out: Uint8Array;
  lengths: Int32Array;
  generation: number;
  /** readFiles()'s answer, put here by the call; NOT_READ until then. */
  result: Float64Array;
}

/** result[0] before the call: an addon that did not read the files leaves it so. */
const NOT_READ = Number.NEGATIVE_INFINITY;
const ahead: FilesAhead = { out, lengths, generation, result: new Float64Array(1) };

/** Keeps `paths` in the addon when they are not the list it keeps; false when it cannot. */
function keep(paths: readonly string[]): boolean {
  if (!enabled || paths.length === 0 || paths.length > 64) return false;
  const binding = native();
  if (binding?.keepFiles === undefined || binding.readFiles === undefined) return false;
  if (!sameList(kept, paths)) {
    generation = binding.keepFiles([...paths]);
    kept = [...paths];
  }
  if (lengths.length < paths.length) {
    lengths = new Int32Array(paths.length * 2);
    starts = new Int32Array(paths.length * 2);
    given = new Int32Array(paths.length * 2);
  }
  return true;
}

/**
 * The arguments with which the allocators' readNumbers() call reads `paths` too, in the same
 * crossing (the fast tier's reads in one native call); undefined when the addon cannot. Hand the
 * call's answer to {@link takeFilesAhead}.
 */
export function filesAhead(paths: readonly string[]): FilesAhead | undefined {
  if (!keep(paths)) return undefined;
  ahead.out = out;
  ahead.lengths = lengths;
  ahead.generation = generation;
  (ahead.result as Float64Array)[0] = NOT_READ;
  return ahead;
}

/**
 * After readNumbers() was called with {@link filesAhead}'s arguments: the files it read are handed
 * to the kept reads (read again alone when its buffer was short or another list was kept
 * meanwhile); returns how many were read, or undefined when the call did not read them (read()
 * was used, or an addon without it), and then {@link readKernelFiles} reads them as before.
 */
export function takeFilesAhead(paths: readonly string[], a: FilesAhead): number | undefined {
  const n = a.result[0] as number;
  if (n === NOT_READ) return undefined;
  return settle(paths, n);
}

/**
 * Reads `paths` ahead for the reading under way; returns how many were read (0 when the addon
 * cannot, or reading ahead is off). A file that could not be read is left to the kept read, which
 * then reads it from JavaScript and reports its error as it always did.
 */
export function readKernelFiles(paths: readonly string[]): number {
  if (!keep(paths)) return 0;
  const binding = native();
  const n = binding?.readFiles?.(out, lengths, generation);
  return n === undefined ? 0 : settle(paths, n);
}

/** A readFiles() answer made good (kept again, or a larger buffer), and its files handed over. */
function settle(paths: readonly string[], answer: number): number {
  const binding = native();
  if (binding?.keepFiles === undefined || binding.readFiles === undefined) return 0;
  let n = answer;
  if (Number.isNaN(n)) {
    // Another caller of the addon kept another list meanwhile: this one is kept again.
    generation = binding.keepFiles([...paths]);
    n = binding.readFiles(out, lengths, generation);
  }
  if (n < 0) {
    out = new Uint8Array(-n);
    outBytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    n = binding.readFiles(out, lengths, generation);
  }
  if (!(n >= 0)) return 0;
  let at = 0;
  let read = 0;
  for (let i = 0; i < paths.length; i++) {
    const length = lengths[i] as number;
    starts[i] = at;
    given[i] = length < 0 ? -1 : length;
    if (length < 0) continue;
    at += length;
    read++;
  }
  prefetchKept(kept, outBytes, starts, given);
  return read;
}
