/** snapshot(): the last fast reading, kept for a while, for callers that read often. */

import * as is from "../base/validate";
import type { Snapshot } from "../model/types";
import { collectRepeated, refuseInsideReading } from "./collect";

let cached: Snapshot | undefined;
let cachedAt = 0;

/**
 * The last snapshot if it is younger than `maxAgeMs` (default 1000), else a new `fast` one.
 * For metrics scrapes and log lines that may run often. A repeated reader: glibc's costly walk is
 * reused within its back-off (the reading says so in `heap.asOf`).
 * @example
 * app.get("/health", () => ({ rss: snapshot({ maxAgeMs: 5000 }).process?.rssBytes }));
 */
export function snapshot(options?: { maxAgeMs?: number }): Snapshot {
  // Even a cached answer: a reporter that reads is refused the same way every time, not only when the cache is old.
  refuseInsideReading("snapshot()");
  const o = is.optionsObject("snapshot(options)", options, ["maxAgeMs"]);
  const maxAgeMs = is.maxAgeMs("snapshot(options)", o.maxAgeMs, 1000);
  const now = performance.now();
  if (cached === undefined || now - cachedAt > maxAgeMs) {
    cached = collectRepeated({ tier: "fast" });
    cachedAt = now;
  }
  return cached;
}
