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

/**
 * Reads `paths` ahead for the reading under way; returns how many were read (0 when the addon
 * cannot, or reading ahead is off). A file that could not be read is left to the kept read, which
 * then reads it from JavaScript and reports its error as it always did.
 */
export function readKernelFiles(paths: readonly string[]): number {
  if (!enabled || paths.length === 0 || paths.length > 64) return 0;
  const binding = native();
  if (binding?.keepFiles === undefined || binding.readFiles === undefined) return 0;
  if (!sameList(kept, paths)) {
    generation = binding.keepFiles([...paths]);
    kept = [...paths];
  }
  if (lengths.length < paths.length) {
    lengths = new Int32Array(paths.length * 2);
    starts = new Int32Array(paths.length * 2);
    given = new Int32Array(paths.length * 2);
  }
  let n = binding.readFiles(out, lengths, generation);
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
