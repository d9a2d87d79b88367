/**
 * Copying objects on hot paths. Node 20's V8 turns `{ ...a, key: v }` and `{ ...a, ...b }` into a
 * slow path: about 1 µs each, 40 times a literal, and each result's hidden class survives young
 * collections, so a loop of readings promoted megabytes per scavenge and grew the young generation
 * to its maximum (the soak's RSS). Node 22 and later do not. Readings, scrapes and the handler copy
 * with these instead.
 */

/** A new object with `base`'s own enumerable properties, then `extra`'s (which win). */
export function extend<A extends object, B extends object>(base: A, extra: B): A & B {
  const out: Record<string, unknown> = {};
  for (const k in base) if (Object.hasOwn(base, k)) out[k] = base[k];
  for (const k in extra) if (Object.hasOwn(extra, k)) out[k] = extra[k];
  return out as A & B;
}
