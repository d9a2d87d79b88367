/** A previous run to compare with: read, checked record by record, and the files whose growth changed. */
import { errorText, HeapstateError, readBounded } from "../../core";
import type { BaselineChange, FileRecord, Growth, SidecarRun } from "./types";

export function compareBaseline(records: FileRecord[], baseline: SidecarRun): BaselineChange[] {
  const before = new Map(baseline.files.map((f) => [f.file, f]));
  const changes: BaselineChange[] = [];
  for (const r of records) {
    const b = before.get(r.file);
    if (!b) continue;
    const c: BaselineChange = { file: r.file, change: 0 };
    const pair = (x: number | undefined, y: number | undefined) =>
      x === undefined || y === undefined ? 0 : Math.abs(y - x);
    if (b.growth.nativeHeapBytes !== undefined) c.nativeHeapGrowthBefore = b.growth.nativeHeapBytes;
    if (r.growth.nativeHeapBytes !== undefined) c.nativeHeapGrowthNow = r.growth.nativeHeapBytes;
    if (b.growth.rssBytes !== undefined) c.rssGrowthBefore = b.growth.rssBytes;
    if (r.growth.rssBytes !== undefined) c.rssGrowthNow = r.growth.rssBytes;
    c.change = pair(c.nativeHeapGrowthBefore, c.nativeHeapGrowthNow) + pair(c.rssGrowthBefore, c.rssGrowthNow);
    changes.push(c);
  }
  return changes.sort((x, y) => y.change - x.change);
}

const growthKeys = ["rssBytes", "nativeHeapBytes", "v8HeapUsedBytes", "v8ExternalBytes"] as const;

/** The part of a record a baseline needs, checked: a file name and finite growth figures (others left out). */
function baselineRecord(value: unknown): FileRecord | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const r = value as { file?: unknown; growth?: unknown };
  if (typeof r.file !== "string" || r.growth === null || typeof r.growth !== "object") return undefined;
  const growth: Growth = {};
  for (const k of growthKeys) {
    const v = (r.growth as Record<string, unknown>)[k];
    if (typeof v === "number" && Number.isFinite(v)) growth[k] = v;
  }
  return { ...(value as FileRecord), file: r.file, growth };
}

/**
 * Reads a sidecar written before (for a baseline). Throws HeapstateError ("INVALID_SNAPSHOT")
 * naming the file when it cannot be read or is not a sidecar; records that are not records are
 * left out.
 */
export function readSidecar(path: string): SidecarRun {
  let value: unknown;
  try {
    value = JSON.parse(readBounded(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new HeapstateError(
      "INVALID_SNAPSHOT",
      `sidecar ${path}: ${code && code !== "EFBIG" ? code : errorText(error)}`,
    );
  }
  const v = value as { schema?: unknown; files?: unknown } | null;
  if (v === null || typeof v !== "object" || v.schema !== "heapstate-sidecar/1" || !Array.isArray(v.files)) {
    throw new HeapstateError(
      "INVALID_SNAPSHOT",
      `sidecar ${path}: not a heapstate sidecar (schema heapstate-sidecar/1)`,
    );
  }
  const files: FileRecord[] = [];
  for (const f of v.files) {
    const r = baselineRecord(f);
    if (r) files.push(r);
  }
  return { ...(v as SidecarRun), files };
}
