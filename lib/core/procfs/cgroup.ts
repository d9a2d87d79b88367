/**
 * The process's memory cgroup: located from `/proc/<pid>/cgroup` and `/proc/<pid>/mountinfo`,
 * then read from the v1 or v2 memory files. Pure parsers here; the reader is in cgroup-read.ts.
 */
import { blank, code, holdsAt, lineEnd, sliceOf, type Text } from "./scan";

/** One line of /proc/<pid>/cgroup: "hier-ID:controllers:path". */
export interface CgroupLine {
  id: number;
  controllers: string[];
  path: string;
}

export function parseProcCgroup(text: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!m) continue;
    out.push({ id: Number(m[1]), controllers: m[2] ? (m[2] as string).split(",") : [], path: m[3] as string });
  }
  return out;
}

/** One line of /proc/<pid>/mountinfo (the fields used here). */
export interface Mount {
  /** Field 4: the root of the mount within its filesystem (not "/" for bind mounts and namespaces). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    if (left.length < 5 || right.length < 3) continue;
    const root = unescapeOctal(left[3] as string);
    const mountPoint = unescapeOctal(left[4] as string);
    // The kernel writes both as absolute paths; anything else is a damaged line, not a place to read.
    if (!root.startsWith("/") || !mountPoint.startsWith("/")) continue;
    out.push({
      root,
      mountPoint,
      fsType: right[0] as string,
      superOptions: (right[2] as string).split(","),
    });
  }
  return out;
}

export interface CgroupLocation {
  version: 1 | 2;
  /** The cgroup's path as /proc/<pid>/cgroup shows it. */
  path: string;
  /** The directory of its files (a mount point joined with the path below the mount's root). */
  dir: string;
}

/** Joins the cgroup path with the mount: mount point + (path − mount root). */
function dirFor(mount: Mount, path: string): string | undefined {
  let rel: string;
  if (mount.root === "/") rel = path;
  else if (path === mount.root) rel = "/";
  else if (path.startsWith(`${mount.root}/`)) rel = path.slice(mount.root.length);
  else return undefined;
  return rel === "/" ? mount.mountPoint : `${mount.mountPoint.replace(/\/$/, "")}${rel}`;
}

export type LocateResult = { location: CgroupLocation } | { problem: string };

/**
 * v1 when a hierarchy lists the memory controller (also on hybrid hosts, whose v2 tree then has
 * no memory controller); v2 when the unified line "0::path" is all there is for memory.
 */
export function locateMemoryCgroup(lines: CgroupLine[], mounts: Mount[]): LocateResult {
  return locateController(lines, mounts, "memory");
}

/** locateMemoryCgroup for any controller (memory, cpu): v1 where a hierarchy lists it, else v2. */
export function locateController(lines: CgroupLine[], mounts: Mount[], controller: "memory" | "cpu"): LocateResult {
  const v1 = lines.find((l) => l.controllers.includes(controller));
  if (v1) {
    const candidates = mounts.filter((m) => m.fsType === "cgroup" && m.superOptions.includes(controller));
    for (const mount of candidates) {
      const dir = dirFor(mount, v1.path);
      if (dir) return { location: { version: 1, path: v1.path, dir } };
    }
    return {
      problem: candidates.length
        ? `the ${controller} cgroup ${v1.path} lies outside every mounted ${controller} hierarchy`
        : `the ${controller} cgroup v1 hierarchy is not mounted`,
    };
  }
  const unified = lines.find((l) => l.id === 0 && l.controllers.length === 0);
  if (unified) {
    const candidates = mounts.filter((m) => m.fsType === "cgroup2");
    for (const mount of candidates) {
      const dir = dirFor(mount, unified.path);
      if (dir) return { location: { version: 2, path: unified.path, dir } };
    }
    return {
      problem: candidates.length
        ? `the cgroup ${unified.path} lies outside the mounted cgroup2 tree`
        : "no cgroup2 filesystem is mounted",
    };
  }
  return { problem: `the process is in no ${controller} cgroup` };
}

/**
 * A CPU quota in CPUs: v2 cpu.max ("max 100000" or "50000 100000"), or v1's cpu.cfs_quota_us
 * (-1 for none) over cpu.cfs_period_us. Undefined when unlimited or unreadable.
 */
export function parseCpuQuota(quotaText: string, periodText?: string): number | undefined {
  const words = quotaText.trim().split(/\s+/);
  let quota: number;
  let period: number;
  if (periodText === undefined) {
    if (words.length !== 2 || words[0] === "max") return undefined;
    quota = Number(words[0]);
    period = Number(words[1]);
  } else {
    quota = Number(words[0]);
    period = Number(periodText.trim());
  }
  if (!Number.isSafeInteger(quota) || !Number.isSafeInteger(period) || quota <= 0 || period <= 0) return undefined;
  return Math.round((quota / period) * 1000) / 1000;
}

