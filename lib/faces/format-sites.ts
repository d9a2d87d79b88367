/** The native allocation sites as text: a reading's (formatHuman) and their changes (formatDiff). */
import type { SiteChange, Snapshot } from "../core";
import { formatBytes, rows } from "../core";

function signed(n: number): string {
  return n > 0 ? `+${formatBytes(n)}` : formatBytes(n);
}

/** The native heap by allocation site (deep tier, `nativeSites`): each site's estimate, owner and first frames. */
export function sitesLines(s: Snapshot): string[] {
  const n = s.nativeSites;
  if (!n) return [];
  const lines = [
    `native heap by allocation site (${n.source}, a sample per ${formatBytes(n.sampleIntervalBytes)} on average; ${formatBytes(n.estimatedBytes)} live in ${n.samples} samples):`,
  ];
  for (const site of n.sites) {
    const owner = site.owner === "addon" && site.library ? `addon ${site.library}` : site.owner;
    lines.push(
      `  ${formatBytes(site.bytes).padStart(10)} ± ${formatBytes(site.plusMinusBytes)}  (${site.samples} samples)  ${owner}`,
    );
    for (const f of site.frames.slice(0, 3))
      lines.push(`      ${f.symbol ?? f.address ?? "?"}${f.library ? `  (${f.library})` : ""}`);
  }
  return lines;
}

/** A diff's change per native allocation site, largest growth first (none when it has no sites). */
export function siteChangeLines(sites: SiteChange[] | undefined): string[] {
  if (!Array.isArray(sites) || sites.length === 0) return [];
  return [
    "native allocation sites (estimated from the allocator's samples):",
    ...rows(
      sites.map((c) => [
        c.site,
        `${formatBytes(c.before).padStart(10)} → ${formatBytes(c.after).padStart(10)}  ${c.delta !== undefined ? `${signed(c.delta)} ± ${formatBytes(c.plusMinus)}` : "(one side lists only its largest sites)"}  ${c.owner}`,
      ]),
      "  ",
    ),
  ];
}
