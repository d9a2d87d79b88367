/**
 * Which code holds the native heap, from the allocator's own sampled heap profile: jemalloc's
 * `prof.dump` (the `heap_v2` text gperftools' pprof and jemalloc's jeprof read), or tcmalloc's
 * GetHeapSample (gperftools' older text of the same figures, one line per stack). Each stack
 * carries the sampled live objects and bytes; an object of size s is sampled with probability
 * 1 − e^(−s/P) (P the mean sample interval, 2^lg_prof_sample), so each stack's figures are scaled
 * by 1 / (1 − e^(−avg/P)), as jeprof scales them. The stacks are then named from the ELF symbols
 * of the files mapped into the process and grouped by their first frame outside the allocator.
 */
import type { NativeSite, NativeSites } from "../model/types";
import { type FileMapping, fileMappings, nameAddresses } from "../procfs/elf-symbols";

/** One stack of a heap profile: its return addresses, innermost first, and its sampled figures. */
export interface ProfileStack {
  addresses: number[];
  objects: number;
  bytes: number;
}

export interface HeapProfile {
  /** The mean sample interval in bytes (2^lg_prof_sample); 1 when every allocation is sampled. */
  period: number;
  stacks: ProfileStack[];
  mappings: FileMapping[];
}

/** A stack's figure line: "  t*: <objects>: <bytes> [<cum objects>: <cum bytes>]". */
const TOTAL = /^\s*t\*:\s*(\d+):\s*(\d+)\s*\[/;

/** Parses a `heap_v2` profile; throws on text that is not one. */
export function parseHeapProfile(text: string): HeapProfile {
  const lines = text.split("\n");
  const head = /^heap_v2\/(\d+)\s*$/.exec(lines[0] ?? "");
  if (!head) throw new Error("not a heap_v2 profile");
  const period = Math.max(1, Number(head[1]));
  const stacks: ProfileStack[] = [];
  let i = 1;
  let current: ProfileStack | undefined;
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith("MAPPED_LIBRARIES:")) break;
    if (line.startsWith("@")) {
      const addresses = line
        .slice(1)
        .trim()
        .split(/\s+/)
        .filter((a) => /^0x[0-9a-f]+$/i.test(a))
        .map((a) => Number.parseInt(a, 16));
      current = { addresses, objects: 0, bytes: 0 };
      stacks.push(current);
      continue;
    }
    const t = TOTAL.exec(line);
    if (t && current && current.objects === 0 && current.bytes === 0) {
      current.objects = Number(t[1]);
      current.bytes = Number(t[2]);
    }
  }
  const mappings = fileMappings(lines.slice(i + 1).join("\n"));
  return { period, stacks: stacks.filter((s) => s.objects > 0), mappings };
}

/** A gperftools sample line: "<objects>: <bytes> [<objects>: <bytes>] @ <addresses>". */
const GPERF_SAMPLE = /^\s*(\d+):\s*(\d+)\s*\[\s*\d+:\s*\d+\]\s*@((?:\s+0x[0-9a-f]+)*)\s*$/i;

/**
 * Parses tcmalloc's heap sample (gperftools' GetHeapSample: a `heap profile: … @ heap_v2/<period>`
 * line, one line per sampled stack, then MAPPED_LIBRARIES), into the same stacks as jemalloc's;
 * throws on text that is not one. Period 0 is a tcmalloc that samples nothing.
 */
export function parseHeapSample(text: string): HeapProfile {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && lines[i]?.startsWith("%")) i++; // gperftools' %warn lines
  const head = /^heap profile:.*@\s*heap_v2\/(\d+)\s*$/.exec(lines[i] ?? "");
  if (!head) throw new Error("not a heap_v2 heap sample");
  const period = Number(head[1]);
  const stacks: ProfileStack[] = [];
  for (i++; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith("MAPPED_LIBRARIES:")) break;
    const m = GPERF_SAMPLE.exec(line);
    if (!m) continue;
    const addresses = (m[3] as string)
      .trim()
      .split(/\s+/)
      .filter((a) => a !== "")
      .map((a) => Number.parseInt(a, 16));
    stacks.push({ addresses, objects: Number(m[1]), bytes: Number(m[2]) });
  }
  const mappings = fileMappings(lines.slice(i + 1).join("\n"));
  return { period, stacks: stacks.filter((s) => s.objects > 0), mappings };
}

/** A stack's live objects and bytes, unsampled (see the module's comment). */
export function unsampled(s: ProfileStack, period: number): { objects: number; bytes: number } {
  if (period <= 1 || s.objects === 0) return { objects: s.objects, bytes: s.bytes };
  const ratio = s.bytes / s.objects / period;
  const scale = 1 / (1 - Math.exp(-ratio));
  return { objects: s.objects * scale, bytes: s.bytes * scale };
}

