/**
 * The Vitest setup file takes its tier from HEAPSTATE_VITEST_TIER (the heapstate() plugin sets it)
 * through the core's one request parser: a typo is the parser's error, not a silent "standard".
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { childEnv, dist, root, runInfo } from "../helpers";

const setup = join(dist, "..", "faces", "vitest", "setup.mjs");

function load(tier: string) {
  return spawnSync(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(setup)});`], {
    cwd: root,
    env: childEnv({ HEAPSTATE_VITEST_TIER: tier }),
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
}

describe("heapstate/vitest-setup's tier", () => {
  it("a typo in HEAPSTATE_VITEST_TIER is the parser's one-line error", () => {
    const r = load("stnadard");
    expect(r.status, runInfo(r)).not.toBe(0);
    expect(r.stderr).toContain(
      'heapstate/vitest-setup: HEAPSTATE_VITEST_TIER must be fast, standard or deep, received "stnadard"',
    );
  });
});
