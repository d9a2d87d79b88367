/**
 * The observer's weight at load: require("heapstate") (and its ES module) loads the core
 * (dist/core/) and no face (dist/faces/: HTTP handler, page, Prometheus, sampler, CLI, agent)
 * until a function needs it, and the addon only with the first reading. Checked in fresh processes
 * on the built package: which of its modules Node loaded, and whether the addon is mapped
 * (/proc/self/maps).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { childEnv, dist, runInfo, scaled } from "../helpers";

interface Probe {
  modules: string[];
  addon: boolean;
}

function probe(code: string, esm = false): Probe[] {
  const prelude = `
    const { readFileSync } = ${esm ? "await import('node:fs')" : "require('node:fs')"};
    const dir = ${JSON.stringify(join(dist, "..", ".."))};
    const { createRequire } = ${esm ? "await import('node:module')" : "require('node:module')"};
    const cache = createRequire(dir + "/x.js").cache;
    const probes = [];
    const probe = () => probes.push({
      modules: Object.keys(cache).filter((f) => f.startsWith(dir + "/")).map((f) => f.slice(dir.length + 1)).sort(),
      addon: readFileSync("/proc/self/maps", "utf8").includes("heapstate.node"),
    });`;
  const r = spawnSync(
    process.execPath,
    [...(esm ? ["--input-type=module"] : []), "-e", `${prelude}\n${code}\nconsole.log(JSON.stringify(probes));`],
    {
      env: childEnv(),
      encoding: "utf8",
      maxBuffer: 256 << 20,
      timeout: scaled(30_000),
    },
  );
  expect(r.status, runInfo(r)).toBe(0);
  return JSON.parse(r.stdout) as Probe[];
}

/** The modules of the faces' wing that were loaded. */
const faces = (p: Probe | undefined) => (p?.modules ?? []).filter((m) => m.startsWith("dist/faces/"));

describe("loading heapstate", () => {
  it("require loads the reading core and no face or addon; each face loads on first use, the addon with the first reading", () => {
    const [loaded, handler, reading] = probe(`
      const h = require(${JSON.stringify(dist)});
      probe();
      h.createHandler({ sampler: false });
      probe();
      h.collect({ tier: "fast" });
      probe();`);
    expect(loaded?.modules).toContain("dist/core/read/collect.js");
    expect(faces(loaded)).toEqual([]);
    expect(loaded?.addon).toBe(false);
    // The handler's face (with the readers it will use on a request), and no addon before a reading.
    for (const f of ["http/handler.js", "http/page.js"]) expect(handler?.modules).toContain(`dist/faces/${f}`);
    expect(
      faces(handler).every((f) => /^dist\/faces\/(http\/|sampler|history|format|metrics\/)/.test(f)),
      faces(handler).join(),
    ).toBe(true);
    expect(handler?.addon).toBe(false);
    // A reading: the readers and the addon, and no other face.
    expect(reading?.modules).toContain("dist/core/read/collect.js");
    expect(faces(reading)).toEqual(faces(handler));
    expect(reading?.addon).toBe(true);
  });

  it("a reading alone loads no face", () => {
    const [reading] = probe(`
      const h = require(${JSON.stringify(dist)});
      h.snapshot();
      probe();`);
    expect(faces(reading)).toEqual([]);
    expect(reading?.modules).toContain("dist/core/read/collect.js");
  });

  it("the ES module entry loads the same: the reading core, no face, no addon", () => {
    const [loaded] = probe(
      `const h = await import(${JSON.stringify(dist.replace(/\.js$/, ".mjs"))});
      if (typeof h.collect !== "function" || typeof h.default.snapshot !== "function") throw new Error("names missing");
      probe();`,
      true,
    );
    expect(loaded?.modules).toContain("dist/core/read/collect.js");
    expect(faces(loaded)).toEqual([]);
    expect(loaded?.addon).toBe(false);
  });
});
