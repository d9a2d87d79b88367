/**
 * memoryField(): a value to attach to every log line whose string form is a one-line memory
 * summary. Reading is rate-limited through snapshot({ maxAgeMs }), so a busy logger costs one fast
 * reading per interval, not one per line.
 */
import { formatBytes, is, partKey, snapshot } from "../core";

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
  const parts = () => {
    const s = snapshot({ maxAgeMs });
    return { s, b: s.breakdown };
  };
  return {
    toString() {
      const { s, b } = parts();
      if (!b) return `rss ${formatBytes(s.process?.rssBytes)}`;
      // b.rssBytes is process.rssBytes: the reading's one RSS.
      const short: Record<string, string> = {
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
      const shown = b.parts
        .filter((p) => p.bytes > 0)
        .map((p) => `${short[p.name] ?? partKey(p)} ${formatBytes(p.bytes)}`);
      const findings = (s.findings ?? []).filter((f) => f.severity === "warn").map((f) => f.id);
      return `rss ${formatBytes(b.rssBytes)} = ${[...shown, `unattributed ${formatBytes(b.unattributedBytes)}`].join(" + ")}${findings.length ? ` [${findings.join(",")}]` : ""}`;
    },
    toJSON() {
      const { s, b } = parts();
      const out: Record<string, number | string> = { time: s.time };
      if (b) {
        out.rssBytes = b.rssBytes;
        for (const p of b.parts) out[partKey(p)] = p.bytes;
        out.unattributed = b.unattributedBytes;
      }
      return out;
    },
  };
}
