/**
 * What a snapshot shows to someone else (HTTP): no addresses, file paths or environment values
 * unless asked for. Library paths become their file names; the cgroup path, environment values in
 * findings and paths inside warning messages are replaced.
 */
import { basename } from "node:path";
import type { Snapshot } from "../../core";
import { withViews } from "../../core";

export interface RedactOptions {
  addresses?: boolean;
  paths?: boolean;
  environment?: boolean;
}

const pathPattern = /\/[^\s:;'"(),]+/g;

/** A name that identifies a machine, container or pod rather than a file: long hex, a UUID. */
const identifying = /[0-9a-f]{16,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** A message with every absolute path cut to its file name ("…/libc.so.6"), or to "…" when that name identifies a container. */
export function redactText(text: string): string {
  return text.replace(pathPattern, (p) => {
    const name = basename(p);
    return identifying.test(name) ? "…" : `…/${name}`;
  });
}

export function redact(s: Snapshot, options: RedactOptions = {}): Snapshot {
  const out = withViews(structuredClone(s));
  if (!options.addresses && out.regions) {
    for (const r of out.regions) delete r.mappings;
  }
  // A native site's frame without a name is an address: it defeats ASLR like a mapping's.
  if (!options.addresses && out.nativeSites) {
    for (const site of out.nativeSites.sites)
      site.frames = site.frames.map((f) =>
        f.address !== undefined && f.symbol === undefined ? { ...f, address: "(hidden)" } : f,
      );
  }
  if (!options.paths) {
    const lib = (a: { library: string }) => {
      a.library = basename(a.library);
    };
    out.allocators.forEach(lib);
    for (const p of out.breakdown?.parts ?? []) if (p.library !== undefined) lib(p as { library: string });
    if (out.cgroup) out.cgroup.path = "(hidden)";
    if (out.identity?.hostname !== undefined) out.identity.hostname = "(hidden)";
    for (const w of out.warnings) w.message = redactText(w.message);
  }
  if (!options.environment || !options.paths) {
    for (const f of out.findings ?? []) {
      if (f.id === "preload-not-serving-malloc") {
        f.evidence.ldPreload = "(hidden)";
        f.evidence.servedBy = "(hidden)";
      }
      f.message = redactText(f.message);
    }
  }
  return out;
}
