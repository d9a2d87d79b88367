/**
 * Growth per native allocation site between two readings that both carry `nativeSites` (the same
 * process, the same profile source): each site named in either, matched by its first frame. A site
 * one side did not list counts as 0 there only when that side listed every site of its profile
 * (`complete`: the site had no sample); else that side listed only its largest sites, so its figure
 * is absent, and the change with it.
 */
import type { NativeSite, NativeSites, Snapshot } from "./types";

export interface SiteChange {
  /** The site's first frame: its symbol (or address) and library, as the readings name it. */
  site: string;
  owner: NativeSite["owner"];
  before?: number;
  after?: number;
  /** after − before; absent when a side did not list the site and listed only its largest. */
  delta?: number;
  /** One standard error of the change, from both sides' sample counts (√(±before² + ±after²)). */
  plusMinus?: number;
}

function keyOf(s: NativeSite): string | undefined {
  const f = s.frames?.[0];
  if (!f || typeof f !== "object") return undefined;
  const name = f.symbol ?? f.address;
  return typeof name === "string" ? `${name}${typeof f.library === "string" ? ` (${f.library})` : ""}` : undefined;
}

function listed(n: NativeSites | undefined): Map<string, NativeSite> {
  const out = new Map<string, NativeSite>();
  for (const s of Array.isArray(n?.sites) ? n.sites : []) {
    const k = s && typeof s === "object" ? keyOf(s) : undefined;
    if (k !== undefined && typeof s.bytes === "number" && !out.has(k)) out.set(k, s);
  }
  return out;
}

/**
 * The sites' changes, largest growth first (those with a change, then the rest), or a note saying
 * why the sites were not compared. Addresses are compared only within one process.
 */
export function siteChanges(a: Snapshot, b: Snapshot): { sites?: SiteChange[]; note?: string } {
  if (a.nativeSites === undefined && b.nativeSites === undefined) return {};
  if (a.nativeSites === undefined || b.nativeSites === undefined)
    return { note: "only one reading has native allocation sites: they are not compared" };
  if (a.pid !== b.pid) return { note: "native allocation sites are compared within one process only" };
  if (a.nativeSites.source !== b.nativeSites.source)
    return { note: "the native allocation sites come from different profiles: they are not compared" };
  const before = listed(a.nativeSites);
  const after = listed(b.nativeSites);
  const out: SiteChange[] = [];
  // A complete list's missing site had no sample: 0 bytes, with no ± of its own.
  const none = (n: NativeSites) => (n.complete === true ? ({ bytes: 0, plusMinusBytes: 0 } as NativeSite) : undefined);
  for (const site of new Set([...before.keys(), ...after.keys()])) {
    const x = before.get(site) ?? none(a.nativeSites);
    const y = after.get(site) ?? none(b.nativeSites);
    const c: SiteChange = { site, owner: (after.get(site) ?? before.get(site))?.owner ?? "unclassified" };
    if (x) c.before = x.bytes;
    if (y) c.after = y.bytes;
    if (x && y) {
      c.delta = y.bytes - x.bytes;
      c.plusMinus = Math.round(Math.hypot(x.plusMinusBytes ?? 0, y.plusMinusBytes ?? 0));
    }
    out.push(c);
  }
  out.sort((p, q) => (q.delta ?? Number.NEGATIVE_INFINITY) - (p.delta ?? Number.NEGATIVE_INFINITY));
  return { sites: out };
}
