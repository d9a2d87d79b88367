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
import type { Mapping } from "./procfs/smaps";
import type { RegionSummary } from "./types";

const ARENA = 64 * 1024 * 1024;
const GUARD_MAX = 64 * 1024;

function isAnonymous(m: Mapping): boolean {
  return m.path === "" && m.inode === 0;
}

function baseCategory(m: Mapping, codeFiles: Set<string>): string {
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
  if (p.startsWith("/")) return codeFiles.has(p) ? "code" : "file";
  return "anon";
}

/** Categories for each mapping, in order. */
export function categorize(mappings: Mapping[]): string[] {
  const codeFiles = new Set<string>();
  for (const m of mappings) if (m.perms[2] === "x" && m.path.startsWith("/")) codeFiles.add(m.path);
  const cats = mappings.map((m) => baseCategory(m, codeFiles));
  for (let i = 0; i < mappings.length; i++) {
    const m = mappings[i] as Mapping;
    if (cats[i] !== "anon") continue;
    const next = mappings[i + 1];
    const prev = mappings[i - 1];
    if (m.start % ARENA === 0 && m.perms === "rw-p") {
      const fullHeap = m.end - m.start === ARENA;
      const headAndTail =
        next !== undefined &&
        cats[i + 1] === "anon" &&
        next.perms === "---p" &&
        next.start === m.end &&
        next.end === m.start + ARENA;
      if (fullHeap || headAndTail) {
        cats[i] = "malloc-arena";
        if (headAndTail) cats[i + 1] = "malloc-arena";
        continue;
      }
    }
    if (
      m.perms === "rw-p" &&
      prev !== undefined &&
      cats[i - 1] === "anon" &&
      prev.perms === "---p" &&
      prev.end === m.start &&
      prev.sizeBytes <= GUARD_MAX
    ) {
      cats[i] = "thread-stack";
      cats[i - 1] = "thread-stack";
    }
  }
  return cats;
}

const sumKeys = ["rssBytes", "pssBytes", "privateDirtyBytes", "lazyFreeBytes", "swapBytes"] as const;

/** Sums mappings per category, largest resident first. Addresses and paths only when asked. */
export function summarize(mappings: Mapping[], includeAddresses: boolean): RegionSummary[] {
  const cats = categorize(mappings);
  const byName = new Map<string, RegionSummary>();
  mappings.forEach((m, i) => {
    const category = cats[i] as string;
    let r = byName.get(category);
    if (!r) {
      r = { category, count: 0, sizeBytes: 0 };
      byName.set(category, r);
    }
    r.count++;
    r.sizeBytes += m.sizeBytes;
    for (const k of sumKeys) {
      const v = m[k];
      if (v !== undefined) r[k] = (r[k] ?? 0) + v;
    }
    if (includeAddresses) {
      r.mappings ??= [];
      r.mappings.push({
        start: `0x${m.startHex}`,
        end: `0x${m.endHex}`,
        perms: m.perms,
        ...(m.path ? { path: m.path } : {}),
        sizeBytes: m.sizeBytes,
        ...(m.rssBytes !== undefined ? { rssBytes: m.rssBytes } : {}),
      });
    }
  });
  return [...byName.values()].sort(
    (a, b) => (b.rssBytes ?? 0) - (a.rssBytes ?? 0) || a.category.localeCompare(b.category),
  );
}

/** One mapping among the largest by RSS; addresses and path only when asked for. */
export interface TopMapping {
  category: string;
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
