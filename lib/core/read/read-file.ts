/**
 * Reads a file a user named (a saved snapshot, a baseline) as UTF-8 text, up to a bound: a FIFO,
 * /dev/zero or a multi-gigabyte file must give an error, not hang or exhaust the heap.
 */
import { closeSync, openSync, readSync } from "node:fs";

/** Saved snapshots are kilobytes to a few megabytes (a deep reading with every mapping); this is far above. */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

/** Reads `path`; throws an Error with the errno `code` kept, or "larger than …" past `max` bytes. */
export function readBounded(path: string, max = MAX_FILE_BYTES): string {
  const fd = openSync(path, "r");
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, max + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > max) throw Object.assign(new Error(`larger than ${max} bytes`), { code: "EFBIG" });
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } finally {
    closeSync(fd);
  }
}
