/**
 * smaps mappings → region categories. The categories are heuristics over what the kernel shows
 * (glibc 2.36 cannot name its mappings, and this kernel has no CONFIG_ANON_VMA_NAME):
 * - "malloc-main-arena": `[heap]`, the brk heap of glibc's main arena.
 * - "malloc-arena": glibc's other arenas: 64 MiB-aligned heaps (HEAP_MAX_SIZE), a committed rw-p
 *   head and a PROT_NONE tail that together fill the aligned 64 MiB, or one rw-p 64 MiB.
 * - "thread-stack": an anonymous rw-p mapping right above a small PROT_NONE guard (pthread stacks).
 * - "stack": `[stack]`, the main thread's.
 * - "code": every mapping of a file that has an executable mapping (the program and its
 *   libraries: text, read-only data and their data segments), and the vdso.
 * - "shmem": shared anonymous memory, /dev/shm, memfd, SysV segments.
 * - "anon:NAME": regions named with PR_SET_VMA_ANON_NAME.
 * - "file": other file mappings. "anon": all other anonymous memory (V8's heap, mmapped malloc
 *   chunks, other allocators' regions).
 */

import type { RegionCategory, RegionSummary } from "../model/types";
import type { Mapping } from "../procfs/smaps";

const ARENA = 64 * 1024 * 1024;
const GUARD_MAX = 64 * 1024;

function isAnonymous(m: Mapping): boolean {
  return m.path === "" && m.inode === 0;
}

/** A file mapping's category depends on every mapping of that file: decided at the end. */
const FILE_PENDING = "(file)";
type Category = RegionCategory | typeof FILE_PENDING;

function baseCategory(m: Mapping): Category {
  const p = m.path;
  if (p === "[heap]") return "malloc-main-arena";
  if (p === "[stack]") return "stack";
  if (p === "[vdso]" || p === "[vvar]" || p === "[vsyscall]" || p === "[vvar_vclock]") return "code";
  if (p.startsWith("[anon_shmem:")) return "shmem";
  if (p.startsWith("[anon:")) return `anon:${p.slice(6, -1)}`;
  if (p.startsWith("/dev/shm/") || p.startsWith("/memfd:") || p.startsWith("/SYSV") || p.startsWith("/dev/zero")) {
    return "shmem";
  }
  if (isAnonymous(m)) return m.perms[3] === "s" ? "shmem" : "anon";
  if (p.startsWith("/")) return FILE_PENDING;
  return "anon";
}

const sumKeys = ["rssBytes", "pssBytes", "privateDirtyBytes", "lazyFreeBytes", "swapBytes"] as const;

interface Slot {
  m: Mapping;
  cat: Category;
}

/**
 * Sums mappings into region categories as they stream in (smaps order), holding at most three
 * mappings and one small total per mapped file: the arena and thread-stack shapes need a
 * mapping's neighbours, and whether a file is code needs all of its mappings.
 */
export class RegionAccumulator {
  private readonly byName = new Map<string, RegionSummary>();
  private readonly files = new Map<string, { exec: boolean; slots: Slot[]; total: RegionSummary }>();
  private readonly window: Slot[] = [];

  /**
   * @param includeAddresses keep each mapping's addresses and path (they defeat ASLR)
   * @param observe called with each mapping's final category (tests)
   */
  constructor(
    private readonly includeAddresses: boolean,
    private readonly observe?: (m: Mapping, category: string) => void,
  ) {}

  push(m: Mapping): void {
    this.window.push({ m, cat: baseCategory(m) });
    if (this.window.length >= 2) this.decide(this.window.length - 2);
    if (this.window.length === 3) this.emit(this.window.shift() as Slot);
  }

  finish(): RegionSummary[] {
    if (this.window.length > 0) this.decide(this.window.length - 1);
    for (const slot of this.window.splice(0)) this.emit(slot);
    for (const f of this.files.values()) {
      const category = f.exec ? "code" : "file";
      for (const slot of f.slots) this.observe?.(slot.m, category);
      this.add(category, f.total);
    }
    this.files.clear();
    return [...this.byName.values()].sort(
      (a, b) => (b.rssBytes ?? 0) - (a.rssBytes ?? 0) || a.category.localeCompare(b.category),
    );
  }

