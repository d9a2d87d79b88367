/** Human text of a snapshot: one terminal screen, aligned, units in KiB/MiB/GiB. */

import type { AllocatorState, PageStates, Snapshot, SnapshotDiff, TopMapping } from "../core";
import { append, assertSnapshot, formatBytes, HeapstateError, is, partKey, rows, visibleCopy, wrap } from "../core";
import { siteChangeLines, sitesLines } from "./format-sites";

export interface FormatOptions {
  /**
   * Wrap lines at this many columns, continuations indented under their first (default 0: no
   * wrapping, so a log or a file gets whole lines; the CLI passes its terminal's width).
   */
  width?: number;
}

function widthOption(where: string, options: unknown): number {
  const o = is.optionsObject(where, options, ["width"]);
  return is.integer(where, "width", o.width, 0, 0, 10_000);
}

import { servingAllocator, withViews } from "../core";

const pageLabels: Array<[keyof PageStates, string]> = [
  ["dirtyBytes", "dirty (free, resident)"],
  ["releasableBytes", "of which releasable by trim"],
  ["muzzyBytes", "muzzy (MADV_FREE, lazily freed)"],
  ["releasedBytes", "released (unmapped)"],
  ["freeBytes", "free (resident or trimmed)"],
  ["topReleasableBytes", "top chunk (trimmable)"],
  ["cachedBytes", "free in caches"],
];

function ago(snapshotTime: string, asOf: string): string {
  const s = Math.max(0, (Date.parse(snapshotTime) - Date.parse(asOf)) / 1000);
  return `${s.toFixed(1)} s`;
}

function allocatorLines(a: AllocatorState, indent: string, time: string): string[] {
  const head = `${indent}${a.allocator}${a.version ? ` ${a.version}` : ""}  ${a.library}${a.servesMalloc ? "  (serves malloc)" : ""}`;
  const lines = [a.asOf ? `${head}  [figures from ${ago(time, a.asOf)} earlier]` : head];
  const pairs: Array<[string, string]> = [];
  const add = (label: string, value: number | undefined) => {
    if (value !== undefined) pairs.push([label, formatBytes(value)]);
  };
  add("allocated", a.allocatedBytes);
  add("active", a.activeBytes);
  add("resident", a.residentBytes);
  add("mapped", a.mappedBytes);
  add("committed", a.committedBytes);
  add("metadata", a.metadataBytes);
  add("retained", a.retainedBytes);
  if (a.arenas !== undefined) pairs.push(["arenas", String(a.arenas)]);
  for (const [key, label] of pageLabels) {
    const v = a.pages?.[key];
    if (v !== undefined) pairs.push([`pages: ${label}`, formatBytes(v)]);
  }
  append(lines, rows(pairs, `${indent}  `));
  return lines;
}

