/**
 * memoryField(): a value to attach to every log line whose string form is a one-line memory
 * summary. Reading is rate-limited through snapshot({ maxAgeMs }), so a busy logger costs one fast
 * reading per interval, not one per line.
 */
import { formatBytes, is, keyFigures, partKey, type Snapshot, snapshot } from "../core";

export interface MemoryField {
  toString(): string;
  toJSON(): Record<string, number | string>;
}

/**
 * @example
 * const mem = memoryField();
 * logger.info(`request done ${mem}`);          // "… rss 210.0 MiB = v8 5.8 MiB + native 2.8 MiB + free 160.5 MiB + …"
 * pino.info({ mem }, "request done");           // { rssBytes, …parts }
 */
export function memoryField(options?: { maxAgeMs?: number }): MemoryField {
  const o = is.optionsObject("memoryField(options)", options, ["maxAgeMs"]);
  const maxAgeMs = is.maxAgeMs("memoryField(options)", o.maxAgeMs, 10_000);
  return {
    toString: () => logLine(snapshot({ maxAgeMs })),
    toJSON: () => logFields(snapshot({ maxAgeMs })),
  };
}

/** The short names of the parts a log line shows most. */
const SHORT: Record<string, string> = {
  "v8-heap": "v8",
  "native-in-use": "native",
  "native-committed": "native(committed)",
  "native-free": "free",
  "native-free-releasable": "free(releasable)",
  "native-free-fragmented": "free(fragmented)",
  "native-metadata": "meta",
  "lazy-free": "lazyfree",
  "anon-mappings": "anon",
};

/** The log line of a reading: its RSS as the sum of its parts, and the warnings' ids. */
export function logLine(s: Snapshot): string {
  const k = keyFigures(s);
  const b = s.breakdown;
  if (!b || k.unattributedBytes === undefined) return `rss ${formatBytes(k.rssBytes)}`;
  const shown = b.parts.filter((p) => p.bytes > 0).map((p) => `${SHORT[p.name] ?? partKey(p)} ${formatBytes(p.bytes)}`);
  const findings = (s.findings ?? []).filter((f) => f.severity === "warn").map((f) => f.id);
  return `rss ${formatBytes(k.rssBytes)} = ${[...shown, `unattributed ${formatBytes(k.unattributedBytes)}`].join(" + ")}${findings.length ? ` [${findings.join(",")}]` : ""}`;
}

/** The log field of a reading as JSON: its key figures' RSS and remainder, and each part by name. */
export function logFields(s: Snapshot): Record<string, number | string> {
  const k = keyFigures(s);
  const out: Record<string, number | string> = { time: k.time };
  if (s.breakdown && k.rssBytes !== undefined && k.unattributedBytes !== undefined) {
    out.rssBytes = k.rssBytes;
    for (const p of s.breakdown.parts) out[partKey(p)] = p.bytes;
    out.unattributed = k.unattributedBytes;
  }
  return out;
}
