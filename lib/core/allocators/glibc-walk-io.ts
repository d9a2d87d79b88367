/**
 * This process's own memory as the walk reads it: chunk headers through /proc/self/mem, never a
 * page that /proc/self/pagemap shows absent, and the mappings of /proc/self/maps.
 */
import { readSync } from "node:fs";

/** A thread arena's heap: 64 MiB, aligned to its size (HEAP_MAX_SIZE). */
export const HEAP_MAX = 64 * 1024 * 1024;

/**
 * Reads of our own memory through /proc/self/mem, never of a page pagemap shows absent. The window
 * grows while the walk reads on in order (small chunks packed on every page: few large reads) and
 * falls back to one page when it jumps (large chunks: one page per header, not their contents).
 */
export class Memory {
  private start = 0;
  private end = 0;
  private size: number;
  /** Bytes copied: what the walk costs, besides the calls. */
  bytesRead = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly fd: number,
    private readonly present: (addr: number) => boolean,
    private readonly page: number,
  ) {
    this.size = page;
  }

  /** Forget the window: the next read sees what other code wrote since. */
  invalidate(): void {
    this.end = 0;
  }

  /**
   * The 8 bytes at addr, or undefined when their page is not resident (we do not fault it in) or no
   * longer mapped.
   */
  u64(addr: number): number | undefined {
    if (addr < this.start || addr + 8 > this.end) {
      if (!this.present(addr) || !this.present(addr + 7)) return undefined;
      this.size =
        addr >= this.end && addr < this.end + this.page ? Math.min(this.buf.length, this.size * 2) : this.page;
      let end = addr - (addr % this.page) + this.page;
      while (end - addr < this.size && this.present(end)) end += this.page;
      const len = Math.min(this.size, end - addr);
      let got: number;
      try {
        got = readSync(this.fd, this.buf, 0, len, addr);
      } catch {
        return undefined; // EIO: another thread unmapped or shrank the heap meanwhile
      }
      if (got < 8) return undefined;
      this.bytesRead += got;
      this.start = addr;
      this.end = addr + got;
    }
    const o = addr - this.start;
    // Sizes stay below 2^53: the high word is small.
    return this.buf.readUInt32LE(o) + this.buf.readUInt32LE(o + 4) * 0x100000000;
  }
}

/** One mapping's page residency from pagemap: bit 63 present (bit 62, swapped, counts as absent). */
export class Residency {
  readonly bits: Uint8Array;
  /** Pages past `mapped` (the heap may grow while walked) are asked of pagemap one by one. */
  constructor(
    readonly start: number,
    readonly end: number,
    mapped: number,
    private readonly pagemapFd: number,
    readonly page: number,
    private readonly buf: Buffer,
  ) {
    this.bits = new Uint8Array((end - start) / page);
    const pages = (mapped - start) / page;
    for (let i = 0; i < pages; ) {
      const buf = this.buf;
      const n = Math.min(pages - i, buf.length / 8);
      const got = readSync(pagemapFd, buf, 0, n * 8, ((start / page + i) * 8) as number);
      if (got !== n * 8) throw new Error("short read of /proc/self/pagemap");
      for (let j = 0; j < n; j++) this.bits[i + j] = (buf[j * 8 + 7] as number) & 0x80 ? 1 : 0;
      i += n;
    }
  }
  present(addr: number): boolean {
    return addr >= this.start && addr < this.end && this.bits[Math.floor((addr - this.start) / this.page)] === 1;
  }
  /**
   * Whether addr's page is resident now, asking pagemap again when it was not: a collection on
   * this thread mallocs while we walk (its worklists), and a header it wrote is on a page that
   * became resident after pagemap was read.
   */
  presentNow(addr: number): boolean {
    if (this.present(addr)) return true;
    if (addr < this.start || addr >= this.end) return false;
    const i = Math.floor((addr - this.start) / this.page);
    if (readSync(this.pagemapFd, this.buf, 0, 8, (this.start / this.page + i) * 8) !== 8) return false;
    this.bits[i] = (this.buf[7] as number) & 0x80 ? 1 : 0;
    return this.bits[i] === 1;
  }
  /** Bytes of [from, to) on resident pages. */
  residentBytes(from: number, to: number): number {
    let sum = 0;
    for (let a = from; a < to; ) {
      const next = Math.min(to, a - ((a - this.start) % this.page) + this.page);
      if (this.present(a)) sum += next - a;
      a = next;
    }
    return sum;
  }
}

export interface MapLine {
  start: number;
  end: number;
  perms: string;
  path: string;
  inode: string;
}

export function parseMaps(text: string): MapLine[] {
  const out: MapLine[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: Number.parseInt(m[1] as string, 16),
      end: Number.parseInt(m[2] as string, 16),
      perms: m[3] as string,
      inode: m[4] as string,
      path: m[5] as string,
    });
  }
  return out;
}

export function anonymous(m: MapLine): boolean {
  return m.path === "" && m.inode === "0";
}

/**
 * The shape of another arena's heap (as regions.ts tells it): an anonymous rw-p mapping at a
 * 64 MiB boundary that is the whole 64 MiB, or whose PROT_NONE tail right after it fills them.
 */
export function isArenaHeap(m: MapLine, next: MapLine | undefined): boolean {
  if (!anonymous(m) || m.perms !== "rw-p" || m.start % HEAP_MAX !== 0) return false;
  if (m.end - m.start === HEAP_MAX) return true;
  return (
    m.end - m.start < HEAP_MAX &&
    next !== undefined &&
    anonymous(next) &&
    next.perms === "---p" &&
    next.start === m.end &&
    next.end === m.start + HEAP_MAX
  );
}
