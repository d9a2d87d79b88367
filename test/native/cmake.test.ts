/** The same sources built with cmake-js (npm run build:native:cmake-check → build-cmake/) work alike. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { childEnv, requireLib, root } from "../helpers";

const cmakeBinding = join(root, "build-cmake", "Release", "heapstate.node");
const gypBinding = join(root, "build", "Release", "heapstate.node");

function discover(file: string, env: Record<string, string> = {}) {
  const script = `const d = require(${JSON.stringify(file)}).discover(); console.log(JSON.stringify({ owner: d.mallocOwner, instances: d.instances }))`;
  return JSON.parse(
    execFileSync(process.execPath, ["-e", script], { env: childEnv(env), encoding: "utf8", maxBuffer: 256 << 20 }),
  );
}

describe("cmake-js build", () => {
  it("exists (the test command builds it)", () => {
    expect(existsSync(cmakeBinding), `${cmakeBinding}: run npm run build:native:cmake-check`).toBe(true);
  });

  it("exports only the Node-API entry points", () => {
    const out = execFileSync("nm", ["-D", "--defined-only", cmakeBinding], { encoding: "utf8", maxBuffer: 256 << 20 });
    expect(
      out
        .trim()
        .split("\n")
        .map((l) => l.split(/\s+/).pop())
        .sort(),
    ).toEqual(["napi_register_module_v1", "node_api_module_get_api_version_v1"]);
  });

  it("discovers what the node-gyp build discovers, under glibc and under a jemalloc preload", () => {
    expect(discover(cmakeBinding)).toEqual(discover(gypBinding));
    const env = { LD_PRELOAD: requireLib("jemalloc") };
    const viaCmake = discover(cmakeBinding, env);
    expect(viaCmake.owner).toBe(requireLib("jemalloc"));
    expect(viaCmake).toEqual(discover(gypBinding, env));
  });
});
