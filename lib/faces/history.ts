/**
 * What the page's chart shows beside the samples, computed here once: the findings' history (when
 * each finding appeared and when it cleared) and the difference between two moments of the ring.
 */
import type { FieldChange, Finding, FindingId, Tier } from "../core";
import type { Sample } from "./sampler";

/** One stretch of samples in which a finding was raised. */
export interface FindingEpisode {
  id: FindingId;
  /** The worst severity it had in the stretch. */
  severity: Finding["severity"];
  /** The tier of the last reading that raised it: only a later reading of that tier clears it. */
  tier: Tier;
  /** The time of the first sample that had it (it may be older than the ring: see `fromStart`). */
  since: string;
  /** The time of the first sample without it; absent while it is still raised. */
  until?: string;
  /** True when the oldest sample held already had it: it appeared before the history starts. */
  fromStart: boolean;
}

/**
 * The findings' episodes over the samples, oldest first. A raised finding is cleared only by a later
 * sample without it of the tier that last raised it: a cheaper reading may be unable to judge it
 * (the fast tier does not walk glibc's heap), and a sampler that falls back to the fast tier would
 * otherwise clear and raise it again at every change of tier. A sample without a `findings` list
 * (one from an older sampler) neither opens nor closes an episode.
 */
export function findingEpisodes(samples: readonly Sample[]): FindingEpisode[] {
  const done: FindingEpisode[] = [];
  const open = new Map<FindingId, FindingEpisode>();
  samples.forEach((s, i) => {
    if (!s.findings) return;
    const now = new Map(s.findings.map((f) => [f.id, f.severity] as const));
    for (const [id, episode] of open) {
      if (episode.tier !== s.tier || now.has(id)) continue;
      episode.until = s.time;
      done.push(episode);
      open.delete(id);
    }
    for (const [id, severity] of now) {
      const episode = open.get(id);
      if (episode) {
        if (severity === "warn") episode.severity = "warn";
        episode.tier = s.tier;
      } else {
        open.set(id, { id, severity, tier: s.tier, since: s.time, fromStart: i === 0 });
      }
    }
  });
  return [...done, ...open.values()].sort((a, b) => a.since.localeCompare(b.since) || a.id.localeCompare(b.id));
}

/** Two moments of the history compared: the page's "pick two moments". */
export interface SampleDiff {
  from: { time: string; tier: Tier };
  to: { time: string; tier: Tier };
  elapsedMs: number;
  /** What the comparison leaves out and why. */
  notes: string[];
  /** rssBytes, allocatedBytes, committedBytes, nativeUnclassifiedBytes, then each part of the breakdown and unattributedBytes. */
  changes: FieldChange[];
  /** Findings raised at `to` and not at `from`, and the reverse. */
  findingsRaised: FindingId[];
  findingsCleared: FindingId[];
}

function change(path: string, before: number | undefined, after: number | undefined): FieldChange | undefined {
  if (before === undefined && after === undefined) return undefined;
  return {
    path,
    ...(before !== undefined ? { before } : {}),
    ...(after !== undefined ? { after } : {}),
    ...(before !== undefined && after !== undefined ? { delta: after - before } : {}),
  };
}

/**
 * Compares two samples. When their tiers differ (the sampler reads the fast tier while the chosen
 * one is too costly), the breakdown's parts are not compared: a fast reading's "file" holds what
 * a standard one splits.
 */
export function diffSamples(a: Sample, b: Sample): SampleDiff {
  const notes: string[] = [];
  const changes: FieldChange[] = [];
  const push = (c: FieldChange | undefined) => {
    if (c) changes.push(c);
  };
  push(change("rssBytes", a.rssBytes, b.rssBytes));
  push(change("allocatedBytes", a.allocatedBytes, b.allocatedBytes));
  push(change("committedBytes", a.committedBytes, b.committedBytes));
  push(change("nativeUnclassifiedBytes", a.nativeUnclassifiedBytes, b.nativeUnclassifiedBytes));
  if (a.tier === b.tier) {
    const names = [...Object.keys(a.parts), ...Object.keys(b.parts).filter((k) => !(k in a.parts))];
    for (const name of names) push(change(`parts.${name}`, a.parts[name], b.parts[name]));
    push(change("unattributedBytes", a.unattributedBytes, b.unattributedBytes));
  } else {
    notes.push(
      `the breakdown's parts are not compared: the samples were read in different tiers (${a.tier}, ${b.tier})`,
    );
  }
  const ids = (s: Sample) => new Set((s.findings ?? []).map((f) => f.id));
  const before = ids(a);
  const after = ids(b);
  if (!a.findings || !b.findings) notes.push("a sample has no findings list: raised and cleared are not known");
  const known = a.findings !== undefined && b.findings !== undefined;
  return {
    from: { time: a.time, tier: a.tier },
    to: { time: b.time, tier: b.tier },
    elapsedMs: Date.parse(b.time) - Date.parse(a.time),
    notes,
    changes,
    findingsRaised: known ? [...after].filter((id) => !before.has(id)) : [],
    findingsCleared: known ? [...before].filter((id) => !after.has(id)) : [],
  };
}