const base = (path: string) => path.slice(path.lastIndexOf("/") + 1);

/** The file names whose frames are the allocator's (the site is the first frame below them). */
function allocatorFrame(library: string | undefined, symbol: string | undefined, allocatorLibrary: string): boolean {
  // The same file, however it was named (LD_PRELOAD's path may be a link to what maps shows).
  if (library !== undefined && (library === allocatorLibrary || base(library) === base(allocatorLibrary))) return true;
  if (library !== undefined && /\/lib(jemalloc|tcmalloc)[^/]*\.so/.test(library)) return true;
  // operator new and its kin, in libstdc++ or in the binary.
  return symbol !== undefined && /^(operator new|_Zn[wa]|malloc$|calloc$|realloc$|posix_memalign$)/.test(symbol);
}

/** Who owns a stack's memory, from its frames (see NativeSite.owner). */
function ownerOf(
  frames: Array<{ symbol?: string | undefined; library?: string | undefined }>,
  executable: string | undefined,
): Pick<NativeSite, "owner" | "library"> {
  for (const f of frames) {
    const s = f.symbol ?? "";
    if (/ArrayBufferAllocator|BackingStore::Allocate/.test(s)) return { owner: "native-array-buffers" };
    if (/^v8::internal::(Malloced|AccountingAllocator|Zone|AlignedAlloc|Malloc)/.test(s)) return { owner: "native-v8" };
  }
  const first = frames[0]?.library;
  if (first !== undefined && first !== executable && !/\/(libc|libstdc\+\+|libm|ld-linux[^/]*)\.so/.test(first))
    return { owner: "addon", library: base(first) };
  return { owner: "unclassified" };
}

/**
 * The profile's top `top` sites: stacks grouped by their first frame outside the allocator (named
 * when its file's symbols name it), each with its unsampled live bytes, a ± of one standard error
 * from its sample count, its owner and its first frames.
 */
export function heapSites(
  p: HeapProfile,
  allocatorLibrary: string,
  executable: string | undefined,
  top: number,
): Pick<NativeSites, "sampleIntervalBytes" | "estimatedBytes" | "samples" | "sites" | "complete"> {
  const names = nameAddresses([...new Set(p.stacks.flatMap((s) => s.addresses))], p.mappings);
  interface Group {
    key: string;
    bytes: number;
    objects: number;
    samples: number;
    heaviest: number;
    frames: NativeSite["frames"];
  }
  const groups = new Map<string, Group>();
  let estimated = 0;
  let samples = 0;
  for (const s of p.stacks) {
    const frames = s.addresses.map((a) => ({ address: a, ...names.get(a) }));
    let k = 0;
    while (k < frames.length && allocatorFrame(frames[k]?.library, frames[k]?.symbol, allocatorLibrary)) k++;
    const own = frames.slice(k, k + 8);
    const site = own[0];
    const key = site === undefined ? "?" : `${site.library ?? "?"}\0${site.symbol ?? site.address.toString(16)}`;
    const u = unsampled(s, p.period);
    estimated += u.bytes;
    samples += s.objects;
    const g = groups.get(key) ?? { key, bytes: 0, objects: 0, samples: 0, heaviest: -1, frames: [] };
    g.bytes += u.bytes;
    g.objects += u.objects;
    g.samples += s.objects;
    if (u.bytes > g.heaviest) {
      g.heaviest = u.bytes;
      g.frames = own.map((f) => ({
        ...(f.symbol !== undefined ? { symbol: f.symbol } : { address: `0x${f.address.toString(16)}` }),
        ...(f.library !== undefined ? { library: base(f.library) } : {}),
      }));
    }
    groups.set(key, g);
  }
  const fullFrames = (g: Group) =>
    g.frames.map((f) => ({ symbol: f.symbol, library: p.mappings.find((m) => base(m.path) === f.library)?.path }));
  const sites = [...groups.values()]
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top)
    .map(
      (g): NativeSite => ({
        bytes: Math.round(g.bytes),
        plusMinusBytes: Math.round(g.bytes / Math.sqrt(g.samples)),
        objects: Math.round(g.objects),
        samples: g.samples,
        ...ownerOf(fullFrames(g), executable),
        frames: g.frames,
      }),
    );
  return {
    sampleIntervalBytes: p.period,
    estimatedBytes: Math.round(estimated),
    samples,
    sites,
    complete: groups.size <= top,
  };
}
