import type { RawValue } from "../model/types";

/**
 * A byte count or count from the allocator, or undefined. Absent stays absent, and so does a
 * value no process can have: above 2^53 it is a size_t that went below zero inside the allocator
 * (mimalloc 2.0's commit statistic does this after huge frees).
 */
export function bytes(values: Record<string, RawValue>, name: string): number | undefined {
  const v = values[name];
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** True when the allocator gave `name` but the value is not a plausible count (see bytes()). */
export function implausible(values: Record<string, RawValue>, name: string): boolean {
  return values[name] !== undefined && bytes(values, name) === undefined;
}

/** Any finite number (decay times may be -1 = never). */
export function num(values: Record<string, RawValue>, name: string): number | undefined {
  const v = values[name];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

export function str(values: Record<string, RawValue>, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function flag(values: Record<string, RawValue>, name: string): boolean | undefined {
  const v = values[name];
  return typeof v === "boolean" ? v : undefined;
}

/** a + b when both were measured; a sum with a missing term is not a measurement. */
export function sum(...terms: Array<number | undefined>): number | undefined {
  let total = 0;
  for (const t of terms) {
    if (t === undefined) return undefined;
    total += t;
  }
  return total;
}

/** Copies the defined entries only, so absent keys stay absent in JSON and in `in` checks. */
export type Defined<T> = { [K in keyof T]?: Exclude<T[K], undefined> };

export function defined<T extends object>(obj: T): Defined<T> | undefined {
  let out: Record<string, unknown> | undefined;
  // for…in, not Object.entries: no pair arrays on every reading (the objects here are literals).
  for (const k in obj) {
    if (!Object.hasOwn(obj, k)) continue;
    const v = obj[k];
    if (v !== undefined) {
      out ??= {};
      out[k] = v;
    }
  }
  return out as Defined<T> | undefined;
}

/**
 * The allocator's counters that no field of the state carries: `raw` holds each value once, so a
 * counter mapped to a field (stats.allocated → allocatedBytes) is left out of it.
 */
export function unmapped(values: Record<string, RawValue>, mapped: readonly string[]): Record<string, RawValue> {
  const out: Record<string, RawValue> = {};
  for (const k in values) if (Object.hasOwn(values, k) && !mapped.includes(k)) out[k] = values[k] as RawValue;
  return out;
}
