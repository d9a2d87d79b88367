/**
 * The difference between two snapshots: what changed in who was read (allocator, tier, process,
 * Node, host) first, then per-field deltas of what both could measure, then the top growers among
 * the process's own resident figures. Its text is formatDiff, beside formatHuman (format.ts).
 */

import { assertSnapshot } from "../base/errors";
import { partKey } from "./breakdown";
import { type SiteChange, siteChanges } from "./diff-sites";
import type { Snapshot } from "./types";
import { servingAllocator } from "./views";

export interface FieldChange {
  /** Where the figure is, e.g. "heap.allocatedBytes", "breakdown.native-free", "regions.anon.rssBytes". */
  path: string;
  before?: number;
  after?: number;
  /** after − before; absent when either side was not measured. */
  delta?: number;
}

/** Something about who or how was read that differs between the two snapshots. */
export interface IdentityChange {
  what: "allocator" | "library" | "tier" | "pid" | "node" | "hostname";
  before?: string;
  after?: string;
}

export interface SnapshotDiff {
  from: { time: string; pid: number; tier: string };
  to: { time: string; pid: number; tier: string };
  elapsedMs: number;
  samePid: boolean;
  /** What differs in who or how was read; listed first, because it changes what the figures mean. */
  identity: IdentityChange[];
  /** What the comparison leaves out and why (figures one side could not have). */
  notes: string[];
  /** Every byte figure present on either side that both could measure, in a stable order. */
  changes: FieldChange[];
  /** The largest increases among the process's resident figures (RSS, its parts, regions), biggest first (at most 5). */
  topGrowers: FieldChange[];
  /** Growth per native allocation site, where both readings carry `nativeSites` of one process and source. */
  sites?: SiteChange[];
}

export type { SiteChange } from "./diff-sites";

/** A byte figure as diff reads it: a finite number, else not measured. */
function figure(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/**
 * Every byte figure of a snapshot by path. Tolerant of what a caller may pass that parseSnapshot
 * would have cleaned (a part that is not an object, regions that are not an array): such entries
 * are skipped, never a TypeError.
 */
function byteFields(s: Snapshot): Map<string, number> {
  const out = new Map<string, number>();
  const put = (path: string, v: unknown) => {
    const n = figure(v);
    if (n !== undefined) out.set(path, n);
  };
  const take = (prefix: string, obj: unknown) => {
    if (obj === null || typeof obj !== "object") return;
    for (const [k, v] of Object.entries(obj)) if (k.endsWith("Bytes")) put(`${prefix}.${k}`, v);
  };
  take("process", s.process);
  take("cgroup", s.cgroup);
  take("v8", s.v8);
  const heap = servingAllocator(s);
  take("heap", heap);
  take("heap.pages", heap?.pages);
  const b = s.breakdown;
  if (b && typeof b === "object") {
    for (const p of Array.isArray(b.parts) ? b.parts : []) {
      if (!(p && typeof p === "object" && typeof p.name === "string")) continue;
      put(`breakdown.${partKey(p)}`, p.bytes);
      for (const c of Array.isArray(p.children) ? p.children : []) {
        if (c && typeof c === "object" && typeof c.name === "string")
          put(`breakdown.${partKey(p)}/${partKey(c)}`, c.bytes);
      }
    }
    put("breakdown.unattributedBytes", b.unattributedBytes);
  }
  for (const r of Array.isArray(s.regions) ? s.regions : []) {
    if (r && typeof r === "object" && typeof r.category === "string") put(`regions.${r.category}.rssBytes`, r.rssBytes);
  }
  return out;
}

/** The process's own resident figures: what a "grower" can be (not VmSize, a peak, or the whole cgroup). */
const RESIDENT = new Set([
  "process.rssBytes",
  "process.rssAnonBytes",
  "process.rssFileBytes",
  "process.rssShmemBytes",
  "process.pssBytes",
  "process.privateDirtyBytes",
  "process.lazyFreeBytes",
]);

function resident(path: string): boolean {
  return (
    RESIDENT.has(path) ||
    (path.startsWith("breakdown.") && path !== "breakdown.unattributedBytes") ||
    (path.startsWith("regions.") && path.endsWith(".rssBytes"))
  );
}

function text(v: unknown): string | undefined {
  return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
}

function identityOf(a: Snapshot, b: Snapshot): IdentityChange[] {
  const out: IdentityChange[] = [];
  const compare = (what: IdentityChange["what"], x: unknown, y: unknown) => {
    const before = text(x);
    const after = text(y);
    if (before !== after)
      out.push({ what, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) });
  };
  compare("allocator", servingAllocator(a)?.allocator, servingAllocator(b)?.allocator);
  const lib = (s: Snapshot) => {
    const l = servingAllocator(s)?.library;
    return typeof l === "string" ? l.slice(l.lastIndexOf("/") + 1) : undefined;
  };
  compare("library", lib(a), lib(b));
  compare("tier", a.tier, b.tier);
  compare("pid", a.pid, b.pid);
  compare("node", a.identity?.node, b.identity?.node);
  compare("hostname", a.identity?.hostname, b.identity?.hostname);
  return out;
}

