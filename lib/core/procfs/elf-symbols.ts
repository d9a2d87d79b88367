/**
 * Names for code addresses, from the ELF files mapped into this process: `.symtab` (Node's official
 * binaries keep it) or else `.dynsym`, read from the file on disk, never through a tool or the
 * network. Only the symbols that hold one of the asked addresses have their names read, so
 * Node's 100 000-symbol table is scanned once and costs no more memory than the answer.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** A mapping of a file, as /proc/PID/maps lists it. */
export interface FileMapping {
  start: number;
  end: number;
  offset: number;
  path: string;
}

/** Where an address lies: the file, and the function when its symbol was found. */
export interface AddressName {
  library: string;
  symbol?: string;
}

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const STT_FUNC = 2;
/** A symbol table larger than this is not read (a corrupt or hostile file). */
const MAX_TABLE = 256 * 1024 * 1024;

/** /proc/PID/maps lines of files (a path that starts with "/"), executable or not. */
export function fileMappings(mapsText: string): FileMapping[] {
  const out: FileMapping[] = [];
  for (const line of mapsText.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S{4} ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: Number.parseInt(m[1] as string, 16),
      end: Number.parseInt(m[2] as string, 16),
      offset: Number.parseInt(m[3] as string, 16),
      path: (m[4] as string).replace(/ \(deleted\)$/, ""),
    });
  }
  return out;
}

function read(fd: number, at: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const n = readSync(fd, b, 0, length, at);
  if (n !== length) throw new Error("short read");
  return b;
}

const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

/** The ELF64 little-endian file's loadable segments and symbol sections. */
function layout(fd: number): { loads: Array<{ offset: number; vaddr: number; filesz: number }>; sections: Section[] } {
  const h = read(fd, 0, 64);
  if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1)
    throw new Error("not a 64-bit little-endian ELF file");
  const phoff = u64(h, 32);
  const shoff = u64(h, 40);
  const phentsize = h.readUInt16LE(54);
  const phnum = h.readUInt16LE(56);
  const shentsize = h.readUInt16LE(58);
  const shnum = h.readUInt16LE(60);
  if (phentsize < 56 || shentsize < 64 || phnum > 4096 || shnum > 65535) throw new Error("implausible ELF header");
  const ph = read(fd, phoff, phentsize * phnum);
  const loads: Array<{ offset: number; vaddr: number; filesz: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (ph.readUInt32LE(at) !== PT_LOAD) continue;
    loads.push({ offset: u64(ph, at + 8), vaddr: u64(ph, at + 16), filesz: u64(ph, at + 32) });
  }
  const sections: Section[] = [];
  if (shoff > 0 && shnum > 0) {
    const sh = read(fd, shoff, shentsize * shnum);
    for (let i = 0; i < shnum; i++) {
      const at = i * shentsize;
      sections.push({
        type: sh.readUInt32LE(at + 4),
        offset: u64(sh, at + 24),
        size: u64(sh, at + 32),
        link: sh.readUInt32LE(at + 40),
        entsize: u64(sh, at + 56),
      });
    }
  }
  return { loads, sections };
}

/** A NUL-terminated name at `at` in the string table (at most 4 KiB). */
function nameAt(fd: number, strtab: Section, at: number): string | undefined {
  if (at >= strtab.size) return undefined;
  const b = Buffer.alloc(Math.min(4096, strtab.size - at));
  const n = readSync(fd, b, 0, b.length, strtab.offset + at);
  const end = b.subarray(0, n).indexOf(0);
  return b.subarray(0, end < 0 ? n : end).toString("latin1");
}

/**
 * Names `vaddrs` (addresses in the file's own virtual address space) from one file's symbol
 * table: for each, the function symbol that holds it. Returns a map from vaddr to name.
 */
