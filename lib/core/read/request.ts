/**
 * What a face is asked to read, from what a person or a program gives it: a flag's value, a query
 * parameter, an agent request's JSON, an environment variable. One parser for all of them, so a
 * wrong value is the same error everywhere, each field named as that face spells it (`--tier`,
 * `tier`, `HEAPSTATE_VITEST_TIER`). "top needs the deep tier" is decided here only.
 */
import { TIERS, type Tier } from "../model/types";

/** A plan's part that faces take from outside: the tier, and the N largest mappings (deep). */
export interface ReadRequest {
  tier: Tier;
  top?: number;
  /** The N largest native allocation sites (deep, from the allocator's sampled profile). */
  sites?: number;
}

/** The sites a request for them without a number gets. */
export const SITES_DEFAULT = 10;

/** The most mappings `top` may ask for. */
export const TOP_MAX = 1000;

/** What was given (strings from text, or values from JSON); undefined and null mean "not given". */
export interface RequestFields {
  tier?: unknown;
  top?: unknown;
  /** true (the default number of sites), or a number of sites from 1 to TOP_MAX. */
  sites?: unknown;
  /** A face's own way to ask for the deep tier (the CLI's --deep, --addresses). */
  deep?: boolean;
}

/** How the face names each field in its errors. */
export interface RequestNames {
  tier: string;
  top: string;
  sites?: string;
  /** What asked for the deep tier besides top (the CLI: "--deep, --top and --addresses"). */
  deep?: string;
}

const quoted = (v: unknown) => JSON.stringify(typeof v === "string" ? v.slice(0, 40) : String(v).slice(0, 40));

/**
 * The request, or the one-line error a face answers with (a usage error, a 400, an agent's
 * `{ ok: false }`). The tier defaults to deep when `top` or `deep` asks for it, else standard.
 */
export function parseReadRequest(
  fields: RequestFields,
  names: RequestNames = { tier: "tier", top: "top" },
): ReadRequest | { error: string } {
  const given = (v: unknown) => v !== undefined && v !== null;
  let tier: Tier | undefined;
  if (given(fields.tier)) {
    if (typeof fields.tier !== "string" || !(TIERS as readonly string[]).includes(fields.tier))
      return { error: `${names.tier} must be fast, standard or deep, received ${quoted(fields.tier)}` };
    tier = fields.tier as Tier;
  }
  let top: number | undefined;
  if (given(fields.top)) {
    const v = fields.top;
    const n = typeof v === "string" && /^\d{1,4}$/.test(v) ? Number(v) : typeof v === "number" ? v : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > TOP_MAX)
      return { error: `${names.top} must be a whole number from 1 to ${TOP_MAX}, received ${quoted(v)}` };
    top = n;
  }
  let sites: number | undefined;
  if (given(fields.sites) && fields.sites !== false) {
    const v = fields.sites;
    const n =
      v === true || v === "" || v === "true"
        ? SITES_DEFAULT
        : typeof v === "string" && /^\d{1,4}$/.test(v)
          ? Number(v)
          : typeof v === "number"
            ? v
            : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > TOP_MAX)
      return { error: `${names.sites ?? "sites"} must be a whole number from 1 to ${TOP_MAX}, received ${quoted(v)}` };
    sites = n;
  }
  const deep = top !== undefined || sites !== undefined || fields.deep === true;
  if (deep && tier !== undefined && tier !== "deep") {
    const what =
      fields.deep === true && names.deep ? names.deep : top !== undefined ? names.top : (names.sites ?? "sites");
    return { error: `${what} need${fields.deep === true && names.deep ? "" : "s"} the deep tier` };
  }
  return {
    tier: tier ?? (deep ? "deep" : "standard"),
    ...(top !== undefined ? { top } : {}),
    ...(sites !== undefined ? { sites } : {}),
  };
}
