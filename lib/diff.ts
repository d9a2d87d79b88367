/** The difference between two snapshots: per-field deltas and the top growers. */

import { partKey } from "./breakdown";
import { assertSnapshot, HeapstateError } from "./errors";
import { append, rows } from "./format";
import type { Snapshot } from "./types";
import { formatBytes } from "./units";

export interface FieldChange {
  /** Where the figure is, e.g. "heap.allocatedBytes", "breakdown.native-free", "regions.anon.rssBytes". */
  path: string;
  before?: number;
  after?: number;
  /** after − before; absent when either side was not measured. */
  delta?: number;
}

export interface SnapshotDiff {
  from: { time: string; pid: number; tier: string };
  to: { time: string; pid: number; tier: string };
  elapsedMs: number;
  samePid: boolean;
  /** Every byte figure present on either side, in a stable order. */
  changes: FieldChange[];
  /** The largest increases, biggest first (at most 5). */
  topGrowers: FieldChange[];
}

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
  take("heap", s.heap);
  take("heap.pages", s.heap?.pages);
  const b = s.breakdown;
  if (b && typeof b === "object") {
    put("breakdown.rssBytes", b.rssBytes);
    for (const p of Array.isArray(b.parts) ? b.parts : []) {
      if (p && typeof p === "object" && typeof p.name === "string") put(`breakdown.${partKey(p)}`, p.bytes);
    }
    put("breakdown.unattributedBytes", b.unattributedBytes);
  }
  for (const r of Array.isArray(s.regions) ? s.regions : []) {
    if (r && typeof r === "object" && typeof r.category === "string") put(`regions.${r.category}.rssBytes`, r.rssBytes);
  }
  return out;
}

/**
 * Compares two snapshots field by field.
 * @example
 * const d = diff(before, after);
 * console.log(d.topGrowers[0]?.path, d.topGrowers[0]?.delta);
 */
export function diff(a: Snapshot, b: Snapshot): SnapshotDiff {
  assertSnapshot(a, "diff(before, after): before");
  assertSnapshot(b, "diff(before, after): after");
  const fa = byteFields(a);
  const fb = byteFields(b);
  const paths = [...new Set([...fa.keys(), ...fb.keys()])];
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
    .filter((c) => c.delta !== undefined && c.delta > 0 && c.path !== "breakdown.rssBytes")
    .sort((x, y) => (y.delta as number) - (x.delta as number))
    .slice(0, 5);
  return {
    from: { time: a.time, pid: a.pid, tier: a.tier },
    to: { time: b.time, pid: b.pid, tier: b.tier },
    elapsedMs: Date.parse(b.time) - Date.parse(a.time),
    samePid: a.pid === b.pid,
    changes,
    topGrowers,
  };
}

function signed(n: number): string {
  return n > 0 ? `+${formatBytes(n)}` : formatBytes(n);
}

/**
 * A diff as aligned text: what changed, the figures measured on one side only (listed, never as a
 * change against an unknown value), then the top growers.
 */
export function formatDiff(d: SnapshotDiff): string {
  if (d === null || typeof d !== "object" || !Array.isArray(d.changes) || !Array.isArray(d.topGrowers)) {
    throw new HeapstateError("INVALID_SNAPSHOT", "formatDiff(diff): expected the result of diff(before, after)");
  }
  const lines = [
    `heapstate diff  pid ${d.from?.pid}${d.samePid ? "" : ` → pid ${d.to?.pid} (different processes)`}  ${d.from?.time} → ${d.to?.time}  (${(d.elapsedMs / 1000).toFixed(1)} s)`,
  ];
  const changed = d.changes.filter((c) => c.delta !== undefined && c.delta !== 0);
  append(
    lines,
    rows(
      changed.map((c) => [
        c.path,
        `${formatBytes(c.before).padStart(10)} → ${formatBytes(c.after).padStart(10)}  ${signed(c.delta as number)}`,
      ]),
      "  ",
    ),
  );
  if (changed.length === 0) lines.push("  no byte figure changed");
  const before = d.changes.filter((c) => c.delta === undefined && c.before !== undefined);
  const after = d.changes.filter((c) => c.delta === undefined && c.after !== undefined);
  if (before.length > 0) {
    lines.push("measured before only:");
    append(
      lines,
      rows(
        before.map((c) => [c.path, formatBytes(c.before)]),
        "  ",
      ),
    );
  }
  if (after.length > 0) {
    lines.push("measured after only:");
    append(
      lines,
      rows(
        after.map((c) => [c.path, formatBytes(c.after)]),
        "  ",
      ),
    );
  }
  if (d.topGrowers.length) {
    lines.push("top growers:");
    append(
      lines,
      rows(
        d.topGrowers.map((c) => [c.path, signed(c.delta as number)]),
        "  ",
      ),
    );
  }
  return lines.join("\n");
}