/**
 * Compares two snapshots field by field. When the tiers differ, the breakdown's parts and the
 * regions are not compared (a standard reading's "file" is every file mapping, a deep one's only
 * the files that are not code); when the allocator differs, its figures are not compared.
 * @example
 * const d = diff(before, after);
 * console.log(d.identity, d.topGrowers[0]?.path, d.topGrowers[0]?.delta);
 */
export function diff(a: Snapshot, b: Snapshot): SnapshotDiff {
  assertSnapshot(a, "diff(before, after): before");
  assertSnapshot(b, "diff(before, after): after");
  const identity = identityOf(a, b);
  const notes: string[] = [];
  const fa = byteFields(a);
  const fb = byteFields(b);
  let skip = (_path: string) => false;
  const changed = new Set(identity.map((c) => c.what));
  if (changed.has("tier")) {
    notes.push(
      `the tiers differ (${a.tier} → ${b.tier}): the breakdown's parts and the regions are read differently in each and are not compared`,
    );
    const before = skip;
    skip = (p) => before(p) || p.startsWith("breakdown.") || p.startsWith("regions.");
  }
  if (changed.has("allocator")) {
    notes.push(
      `the allocator serving malloc differs (${servingAllocator(a)?.allocator ?? "unknown"} → ${servingAllocator(b)?.allocator ?? "unknown"}): its counters and the native parts are not compared`,
    );
    const before = skip;
    skip = (p) => before(p) || p.startsWith("heap.") || /^breakdown\.native-/.test(p);
  }
  if (changed.has("pid")) notes.push(`different processes (pid ${a.pid} → ${b.pid})`);
  const paths = [...new Set([...fa.keys(), ...fb.keys()])].filter((p) => !skip(p));
  const changes = paths.map((path): FieldChange => {
    const before = fa.get(path);
    const after = fb.get(path);
    const c: FieldChange = { path };
    if (before !== undefined) c.before = before;
    if (after !== undefined) c.after = after;
    if (before !== undefined && after !== undefined) c.delta = after - before;
    return c;
  });
  const topGrowers = changes
    .filter((c) => c.delta !== undefined && c.delta > 0 && resident(c.path))
    .sort((x, y) => (y.delta as number) - (x.delta as number))
    .slice(0, 5);
  const { sites, note } = siteChanges(a, b);
  if (note) notes.push(note);
  return {
    from: { time: a.time, pid: a.pid, tier: a.tier },
    to: { time: b.time, pid: b.pid, tier: b.tier },
    elapsedMs: Date.parse(b.time) - Date.parse(a.time),
    samePid: a.pid === b.pid,
    identity,
    notes,
    changes,
    topGrowers,
    ...(sites ? { sites } : {}),
  };
}