/** /sys/devices/system/cpu/online ("0-3,8,10-11") → the number of CPUs, undefined if malformed. */
export function parseCpuList(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*$/.test(t)) return undefined;
  let n = 0;
  for (const range of t.split(",")) {
    const [a, b] = range.split("-").map(Number) as [number, number | undefined];
    if (b !== undefined && b < a) return undefined;
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

/** "key value" lines (memory.stat, memory.events, memory.oom_control) → numbers by key (`only` those keys, when given). */
export function parseFlatKeyed(text: Text, only?: readonly string[]): Map<string, number> {
  // Each line trimmed, then `key value`: a word, one space, 1 to 20 digits; a key's first line
  // counts. Scanned in place: memory.stat is read at every standard reading, and with `only` no
  // string is made for the keys not asked for.
  const out = new Map<string, number>();
  const length = text.length;
  for (let at = 0; at <= length; ) {
    const end = lineEnd(text, at);
    let a = at;
    let b = end;
    while (a < b && blank(code(text, a))) a++;
    while (b > a && blank(code(text, b - 1))) b--;
    let k = a;
    while (k < b && word(code(text, k))) k++;
    const digits = k + 1;
    if (k > a && k < b && code(text, k) === 32 && digits < b && b - digits <= 20 && allDigits(text, digits, b)) {
      const key = only === undefined ? sliceOf(text, a, k) : wanted(text, a, k, only);
      if (key !== undefined && !out.has(key)) out.set(key, decimal(text, digits, b));
    }
    at = end + 1;
  }
  return out;
}

/** The digits text[from, to) as a number: summed in place up to 15 digits (exact), else as Number() rounds them. */
function decimal(text: Text, from: number, to: number): number {
  if (to - from > 15) return Number(sliceOf(text, from, to));
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (code(text, i) - 48);
  return n;
}

/** The key of `only` that `text[a, k)` is, compared in place. */
function wanted(text: Text, a: number, k: number, only: readonly string[]): string | undefined {
  for (const w of only) if (w.length === k - a && holdsAt(text, w, a)) return w;
  return undefined;
}

function word(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}

function allDigits(text: Text, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = code(text, i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * A single-value file. v2 writes "max" for no limit; v1 writes LONG_MAX rounded down to a page
 * (9223372036854771712) and some kernels PAGE_COUNTER_MAX × page: anything at or above 2^60 is
 * "no limit". Returns undefined for no limit or an unreadable value.
 */
export function parseLimit(text: Text, from = 0, to = text.length): number | undefined {
  const [a, b] = trimmed(text, from, to);
  if (b - a === 3 && holdsAt(text, "max", a)) return undefined;
  if (b - a < 1 || b - a > 20 || !allDigits(text, a, b)) return undefined;
  const n = decimal(text, a, b);
  return n >= 2 ** 60 ? undefined : n;
}

/** A byte counter file ("memory.current", "memory.usage_in_bytes"); `text[from, to)` when the file lies inside a larger buffer. */
export function parseCounter(text: Text, from = 0, to = text.length): number | undefined {
  const [a, b] = trimmed(text, from, to);
  if (b - a < 1 || b - a > 19 || !allDigits(text, a, b)) return undefined;
  const n = decimal(text, a, b);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Where `text[from, to)` starts and ends once trimmed (as String.prototype.trim), kept in one pair. */
const span: [number, number] = [0, 0];
function trimmed(text: Text, from: number, to: number): [number, number] {
  let a = from;
  let b = to;
  // trim() takes line ends too; blank() leaves the newline to the line scanners.
  while (a < b && (code(text, a) === 10 || blank(code(text, a)))) a++;
  while (b > a && (code(text, b - 1) === 10 || blank(code(text, b - 1)))) b--;
  span[0] = a;
  span[1] = b;
  return span;
}

/**
 * The value of `key` in "key value" lines (memory.events, memory.oom_control) in `text[from, to)`,
 * by parseFlatKeyed's rules, without the map: the fast tier reads one or two keys at every reading.
 */
export function flatKeyedValue(text: Text, key: string, from = 0, to = text.length): number | undefined {
  for (let at = from; at <= to; ) {
    const end = Math.min(lineEnd(text, at), to);
    let a = at;
    let b = end;
    while (a < b && blank(code(text, a))) a++;
    while (b > a && blank(code(text, b - 1))) b--;
    const k = a + key.length;
    const digits = k + 1;
    if (
      k < b &&
      code(text, k) === 32 &&
      holdsAt(text, key, a) &&
      digits < b &&
      b - digits <= 20 &&
      allDigits(text, digits, b)
    )
      return decimal(text, digits, b);
    at = end + 1;
  }
  return undefined;
}
