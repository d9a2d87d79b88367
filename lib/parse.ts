/** Saved snapshots (CLI --json, HTTP, sidecars) read back. */
import { describeType, HeapstateError } from "./errors";
import type { Snapshot, Warning } from "./types";

function invalid(message: string): HeapstateError {
  return new HeapstateError("INVALID_SNAPSHOT", `parseSnapshot: ${message}`);
}

/** Drops byte figures that are not finite, non-negative numbers (unattributedBytes may be negative). */
function sanitize(value: unknown, path: string, warnings: Warning[]): void {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) sanitize(v, `${path}[${i}]`, warnings);
    return;
  }
  if (value === null || typeof value !== "object") return;
  const obj = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) {
    if (k.endsWith("Bytes")) {
      const ok =
        typeof v === "number" && Number.isFinite(v) && (v >= 0 || k === "unattributedBytes" || path.endsWith("chain"));
      if (!ok) {
        delete obj[k];
        warnings.push({
          source: "parseSnapshot",
          code: "INVALID_FIELD",
          message: `${path}.${k} was ${describeType(v)} ${JSON.stringify(v)}; left out`,
        });
      }
    } else {
      sanitize(v, `${path}.${k}`, warnings);
    }
  }
}

/**
 * Reads a snapshot saved as JSON (text or an already parsed value). Older files with missing keys
 * and newer files with unknown keys are accepted: what is missing stays absent, unknown keys are
 * kept. Anything that is not a heapstate snapshot is rejected with HeapstateError
 * ("INVALID_SNAPSHOT").
 * @example
 * const before = parseSnapshot(readFileSync("before.json", "utf8"));
 */
export function parseSnapshot(input: unknown): Snapshot {
  let value: unknown = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw invalid(`not JSON (${(error as Error).message})`);
    }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid(`expected a JSON object, received ${describeType(value)}`);
  }
  const obj = structuredClone(value) as Record<string, unknown>;
  const schema = obj.schema;
  if (typeof schema !== "string" || !/^heapstate\/\d+$/.test(schema)) {
    throw invalid(`not a heapstate snapshot: "schema" is ${JSON.stringify(schema)}, expected "heapstate/1"`);
  }
  if (typeof obj.pid !== "number" || !Number.isSafeInteger(obj.pid) || obj.pid <= 0) {
    throw invalid(`"pid" must be a positive integer, received ${describeType(obj.pid)}`);
  }
  if (typeof obj.time !== "string" || Number.isNaN(Date.parse(obj.time))) {
    throw invalid(`"time" must be an ISO-8601 time, received ${JSON.stringify(obj.time)}`);
  }
  const warnings: Warning[] = Array.isArray(obj.warnings) ? (obj.warnings as Warning[]) : [];
  obj.warnings = warnings;
  if (!Array.isArray(obj.allocators)) obj.allocators = obj.heap && typeof obj.heap === "object" ? [obj.heap] : [];
  if (schema !== "heapstate/1") {
    warnings.push({
      source: "parseSnapshot",
      code: "NEWER_SCHEMA",
      message: `written as ${schema}; read as heapstate/1 (unknown keys kept)`,
    });
  }
  sanitize(obj, "snapshot", warnings);
  return obj as unknown as Snapshot;
}
