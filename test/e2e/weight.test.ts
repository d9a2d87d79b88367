/**
 * What a reading leaves behind in V8. Readings built objects that each had a hidden class of
 * their own (a getter made per snapshot; `{ ...a, b }` copies under Node 20's V8): the classes
 * outlived young collections, and a loop of readings grew the young generation to its maximum
 * (the soak's RSS, +35 MiB over 100 000 readings). These checks ask V8 itself, in a child: whether
 * two readings of the same kind share their classes (--allow-natives-syntax), and how much its
 * young collections promote during a loop of readings (--trace-gc-nvp). Neither depends on the
 * machine's load: what is live when a scavenge runs is what the code keeps, not how fast it ran.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { childEnv, dist } from "../helpers";

/** Average bytes promoted per scavenge while a child runs `body`, and how many scavenges ran. */
function promotedPerScavenge(body: string): { scavenges: number; averageBytes: number } {
  const script = `const h = require(${JSON.stringify(dist)});\n${body}`;
  const text = execFileSync(process.execPath, ["--trace-gc-nvp", "-e", script], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
    env: childEnv(),
  });
  let scavenges = 0;
  let promoted = 0;
  for (const line of text.split("\n")) {
    // name=value pairs up to V8 13; V8 14 (Node 26) prints `GC: {json}` instead.
    const json = /GC: (\{.*\})\s*$/.exec(line)?.[1];
    let kind: string | undefined;
    let bytes: number | undefined;
    if (json !== undefined) {
      try {
        const o = JSON.parse(json) as { gc?: string; promoted?: number };
        kind = o.gc;
        bytes = o.promoted;
      } catch {
        continue;
      }
    } else {
      kind = /\bgc=(\w+)/.exec(line)?.[1];
      const m = /\bpromoted=(\d+)/.exec(line);
      bytes = m ? Number(m[1]) : undefined;
    }
    if (kind !== "s" || bytes === undefined) continue;
    scavenges++;
    promoted += bytes;
  }
  const averageBytes = scavenges === 0 ? 0 : promoted / scavenges;
  console.log(`promoted per scavenge: ${Math.round(averageBytes)} B over ${scavenges} scavenges`);
  return { scavenges, averageBytes };
}

function sameClasses(body: string): Record<string, boolean> {
  const script = `
const h = require(${JSON.stringify(dist)});
const same = (a, b) => %HaveSameMap(a, b);
const out = {};
${body}
process.stdout.write(JSON.stringify(out));
`;
  const text = execFileSync(process.execPath, ["--allow-natives-syntax", "-e", script], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
    env: childEnv(),
  });
  return JSON.parse(text) as Record<string, boolean>;
}

describe("readings share their hidden classes", () => {
  it("two readings of a tier, their parts, allocators and figures", () => {
    const out = sameClasses(`
for (const tier of ["fast", "standard"]) {
  h.collect({ tier });
  const a = h.collect({ tier });
  const b = h.collect({ tier });
  out[tier + " snapshot"] = same(a, b);
  out[tier + " allocator"] = same(a.allocators[0], b.allocators[0]);
  out[tier + " process"] = same(a.process, b.process);
  out[tier + " breakdown"] = same(a.breakdown, b.breakdown);
  // Parts with the same keys, in any order: V8's heap part has its spaces as children only when
  // they add up to its total, and a collection between the two reads (CI, Node 22) leaves them out.
  const keys = (o) => Object.keys(o).sort().join();
  a.breakdown.parts.forEach((p, i) => {
    const q = b.breakdown.parts[i];
    if (q && q.name === p.name && keys(p) === keys(q)) out[tier + " part " + p.name] = same(p, q);
  });
}
`);
    // The reading has parts to compare (the check is not vacuous), and every pair matches.
    expect(Object.keys(out).filter((k) => k.includes(" part ")).length).toBeGreaterThanOrEqual(6);
    expect(Object.entries(out).filter(([, v]) => !v)).toEqual([]);
  });

  it("a snapshot copied for a scrape or a reused walk keeps one class per kind of copy", () => {
    const out = sameClasses(`
const s1 = h.collect({ tier: "fast" });
const s2 = h.collect({ tier: "fast" });
const { prometheusText } = require(${JSON.stringify(dist.replace(/index\.js$/, "faces/metrics/prometheus.js"))});
prometheusText(s1);
const cached = () => h.snapshot({ maxAgeMs: 0 });
cached();
out["snapshot()"] = same(cached(), cached());
out["withViews copy"] = same(h.parseSnapshot(JSON.stringify(s1)), h.parseSnapshot(JSON.stringify(s2)));
`);
    expect(Object.entries(out).filter(([, v]) => !v)).toEqual([]);
    expect(Object.keys(out)).toHaveLength(2);
  });
});

describe("a loop of readings leaves nothing for the old generation", () => {
  it("young collections during 20 000 fast and 2 000 standard readings promote a few KiB each", () => {
    // Leak-free code promotes what happened to be live at two scavenges in a row: here a few KiB
    // (the readings' caches, V8's own: 1 to 3 KiB here). A getter made per reading promoted 38 KiB each,
    // a spread copy per part 0.1 to 1.3 MiB.
    const r = promotedPerScavenge(`
for (let i = 0; i < 2000; i++) h.collect({ tier: "fast" });
for (let i = 0; i < 20000; i++) h.collect({ tier: "fast" });
for (let i = 0; i < 2000; i++) h.collect({ tier: "standard" });
`);
    expect(r.scavenges).toBeGreaterThanOrEqual(20);
    expect(r.averageBytes).toBeLessThan(16 * 1024);
  });
});
