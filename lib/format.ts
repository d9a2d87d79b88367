/** Human text of a snapshot. */
import type { AllocatorState, PageStates, Snapshot } from "./types";
import { formatBytes } from "./units";

const pageLabels: Array<[keyof PageStates, string]> = [
  ["activeBytes", "active"],
  ["dirtyBytes", "dirty (free, resident)"],
  ["muzzyBytes", "muzzy (MADV_FREE, lazily freed)"],
  ["retainedBytes", "retained (released, virtual only)"],
  ["releasedBytes", "released (unmapped)"],
  ["freeBytes", "free (resident or trimmed)"],
  ["topReleasableBytes", "top chunk (trimmable)"],
  ["cachedBytes", "free in caches"],
];

function rows(pairs: Array<[string, string]>, indent: string): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`);
}

function allocatorLines(a: AllocatorState, indent: string): string[] {
  const lines = [
    `${indent}${a.allocator}${a.version ? ` ${a.version}` : ""}  ${a.library}${a.servesMalloc ? "  (serves malloc)" : ""}`,
  ];
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
  if (pairs.length > 0) lines.push(...rows(pairs, `${indent}  `));
  return lines;
}

/**
 * The snapshot as a few aligned lines for a terminal or a log.
 * @example
 * console.log(formatHuman(collect()));
 */
export function formatHuman(s: Snapshot): string {
  const lines = [`heapstate  pid ${s.pid}  ${s.time}  tier ${s.tier}  (${s.costMicros} µs)`];
  const p = s.process;
  if (p) {
    lines.push(
      ...rows(
        [
          ["rss", formatBytes(p.rssBytes)],
          ["  anon / file / shmem", [p.rssAnonBytes, p.rssFileBytes, p.rssShmemBytes].map(formatBytes).join(" / ")],
          ["peak rss", formatBytes(p.peakRssBytes)],
          ["swap", formatBytes(p.swapBytes)],
        ],
        "",
      ),
    );
  }
  if (s.heap) {
    lines.push("heap (the allocator that serves malloc):", ...allocatorLines(s.heap, "  "));
  } else {
    lines.push("heap: (unknown)");
  }
  const others = s.allocators.filter((a) => a !== s.heap);
  if (others.length > 0) {
    lines.push("other allocators in the process:");
    for (const a of others) lines.push(...allocatorLines(a, "  "));
  }
  for (const w of s.warnings) lines.push(`warning [${w.code}] ${w.source}: ${w.message}`);
  return lines.join("\n");
}
