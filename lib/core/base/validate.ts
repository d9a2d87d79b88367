/**
 * The one validator every public entry point checks its options with (sharp's lib/is.js is the
 * model): small functions that either return the checked value or throw HeapstateError
 * ("INVALID_OPTION") naming the function, the option, what was expected and what was received.
 * A string "false" is never a boolean, an unknown key is an error (with the closest known name),
 * and an options object whose getters or proxy traps throw is an error of ours, never theirs.
 */
import { describeType, errorText, HeapstateError, isHeapstateError } from "./errors";

/** The largest delay Node's timers take: at 2³¹ ms or more they fire after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The largest process id the kernel can give (PID_MAX_LIMIT on 64-bit), and pid_t's range. */
export const MAX_PID = 2 ** 22;

function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "bigint") return `${value}n`;
  return "";
}

/** "received a string "false"", "received a number NaN", "received an object". */
export function received(value: unknown): string {
  const v = shown(value);
  return `received ${describeType(value)}${v ? ` ${v}` : ""}`;
}

export function invalidOption(where: string, message: string): HeapstateError {
  return new HeapstateError("INVALID_OPTION", `${where}: ${message}`);
}

/** Levenshtein distance, for "did you mean". Names are short; the table is tiny. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}

function suggestion(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best ? `; did you mean "${best}"?` : "";
}

/**
 * An options argument: undefined is `{}`; anything else must be a plain object whose keys are all
 * known. Its own enumerable values are copied out once, inside the guard, so a getter that throws,
 * a revoked proxy or a trap that lies cannot throw later from inside heapstate.
 */
export function optionsObject(where: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return Object.create(null) as Record<string, unknown>;
  if (value === null || typeof value !== "object") {
    throw invalidOption(where, `options must be an object, ${received(value)}`);
  }
  const out = Object.create(null) as Record<string, unknown>;
  try {
    if (Array.isArray(value)) throw invalidOption(where, `options must be an object, ${received(value)}`);
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) {
        throw invalidOption(
          where,
          `unknown option ${JSON.stringify(key)} (known: ${known.join(", ")})${suggestion(key, known)}`,
        );
      }
      out[key] = (value as Record<string, unknown>)[key];
    }
  } catch (error) {
    if (isHeapstateError(error)) throw error;
    throw invalidOption(where, `the options object could not be read (${errorText(error)})`);
  }
  return out;
}

/** true or false; a string such as "false" is an error, never truthy. */
export function bool(where: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidOption(where, `${name} must be true or false, ${received(value)}`);
  return value;
}

/** A number option within [min, max], else `fallback` when absent. */
type Bounded = (where: string, name: string, value: unknown, fallback: number, min: number, max: number) => number;

/** An integer in [min, max]. */
export const integer: Bounded = (where, name, value, fallback, min, max) =>
  numberIn(where, name, value, fallback, min, max, true);

/** A finite number in [min, max] (fractions allowed). */
export const finite: Bounded = (where, name, value, fallback, min, max) =>
  numberIn(where, name, value, fallback, min, max, false);

function numberIn(
  where: string,
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
  whole: boolean,
): number {
  if (value === undefined) return fallback;
  const ok = typeof value === "number" && (whole ? Number.isInteger(value) : Number.isFinite(value));
  if (!ok || value < min || value > max) {
    throw invalidOption(
      where,
      `${name} must be ${whole ? "an integer" : "a number"} from ${min} to ${max}, ${received(value)}`,
    );
  }
  return value;
}

/** A timer interval in milliseconds: finite, at least `min`, below 2³¹ (Node turns longer ones into 1 ms). */
export function intervalMs(where: string, name: string, value: unknown, fallback: number, min: number): number {
  return finite(where, name, value, fallback, min, MAX_TIMER_MS);
}

/** How old a cached reading may be, in milliseconds: finite and ≥ 0. */
export function maxAgeMs(where: string, value: unknown, fallback: number): number {
  return finite(where, "maxAgeMs", value, fallback, 0, MAX_TIMER_MS);
}

/** One of a closed set of strings. */
export function oneOf<T extends string>(
  where: string,
  name: string,
  value: unknown,
  fallback: T,
  set: readonly T[],
): T {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !(set as readonly string[]).includes(value)) {
    throw invalidOption(where, `${name} must be one of ${set.join(", ")}, ${received(value)}`);
  }
  return value as T;
}

/** A non-empty string. */
export function text(where: string, name: string, value: unknown, fallback: string): string;
export function text(where: string, name: string, value: unknown, fallback?: undefined): string | undefined;
export function text(where: string, name: string, value: unknown, fallback?: string): string | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || value === "") {
    throw invalidOption(where, `${name} must be a non-empty string, ${received(value)}`);
  }
  return value;
}

/**
 * An array whose every entry passes `accept`, copied. Every index is read, holes and undefined
 * included: an entry left out is a mistake to report, not a default to take. It is read inside a
 * guard, as optionsObject reads the object: a getter that throws or a revoked proxy (Array.isArray
 * throws on one) is the caller's mistake, reported as INVALID_OPTION.
 */
export function list<T>(
  where: string,
  name: string,
  value: unknown,
  what: string,
  accept: (v: unknown) => v is T,
): T[] {
  if (value === undefined) return [];
  const out: T[] = [];
  try {
    if (!Array.isArray(value)) throw invalidOption(where, `${name} must be an array of ${what}s, ${received(value)}`);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (!accept(v)) throw invalidOption(where, `${name}[${i}] must be a ${what}, ${received(v)}`);
      out.push(v);
    }
  } catch (error) {
    if (isHeapstateError(error)) throw error;
    throw invalidOption(where, `${name} could not be read (${errorText(error)})`);
  }
  return out;
}

/** An array of non-empty strings (copied). */
export function textList(where: string, name: string, value: unknown): string[] {
  return list(where, name, value, "non-empty string", (v): v is string => typeof v === "string" && v !== "");
}

/** A function. */
export function fn<T extends (...args: never[]) => unknown>(
  where: string,
  name: string,
  value: unknown,
): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") throw invalidOption(where, `${name} must be a function, ${received(value)}`);
  return value as T;
}

/** A process id: an integer from 1 to PID_MAX_LIMIT. */
export function pid(where: string, value: unknown, fallback: number): number {
  return integer(where, "pid", value, fallback, 1, MAX_PID);
}

/** A positive decimal number written out in full ("2", "0.5"), as the CLI takes it; not "0x10", "1e3" or "Infinity". */
export function decimal(value: string): number | undefined {
  return /^\d{1,12}(\.\d{1,9})?$/.test(value) ? Number(value) : undefined;
}

const unitFactors: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Bytes as people write them: 52428800, "50MiB", "50 MB" (throws naming `what` otherwise). */
export function byteSize(what: string, value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string") {
    const m = /^\s*(\d{1,15}(?:\.\d{1,9})?)\s*([a-zA-Z]{0,3})\s*$/.exec(value);
    const factor = m ? unitFactors[(m[2] || "b").toLowerCase()] : undefined;
    const n = m && factor !== undefined ? Math.round(Number(m[1]) * factor) : undefined;
    if (n !== undefined && Number.isSafeInteger(n)) return n;
  }
  throw invalidOption(what, `expected bytes as a whole number or a string such as "50MiB", ${received(value)}`);
}