/** The snapshot with every string made {@link visibleCopy visible}; itself when none needed it. */
export function visibleSnapshot(s: Snapshot): Snapshot {
  const c = visibleCopy(s);
  return c === s ? s : withViews(c);
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(1).padStart(5)}%` : "";
}

/**
 * The snapshot as aligned lines for a terminal or a log: process, cgroup, V8, the allocator,
 * the breakdown of RSS, findings and warnings.
 * @example
 * console.log(formatHuman(collect()));
 */
export function formatHuman(snapshot: Snapshot, options?: FormatOptions): string {
  assertSnapshot(snapshot, "formatHuman(snapshot)");
  const width = widthOption("formatHuman(snapshot, options)", options);
  // A reading may come from elsewhere (an agent, a saved file): its strings are shown escaped.
  const s = visibleSnapshot(snapshot);
  const lines = [`heapstate  pid ${s.pid}  ${s.time}  tier ${s.tier}  (${s.costMicros} µs)`];
  append(lines, rows(topRows(s), ""));
  const heap = servingAllocator(s);
  allocatorSection(lines, s, heap);
  breakdownSection(lines, s, heap);
  regionSection(lines, s);
  append(lines, sitesLines(s));
  for (const f of s.findings ?? []) lines.push(`${f.severity === "warn" ? "WARN" : "info"} [${f.id}] ${f.message}`);
  for (const w of s.warnings) lines.push(`warning [${w.code}] ${w.source}: ${w.message}`);
  return wrap(lines.join("\n"), width);
}

/** The kernel's, the cgroup's and V8's figures, as label and value rows. */
function topRows(s: Snapshot): Array<[string, string]> {
  const p = s.process;
  const top: Array<[string, string]> = [];
  if (p) {
    top.push(["rss", `${formatBytes(p.rssBytes)}  (${p.rssSource ?? "status"}; peak ${formatBytes(p.peakRssBytes)})`]);
    top.push(["  anon / file / shmem", [p.rssAnonBytes, p.rssFileBytes, p.rssShmemBytes].map(formatBytes).join(" / ")]);
    if (p.pssBytes !== undefined) top.push(["pss", formatBytes(p.pssBytes)]);
    top.push(["swap", formatBytes(p.swapBytes)]);
    if (p.lazyFreeBytes !== undefined) top.push(["lazy free (MADV_FREE)", formatBytes(p.lazyFreeBytes)]);
  }
  const cg = s.cgroup;
  if (cg) {
    top.push([
      `cgroup v${cg.version}`,
      `usage ${formatBytes(cg.usageBytes)}  limit ${cg.limitBytes === undefined ? "none" : formatBytes(cg.limitBytes)}${cg.oomKillEvents ? `  oom kills ${cg.oomKillEvents}` : ""}`,
    ]);
  }
  const v8 = s.v8;
  if (v8) {
    top.push([
      "v8 heap",
      `used ${formatBytes(v8.heapUsedBytes)} of ${formatBytes(v8.heapTotalBytes)}  resident ${formatBytes(v8.physicalBytes)}  limit ${formatBytes(v8.heapLimitBytes)}`,
    ]);
    const ext = [`external ${formatBytes(v8.externalBytes)}`];
    if (v8.arrayBuffersBytes !== undefined) ext.push(`array buffers ${formatBytes(v8.arrayBuffersBytes)}`);
    top.push(["", ext.join("  ")]);
  }
  return top;
}

/** The allocator serving malloc, and any other that holds memory. */
function allocatorSection(lines: string[], s: Snapshot, heap: AllocatorState | undefined): void {
  if (heap) {
    lines.push("heap (the allocator that serves malloc):");
    append(lines, allocatorLines(heap, "  ", s.time));
  } else {
    lines.push("heap: (unknown)");
  }
  const others = s.allocators.filter((a) => a !== heap);
  if (others.length > 0) {
    lines.push("other allocators in the process:");
    for (const a of others) append(lines, allocatorLines(a, "  ", s.time));
  }
}

/** Where the RSS is: the parts, their children, the remainder, its bounds, and the chain. */
function breakdownSection(lines: string[], s: Snapshot, heap: AllocatorState | undefined): void {
  const b = s.breakdown;
  const rss = s.process?.rssBytes;
  if (b && rss !== undefined) {
    lines.push(`where the RSS is (${formatBytes(rss)}, from ${s.process?.rssSource ?? "status"}):`);
    const pairs: Array<[string, string]> = [];
    for (const part of b.parts) {
      pairs.push([
        partKey(part),
        `${formatBytes(part.bytes).padStart(10)} ${percent(part.bytes, rss)}  ${part.estimated ? "~ " : ""}${part.source}`,
      ]);
      // The parts within a part, indented under it: who owns the native heap, and (deep) V8's spaces.
      for (const child of part.children ?? []) {
        if (child.name === "v8-space" && s.tier !== "deep") continue;
        pairs.push([
          `  ${partKey(child)}`,
          `${formatBytes(child.bytes).padStart(10)} ${percent(child.bytes, rss)}  ${child.estimated ? "~ " : ""}${child.source}`,
        ]);
      }
    }
    pairs.push([
      "unattributed",
      `${formatBytes(b.unattributedBytes).padStart(10)} ${percent(b.unattributedBytes, rss)}  what nobody accounts for`,
    ]);
    for (const bound of b.bounds ?? []) {
      pairs.push([
        `  of which ${bound.name}`,
        `≤ ${formatBytes(bound.atMostBytes).padStart(8)}         an upper bound, not measured in this tier`,
      ]);
    }
    append(lines, rows(pairs, "  "));
    const c = b.chain;
    if (c && heap) {
      const steps = [
        heap.allocatedBytes !== undefined ? `allocated ${formatBytes(heap.allocatedBytes)}` : undefined,
        heap.activeBytes !== undefined ? `active ${formatBytes(heap.activeBytes)}` : undefined,
        heap.residentBytes !== undefined ? `resident ${formatBytes(heap.residentBytes)}` : undefined,
        `rss ${formatBytes(rss)}`,
      ].filter(Boolean);
      const ratios = [
        c.activeRatio !== undefined ? `active/allocated ${c.activeRatio}` : undefined,
        c.residentRatio !== undefined
          ? `resident/${heap.activeBytes !== undefined ? "active" : "allocated"} ${c.residentRatio}`
          : undefined,
        c.fragmentationRatio !== undefined ? `rss/allocated ${c.fragmentationRatio}` : undefined,
      ].filter(Boolean);
      lines.push(`  chain: ${steps.join(" → ")}${ratios.length ? `  (${ratios.join(", ")})` : ""}`);
    }
  }
}

/** The smaps regions by category (deep tier), the largest first. */
function regionSection(lines: string[], s: Snapshot): void {
  if (s.regions) {
    lines.push("regions (smaps):");
    const shown = s.regions.slice(0, 8);
    append(
      lines,
      rows(
        shown.map((r) => [
          r.category,
          `${String(r.count).padStart(5)} maps  size ${formatBytes(r.sizeBytes).padStart(10)}  rss ${formatBytes(r.rssBytes).padStart(10)}`,
        ]),
        "  ",
      ),
    );
    if (s.regions.length > shown.length) lines.push(`  … ${s.regions.length - shown.length} more categories`);
  }
}

function signed(n: number): string {
  return n > 0 ? `+${formatBytes(n)}` : formatBytes(n);
}

/**
 * A diff as aligned text: what differs in who was read, then what changed, the figures measured on
 * one side only (listed, never as a change against an unknown value), then the top growers.
 */
export function formatDiff(diffResult: SnapshotDiff, options?: FormatOptions): string {
  const width = widthOption("formatDiff(diff, options)", options);
  const given = diffResult as SnapshotDiff | null;
  if (
    given === null ||
    typeof given !== "object" ||
    !Array.isArray(given.changes) ||
    !Array.isArray(given.topGrowers)
  ) {
    throw new HeapstateError("INVALID_SNAPSHOT", "formatDiff(diff): expected the result of diff(before, after)");
  }
  // Its paths and notes name what the readings named (reporters, regions): shown escaped.
  const d = visibleCopy(given);
  const lines = [
    `heapstate diff  pid ${d.from?.pid}${d.samePid ? "" : ` → pid ${d.to?.pid} (different processes)`}  ${d.from?.time} → ${d.to?.time}  (${(d.elapsedMs / 1000).toFixed(1)} s)`,
  ];
  const identity = Array.isArray(d.identity) ? d.identity : [];
  if (identity.length > 0) {
    lines.push("what differs in what was read:");
    append(
      lines,
      rows(
        identity.map((c) => [c.what, `${c.before ?? "(unknown)"} → ${c.after ?? "(unknown)"}`]),
        "  ",
      ),
    );
  }
  for (const n of Array.isArray(d.notes) ? d.notes : []) lines.push(`note: ${n}`);
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
  append(lines, siteChangeLines(d.sites));
  if (d.topGrowers.length) {
    lines.push("top growers (this process's resident memory):");
    append(
      lines,
      rows(
        d.topGrowers.map((c) => [c.path, signed(c.delta as number)]),
        "  ",
      ),
    );
  }
  return wrap(lines.join("\n"), width);
}

/** The largest mappings by RSS, one a line (the CLI's --top and /debug/memory?top=N in text). */
export function formatTopMappings(mappings: TopMapping[], n: number): string[] {
  // Paths are names other users chose (a library in /tmp): shown escaped.
  const list = visibleCopy(mappings);
  const lines = [`top ${n} mappings by RSS`];
  append(
    lines,
    rows(
      list.map((r) => [
        `${r.category} ${r.perms}`,
        `size ${formatBytes(r.sizeBytes).padStart(10)}  rss ${formatBytes(r.rssBytes).padStart(10)}${r.start ? `  ${r.start}-${r.end}` : ""}${r.path ? `  ${r.path}` : ""}`,
      ]),
      "  ",
    ),
  );
  return lines;
}
