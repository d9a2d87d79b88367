/**
 * Saved snapshots (CLI --json, HTTP, sidecars) read back. Whatever arrives — text that is not
 * JSON, JSON of another shape, an object with getters that throw, a proxy, a cycle, BigInt,
 * functions, nesting a million deep — gives HeapstateError ("INVALID_SNAPSHOT") or a snapshot whose
 * known parts have the documented shape: what does not is left out with a warning.
 */
import { describeType, errorText, HeapstateError, isHeapstateError } from "../base/errors";
import { SCHEMA, type Snapshot, type Warning } from "./types";
import { withViews } from "./views";

/** A snapshot is six levels deep; anything past this is not one, and would only make later walks deep. */
const MAX_DEPTH = 64;

function invalid(message: string): HeapstateError {
  return new HeapstateError("INVALID_SNAPSHOT", `parseSnapshot: ${message}`);
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
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

class Checker {
  readonly warnings: Warning[] = [];

  drop(path: string, why: string): void {
    this.warnings.push({ source: "parseSnapshot", code: "INVALID_FIELD", message: `${path} ${why}; left out` });
  }

  /** A byte figure: a finite number ≥ 0 (or any finite number where `signed`). */
  bytesOk(v: unknown, signed: boolean): boolean {
    return typeof v === "number" && Number.isFinite(v) && (signed || v >= 0);
  }

  /** Drops every `…Bytes` key of `obj` that is not a byte figure. */
  bytesOf(obj: Obj, path: string, signedKeys: readonly string[] = []): void {
    for (const [k, v] of Object.entries(obj)) {
      if (k.endsWith("Bytes") && !this.bytesOk(v, signedKeys.includes(k))) {
        delete obj[k];
        this.drop(`${path}.${k}`, `was ${describeType(v)} ${short(v)}`);
      }
    }
  }

  /** Drops each of `keys` in `obj` that is present and not a count (a finite number ≥ 0). */
  countsOf(obj: Obj, path: string, keys: readonly string[]): void {
    for (const k of keys) {
      const v = obj[k];
      if (v !== undefined && !this.bytesOk(v, false)) {
        delete obj[k];
        this.drop(`${path}.${k}`, `was ${describeType(v)} ${short(v)}, not a count`);
      }
    }
  }

  /** Drops each of `keys` in `obj` that is present and not a string. */
  stringsOf(obj: Obj, path: string, keys: readonly string[]): void {
    for (const k of keys) {
      const v = obj[k];
      if (v !== undefined && typeof v !== "string") {
        delete obj[k];
        this.drop(`${path}.${k}`, `was ${describeType(v)}, not a string`);
      }
    }
  }

  /** An object at `obj[key]`, or the key dropped. */
  object(obj: Obj, key: string, path: string): Obj | undefined {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (isObject(v)) return v;
    delete obj[key];
    this.drop(`${path}.${key}`, `was ${describeType(v)}, not an object`);
    return undefined;
  }

  /** An array of objects at `obj[key]` that pass `ok`; the rest dropped. */
  list(obj: Obj, key: string, path: string, ok: (item: Obj, at: string) => string | undefined): Obj[] | undefined {
    const v = obj[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) {
      delete obj[key];
      this.drop(`${path}.${key}`, `was ${describeType(v)}, not an array`);
      return undefined;
    }
    const kept: Obj[] = [];
    for (let i = 0; i < v.length; i++) {
      const item: unknown = v[i];
      const at = `${path}.${key}[${i}]`;
      const why = isObject(item) ? ok(item, at) : `was ${describeType(item)}, not an object`;
      if (why === undefined) kept.push(item as Obj);
      else this.drop(at, why);
    }
    obj[key] = kept;
    return kept;
  }
}

function short(v: unknown): string {
  try {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 40 ? `${s.slice(0, 40)}…` : s;
  } catch {
    return "";
  }
}

const str = (v: unknown) => typeof v === "string";

function allocatorProblem(c: Checker, a: Obj, at: string): string | undefined {
  if (!str(a.allocator) || !str(a.library)) return "has no allocator or library name";
  if (a.servesMalloc !== undefined && typeof a.servesMalloc !== "boolean")
    return "has a servesMalloc that is not a boolean";
  c.bytesOf(a, at);
  const pages = c.object(a, "pages", at);
  if (pages) c.bytesOf(pages, `${at}.pages`);
  c.object(a, "config", at);
  c.object(a, "raw", at);
  c.stringsOf(a, at, ["version", "asOf"]);
  const limit = c.object(a, "arenaLimit", at);
  if (limit && (!c.bytesOk(limit.arenas, false) || !str(limit.source))) {
    delete a.arenaLimit;
    c.drop(`${at}.arenaLimit`, "is not a limit (arenas, source)");
  }
  const groups = c.object(a, "arenaGroups", at);
  if (groups) {
    for (const key of ["main", "threads"]) {
      const g = c.object(groups, key, `${at}.arenaGroups`);
      if (g) {
        c.bytesOf(g, `${at}.arenaGroups.${key}`);
        c.countsOf(g, `${at}.arenaGroups.${key}`, ["arenas"]);
      }
    }
  }
  if (a.arenas !== undefined && !(typeof a.arenas === "number" && Number.isFinite(a.arenas) && a.arenas >= 0)) {
    delete a.arenas;
    c.drop(`${at}.arenas`, "was not a count");
  }
  return undefined;
}

/** Checks the known parts of a parsed snapshot in place. */
function checkShape(obj: Obj, c: Checker): void {
  c.list(obj, "warnings", "snapshot", (w) =>
    str(w.code) && str(w.message) && str(w.source) ? undefined : "is not a warning (source, code, message)",
  );
  for (const key of ["process", "v8"]) {
    const part = c.object(obj, key, "snapshot");
    if (part) c.bytesOf(part, `snapshot.${key}`);
  }
  const proc = obj.process as Obj | undefined;
  if (proc) {
    c.countsOf(proc, "snapshot.process", ["threads"]);
    c.stringsOf(proc, "snapshot.process", ["rssSource"]);
    const names = c.object(proc, "threadNames", "snapshot.process");
    if (names) c.countsOf(names, "snapshot.process.threadNames", Object.keys(names));
  }
  const cpu = c.object(obj, "cpu", "snapshot");
  if (cpu) c.countsOf(cpu, "snapshot.cpu", ["onlineCpus", "quotaCpus"]);
  const peak = c.object(obj, "peak", "snapshot");
  if (peak && (!c.bytesOk(peak.rssBytes, false) || !str(peak.since) || !str(peak.source))) {
    delete obj.peak;
    c.drop("snapshot.peak", "is not a peak (rssBytes, since, source)");
  }
  const auto = c.object(obj, "autoTrim", "snapshot");
  if (auto) {
    c.bytesOf(auto, "snapshot.autoTrim");
    c.countsOf(auto, "snapshot.autoTrim", [
      "baseIntervalMs",
      "intervalMs",
      "maxPauseMs",
      "checks",
      "trims",
      "skippedBelowFloor",
      "skippedPause",
      "skippedUnmeasured",
      "maxObservedPauseMs",
    ]);
    for (const key of ["lastTrim", "lastSkip"]) {
      const last = c.object(auto, key, "snapshot.autoTrim");
      if (!last) continue;
      c.bytesOf(last, `snapshot.autoTrim.${key}`);
      c.countsOf(last, `snapshot.autoTrim.${key}`, ["pauseMs", "pauseCpuMs", "predictedPauseMs"]);
      c.stringsOf(last, `snapshot.autoTrim.${key}`, ["time", "reason"]);
    }
  }
  const v8 = obj.v8 as Obj | undefined;
  if (v8) {
    c.list(v8, "spaces", "snapshot.v8", (sp, at) => {
      if (!str(sp.name)) return "has no name";
      c.bytesOf(sp, at);
      return undefined;
    });
  }
  const cg = c.object(obj, "cgroup", "snapshot");
  if (cg) {
    c.bytesOf(cg, "snapshot.cgroup");
    c.countsOf(cg, "snapshot.cgroup", ["oomEvents", "oomKillEvents"]);
    if ((cg.version !== 1 && cg.version !== 2) || !str(cg.path) || cg.usageBytes === undefined) {
      delete obj.cgroup;
      c.drop("snapshot.cgroup", "has no version, path or usage");
    }
  }
  const heap = c.object(obj, "heap", "snapshot");
  if (heap) {
    const why = allocatorProblem(c, heap, "snapshot.heap");
    if (why) {
      delete obj.heap;
      c.drop("snapshot.heap", why);
    }
  }
  if (obj.allocators === undefined) obj.allocators = obj.heap ? [obj.heap] : [];
  c.list(obj, "allocators", "snapshot", (a, at) => allocatorProblem(c, a, at));
  obj.allocators ??= [];
  c.list(obj, "regions", "snapshot", (r, at) => {
    if (!str(r.category)) return "has no category";
    if (!c.bytesOk(r.count, false)) return "has no mapping count";
    c.bytesOf(r, at);
    if (r.mappings !== undefined && !Array.isArray(r.mappings)) delete r.mappings;
    return undefined;
  });
  const b = c.object(obj, "breakdown", "snapshot");
  if (b) {
    const why = breakdownProblem(c, b);
    if (why) {
      delete obj.breakdown;
      c.drop("snapshot.breakdown", why);
    }
  }
  c.list(obj, "findings", "snapshot", (f) => {
    if (!str(f.id) || !str(f.message) || (f.severity !== "info" && f.severity !== "warn"))
      return "is not a finding (id, severity, message)";
    if (!isObject(f.evidence)) f.evidence = {};
    for (const [k, v] of Object.entries(f.evidence as Obj)) {
      if (!str(v) && !(typeof v === "number" && Number.isFinite(v))) delete (f.evidence as Obj)[k];
    }
    return undefined;
  });
  const identity = c.object(obj, "identity", "snapshot");
  if (identity) {
    for (const [k, v] of Object.entries(identity)) if (typeof v !== "string") delete identity[k];
  }
  const costs = c.object(obj, "sourceCostMicros", "snapshot");
  if (costs) {
    for (const [k, v] of Object.entries(costs)) if (!(typeof v === "number" && Number.isFinite(v))) delete costs[k];
  }
  if (obj.costMicros !== undefined && !(typeof obj.costMicros === "number" && Number.isFinite(obj.costMicros))) {
    c.drop("snapshot.costMicros", "was not a number");
    delete obj.costMicros;
  }
}

/** Why a breakdown cannot be kept: its parts must be byte figures that, with the remainder, add up to its RSS. */
function breakdownProblem(c: Checker, b: Obj): string | undefined {
  if (!c.bytesOk(b.rssBytes, false)) return "has no RSS figure";
  if (!c.bytesOk(b.unattributedBytes, true)) return "has no remainder figure";
  if (!Array.isArray(b.parts)) return "has no parts array";
  for (const p of b.parts as unknown[]) {
    if (!isObject(p) || !str(p.name) || !str(p.source) || !c.bytesOk(p.bytes, false)) {
      return "has a part that is not a part (name, bytes ≥ 0, source)";
    }
  }
  (b.parts as Obj[]).forEach((p, i) => {
    if (p.children === undefined) return;
    const children = p.children;
    let sum = 0;
    const ok =
      Array.isArray(children) &&
      children.every((k: unknown) => {
        if (!isObject(k) || !str(k.name) || !str(k.source) || !c.bytesOk(k.bytes, false)) return false;
        sum += k.bytes as number;
        return true;
      }) &&
      sum === p.bytes;
    if (!ok) {
      delete p.children;
      c.drop(`snapshot.breakdown.parts[${i}].children`, "were not parts adding up to their part");
    }
  });
  const chain = c.object(b, "chain", "snapshot.breakdown");
  if (chain) {
    for (const [k, v] of Object.entries(chain)) {
      if (!(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
        delete chain[k];
        c.drop(`snapshot.breakdown.chain.${k}`, `was ${short(v)}`);
      }
    }
  }
  return undefined;
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
  checkShape(obj, c);
  if (version === 1) upgradeFromV1(obj);
  // The serving allocator is a view of `allocators` (views.ts), never a second copy.
  delete obj.heap;
  const warnings = obj.warnings as Warning[];
  if (version === 1) {
    warnings.push({
      source: "parseSnapshot",
      code: "UPGRADED_SCHEMA",
      message: `written as heapstate/1; read as ${SCHEMA} (the exact RSS moved to process.rssBytes, the chain's byte figures dropped)`,
    });
  } else if (version > 2) {
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

/**
 * heapstate/1 → heapstate/2: the allocator serving malloc was written twice (`heap` and
 * `allocators[0]`); the breakdown's exact RSS was not `process.rssBytes` (status VmRSS was); the
 * chain repeated byte figures the allocator and the breakdown carry.
 */
function upgradeFromV1(obj: Obj): void {
  const heap = obj.heap;
  const allocators = obj.allocators as Obj[];
  if (isObject(heap) && !allocators.some((a) => a.servesMalloc === true)) {
    allocators.unshift({ ...heap, servesMalloc: true });
  }
  const b = obj.breakdown as Obj | undefined;
  const p = obj.process as Obj | undefined;
  if (b && p) {
    if (b.rssSource === "smaps_rollup" && typeof b.rssBytes === "number") {
      if (typeof p.rssBytes === "number") p.statusRssBytes = p.rssBytes;
      p.rssBytes = b.rssBytes;
      p.rssSource = "smaps_rollup";
    } else if (typeof p.rssBytes === "number") {
      p.rssSource = "status";
    }
  }
  const chain = b?.chain as Obj | undefined;
  if (chain) {
    for (const k of ["allocatedBytes", "activeBytes", "residentBytes", "rssBytes"]) delete chain[k];
    if (Object.keys(chain).length === 0) delete b?.chain;
  }
}