  /** The shapes of glibc's arena heaps and of thread stacks, for window[i] (next and previous known). */
  private decide(i: number): void {
    const cur = this.window[i] as Slot;
    if (cur.cat !== "anon") return;
    const m = cur.m;
    const next = this.window[i + 1];
    const prev = this.window[i - 1];
    if (m.start % ARENA === 0 && m.perms === "rw-p") {
      const fullHeap = m.end - m.start === ARENA;
      const headAndTail =
        next !== undefined &&
        next.cat === "anon" &&
        next.m.perms === "---p" &&
        next.m.start === m.end &&
        next.m.end === m.start + ARENA;
      if (fullHeap || headAndTail) {
        cur.cat = "malloc-arena";
        if (headAndTail && next) next.cat = "malloc-arena";
        return;
      }
    }
    if (
      m.perms === "rw-p" &&
      prev !== undefined &&
      prev.cat === "anon" &&
      prev.m.perms === "---p" &&
      prev.m.end === m.start &&
      prev.m.sizeBytes <= GUARD_MAX
    ) {
      cur.cat = "thread-stack";
      prev.cat = "thread-stack";
    }
  }

  private emit(slot: Slot): void {
    if (slot.cat !== FILE_PENDING) {
      this.observe?.(slot.m, slot.cat);
      this.add(slot.cat, this.one(slot.m, slot.cat));
      return;
    }
    let f = this.files.get(slot.m.path);
    if (!f) {
      // Its category ("code" or "file") is decided once all its mappings are in: "file" until then.
      f = { exec: false, slots: [], total: { category: "file", count: 0, sizeBytes: 0 } };
      this.files.set(slot.m.path, f);
    }
    if (slot.m.perms[2] === "x") f.exec = true;
    if (this.observe) f.slots.push(slot);
    this.merge(f.total, this.one(slot.m, "file"));
  }

  private one(m: Mapping, category: RegionCategory): RegionSummary {
    const r: RegionSummary = { category, count: 1, sizeBytes: m.sizeBytes };
    for (const k of sumKeys) if (m[k] !== undefined) r[k] = m[k];
    if (this.includeAddresses) {
      r.mappings = [
        {
          start: `0x${m.startHex}`,
          end: `0x${m.endHex}`,
          perms: m.perms,
          ...(m.path ? { path: m.path } : {}),
          sizeBytes: m.sizeBytes,
          ...(m.rssBytes !== undefined ? { rssBytes: m.rssBytes } : {}),
        },
      ];
    }
    return r;
  }

  private add(category: RegionCategory, part: RegionSummary): void {
    let r = this.byName.get(category);
    if (!r) {
      r = { category, count: 0, sizeBytes: 0 };
      this.byName.set(category, r);
    }
    this.merge(r, part);
  }

  private merge(into: RegionSummary, part: RegionSummary): void {
    into.count += part.count;
    into.sizeBytes += part.sizeBytes;
    for (const k of sumKeys) {
      const v = part[k];
      if (v !== undefined) into[k] = (into[k] ?? 0) + v;
    }
    if (part.mappings) {
      into.mappings ??= [];
      for (const x of part.mappings) into.mappings.push(x);
    }
  }
}

/** Categories for each mapping, in order (the same rules as RegionAccumulator). */
export function categorize(mappings: Mapping[]): string[] {
  const found = new Map<Mapping, string>();
  const acc = new RegionAccumulator(false, (m, c) => found.set(m, c));
  for (const m of mappings) acc.push(m);
  acc.finish();
  return mappings.map((m) => found.get(m) as string);
}

/** Sums mappings per category, largest resident first. Addresses and paths only when asked. */
export function summarize(mappings: Mapping[], includeAddresses: boolean): RegionSummary[] {
  const acc = new RegionAccumulator(includeAddresses);
  for (const m of mappings) acc.push(m);
  return acc.finish();
}

/** One mapping among the largest by RSS; addresses and path only when asked for. */
export interface TopMapping {
  category: RegionCategory;
  perms: string;
  sizeBytes: number;
  rssBytes?: number;
  start?: string;
  end?: string;
  path?: string;
}

/** The n mappings with the most RSS (the regions must have been read with includeAddresses). */
export function topMappings(regions: RegionSummary[] | undefined, n: number, addresses: boolean): TopMapping[] {
  const all: TopMapping[] = [];
  for (const r of regions ?? []) {
    for (const m of r.mappings ?? []) {
      all.push({
        category: r.category,
        perms: m.perms,
        sizeBytes: m.sizeBytes,
        ...(m.rssBytes !== undefined ? { rssBytes: m.rssBytes } : {}),
        ...(addresses ? { start: m.start, end: m.end, ...(m.path ? { path: m.path } : {}) } : {}),
      });
    }
  }
  return all.sort((a, b) => (b.rssBytes ?? 0) - (a.rssBytes ?? 0)).slice(0, n);
}