function symbolsOf(path: string, vaddrs: number[]): Map<number, string> {
  const out = new Map<number, string>();
  const fd = openSync(path, "r");
  try {
    if (!fstatSync(fd).isFile()) return out;
    const { sections } = layout(fd);
    const table = sections.find((s) => s.type === SHT_SYMTAB) ?? sections.find((s) => s.type === SHT_DYNSYM);
    const strtab = table ? sections[table.link] : undefined;
    if (!table || !strtab || table.entsize !== 24 || table.size > MAX_TABLE) return out;
    const sorted = [...new Set(vaddrs)].sort((a, b) => a - b);
    const best = new Map<number, { value: number; name: number }>();
    const chunk = Buffer.alloc(24 * 4096);
    for (let done = 0; done < table.size; ) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, table.size - done), table.offset + done);
      if (n <= 0) break;
      for (let at = 0; at + 24 <= n; at += 24) {
        if (((chunk[at + 4] as number) & 0xf) !== STT_FUNC) continue;
        const value = Number(chunk.readBigUInt64LE(at + 8));
        const size = Number(chunk.readBigUInt64LE(at + 16));
        if (value === 0 || size === 0) continue;
        // The first asked address at or above value, and every one below value + size.
        let lo = 0;
        let hi = sorted.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if ((sorted[mid] as number) < value) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < sorted.length && (sorted[i] as number) < value + size; i++) {
          const a = sorted[i] as number;
          const had = best.get(a);
          if (had === undefined || value > had.value) best.set(a, { value, name: chunk.readUInt32LE(at) });
        }
      }
      done += n - (n % 24);
    }
    for (const [a, { name }] of best) {
      const s = nameAt(fd, strtab, name);
      if (s) out.set(a, s);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * Names for `addresses` (return addresses: each is looked up one byte before, inside the call),
 * from the file mappings given. An address outside every file mapping (JIT code, V8's builtins
 * embedded in the binary are inside it) is named by nothing.
 */
export function nameAddresses(
  addresses: readonly number[],
  mappings: readonly FileMapping[],
): Map<number, AddressName> {
  const out = new Map<number, AddressName>();
  const byFile = new Map<string, Array<{ address: number; fileOffset: number }>>();
  for (const address of addresses) {
    const m = mappings.find((x) => address > x.start && address <= x.end);
    if (!m) continue;
    out.set(address, { library: m.path });
    const list = byFile.get(m.path) ?? [];
    list.push({ address, fileOffset: address - 1 - m.start + m.offset });
    byFile.set(m.path, list);
  }
  for (const [path, list] of byFile) {
    try {
      const fd = openSync(path, "r");
      let loads: Array<{ offset: number; vaddr: number; filesz: number }>;
      try {
        loads = layout(fd).loads;
      } finally {
        closeSync(fd);
      }
      const vaddrOf = (off: number) => {
        const l = loads.find((x) => off >= x.offset && off < x.offset + x.filesz);
        return l === undefined ? undefined : off - l.offset + l.vaddr;
      };
      const wanted = list.map((x) => ({ ...x, vaddr: vaddrOf(x.fileOffset) }));
      const names = symbolsOf(
        path,
        wanted.flatMap((x) => (x.vaddr === undefined ? [] : [x.vaddr])),
      );
      for (const w of wanted) {
        const s = w.vaddr === undefined ? undefined : names.get(w.vaddr);
        if (s) out.set(w.address, { library: path, symbol: demangle(s) });
      }
    } catch {
      // A file gone, replaced or not ELF: its addresses keep their library only.
    }
  }
  return out;
}

/**
 * The Itanium C++ ABI names heapstate needs to read: a nested name (`_ZN…E`) or a plain one
 * (`_Z3foo…`), as `a::b::c`, without the parameters; `(anonymous namespace)`, constructors and
 * destructors, and template arguments elided as `<…>`. Anything else stays as it is.
 */
export function demangle(s: string): string {
  if (!s.startsWith("_Z")) return s;
  let i = 2;
  const parts: string[] = [];
  const source = (): string | undefined => {
    let n = 0;
    const from = i;
    while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) n = n * 10 + (s.charCodeAt(i++) - 48);
    if (i === from || n <= 0 || i + n > s.length) return undefined;
    const id = s.slice(i, i + n);
    i += n;
    return id.startsWith("_GLOBAL__N") ? "(anonymous namespace)" : id;
  };
  const templateArgs = (): boolean => {
    // Skips I…E, nested names, literals and further arguments inside it: not named here. An
    // identifier (<length><name>) is skipped whole, whatever letters it holds.
    let depth = 0;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        let n = 0;
        while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) n = n * 10 + (s.charCodeAt(i++) - 48);
        i += n;
        continue;
      }
      const ch = s[i];
      i++;
      if (ch === "I" || ch === "N" || ch === "L" || ch === "X") depth++;
      else if (ch === "E" && --depth === 0) return true;
      else if (ch === "S") {
        // A substitution: St, Sa, Sb, Ss, Si, So, Sd, or S<seq-id>_.
        if (/[tabsiod]/.test(s[i] ?? "")) i++;
        else {
          while (i < s.length && /[0-9A-Z]/.test(s[i] as string)) i++;
          if (s[i] === "_") i++;
        }
      }
    }
    return false;
  };
  if (s[i] === "N") {
    i++;
    while (s[i] === "K" || s[i] === "V" || s[i] === "r") i++;
    while (i < s.length && s[i] !== "E") {
      if (s[i] === "S" && s[i + 1] === "t") {
        parts.push("std");
        i += 2;
      } else if (s[i] === "I") {
        if (!templateArgs()) return s;
        const last = parts.length - 1;
        if (last >= 0) parts[last] += "<…>";
      } else if (s[i] === "C" && /[1-5]/.test(s[i + 1] ?? "")) {
        parts.push(parts.at(-1)?.replace(/<…>$/, "") ?? "");
        i += 2;
      } else if (s[i] === "D" && /[0-2]/.test(s[i + 1] ?? "")) {
        parts.push(`~${parts.at(-1)?.replace(/<…>$/, "") ?? ""}`);
        i += 2;
      } else {
        const id = source();
        if (id === undefined) return s;
        parts.push(id);
      }
    }
    return parts.length > 0 && s[i] === "E" ? parts.join("::") : s;
  }
  const id = source();
  return id ?? s;
}
