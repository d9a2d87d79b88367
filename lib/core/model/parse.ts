/**
 * Saved snapshots (CLI --json, HTTP, sidecars) read back. Whatever arrives — text that is not
 * JSON, JSON of another shape, an object with getters that throw, a proxy, a cycle, BigInt,
 * functions, nesting a million deep — gives HeapstateError ("INVALID_SNAPSHOT") or a snapshot whose
 * known parts have the documented shape: what does not is left out with a warning.
 */
import { describeType, errorText, HeapstateError, isHeapstateError } from "../base/errors";
import { Checker, checkShape, isObject, type Obj, short } from "./parse-check";
import { upgradeFromV1, upgradeFromV2 } from "./parse-upgrade";
import { SCHEMA, type Snapshot, type Warning } from "./types";
import { withViews } from "./views";

/** A snapshot is six levels deep; anything past this is not one, and would only make later walks deep. */
const MAX_DEPTH = 64;

function invalid(message: string): HeapstateError {
  return new HeapstateError("INVALID_SNAPSHOT", `parseSnapshot: ${message}`);
}

/**
 * A value given in memory, made plain JSON text first: toJSON, getters and proxy traps run here,
 * inside the guard, and what JSON cannot hold (a cycle, BigInt, a function) is our error.
 */
function plainText(value: unknown): string {
  try {
    const text = JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === "bigint") throw invalid("a BigInt is not a JSON value");
      if (typeof v === "function" || typeof v === "symbol") throw invalid(`${describeType(v)} is not a JSON value`);
      return v;
    });
    if (typeof text !== "string") throw invalid(`expected a JSON object, received ${describeType(value)}`);
    return text;
  } catch (error) {
    if (isHeapstateError(error)) throw error;
    const message = errorText(error);
    if (error instanceof RangeError) throw invalid(`nested too deeply to be a snapshot (${message})`);
    throw invalid(`the value could not be read as JSON (${message})`);
  }
}

/** Depth of a parsed JSON value, without recursion (a string of a million "[" must not overflow the stack). */
function tooDeep(root: unknown): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== "object") continue;
    if (depth > MAX_DEPTH) return true;
    for (const child of Object.values(v as Obj))
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Reads a snapshot saved as JSON (text, bytes or an already parsed value). Older files with missing
 * keys and newer files with unknown keys are accepted: what is missing stays absent, unknown keys
 * are kept. Known parts of the wrong shape are left out, each with an `INVALID_FIELD` warning.
 * Anything that is not a heapstate snapshot is rejected with HeapstateError ("INVALID_SNAPSHOT").
 * @example
 * const before = parseSnapshot(readFileSync("before.json", "utf8"));
 */
export function parseSnapshot(input: unknown): Snapshot {
  let text: string;
  try {
    text =
      typeof input === "string"
        ? input
        : input instanceof Uint8Array
          ? Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString("utf8")
          : plainText(input);
  } catch (error) {
    // A revoked proxy throws even from instanceof.
    if (isHeapstateError(error)) throw error;
    throw invalid(`the value could not be read (${errorText(error)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(`not JSON (${errorText(error)})`);
  }
  if (!isObject(value)) throw invalid(`expected a JSON object, received ${describeType(value)}`);
  if (tooDeep(value)) throw invalid(`nested deeper than ${MAX_DEPTH} levels: not a snapshot`);
  const obj = value;
  const schema = obj.schema;
  if (typeof schema !== "string" || !/^heapstate\/\d+$/.test(schema)) {
    throw invalid(`not a heapstate snapshot: "schema" is ${short(schema)}, expected "${SCHEMA}"`);
  }
  if (typeof obj.pid !== "number" || !Number.isSafeInteger(obj.pid) || obj.pid <= 0) {
    throw invalid(`"pid" must be a positive integer, received ${describeType(obj.pid)}`);
  }
  if (typeof obj.time !== "string" || Number.isNaN(Date.parse(obj.time))) {
    throw invalid(`"time" must be an ISO-8601 time, received ${short(obj.time)}`);
  }
  if (obj.tier !== "fast" && obj.tier !== "standard" && obj.tier !== "deep") {
    throw invalid(`"tier" must be fast, standard or deep, received ${short(obj.tier)}`);
  }
  if (!Array.isArray(obj.warnings)) obj.warnings = [];
  const c = new Checker();
  const version = Number(schema.slice("heapstate/".length));
  checkShape(obj, c, version);
  if (version === 1) upgradeFromV1(obj);
  if (version <= 2) upgradeFromV2(obj);
  // The serving allocator is a view of `allocators` (views.ts), never a second copy.
  delete obj.heap;
  const warnings = obj.warnings as Warning[];
  if (version <= 2) {
    warnings.push({
      source: "parseSnapshot",
      code: "UPGRADED_SCHEMA",
      message: `written as heapstate/${version}; read as ${SCHEMA} (${version === 1 ? "the exact RSS moved to process.rssBytes, the chain's byte figures dropped, " : ""}the breakdown partitions process.rssBytes and no longer repeats it, jemalloc's pages.activeBytes and pages.retainedBytes are its activeBytes and retainedBytes)`,
    });
  } else if (version > 3) {
    warnings.push({
      source: "parseSnapshot",
      code: "NEWER_SCHEMA",
      message: `written as ${schema}; read as ${SCHEMA} (unknown keys kept)`,
    });
  }
  obj.schema = SCHEMA;
  for (const w of c.warnings) warnings.push(w);
  return withViews(obj as unknown as Snapshot);
}
