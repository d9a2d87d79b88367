/** Which files had their process to themselves, and which shared it (whose growth is not theirs alone). */
import type { FileRecord } from "./types";

function overlaps(a: FileRecord, b: FileRecord): boolean {
  const s = (r: FileRecord) => Date.parse(r.start.time);
  const e = (r: FileRecord) => Date.parse(r.end.time);
  return s(a) < e(b) && s(b) < e(a);
}

/**
 * Marks each record own-process or shared-process. In a threads pool every file in the same
 * process counts as sharing it (workers run side by side); otherwise files of the same process
 * share it when their times overlap.
 */
export function attribute(records: FileRecord[], pool?: string): void {
  const threadsPool = pool !== undefined && /threads/i.test(pool);
  for (const r of records) {
    const alongside = records.filter((o) => o !== r && o.pid === r.pid && (threadsPool || overlaps(o, r)));
    r.attribution = alongside.length > 0 ? "shared-process" : "own-process";
    if (alongside.length > 0) r.sharedWith = alongside.map((o) => o.file);
    else delete r.sharedWith;
  }
}
