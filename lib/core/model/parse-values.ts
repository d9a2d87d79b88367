/** The values of a parsed file, checked one by one: what is not of its documented shape is dropped, and said. */
import { describeType } from "../base/errors";
import type { Warning } from "./types";

export type Obj = Record<string, unknown>;

export function isObject(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export class Checker {
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

export function short(v: unknown): string {
  try {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 40 ? `${s.slice(0, 40)}…` : s;
  } catch {
    return "";
  }
}
