#!/usr/bin/env node
// Builds the native addon from source, offline, against the running Node's own headers.
//   node scripts/build-native.mjs               node-gyp (default)
//   node scripts/build-native.mjs --cmake       cmake-js, in Node-API mode (package.json "binary")
//   node scripts/build-native.mjs --if-possible used by `npm install`: a failed build is reported
//                                               and the install goes on; heapstate then works
//                                               without the addon (procfs and V8 only).
//   node scripts/build-native.mjs --debug       a Debug build
//   node scripts/build-native.mjs --cmake --out DIR   cmake-js into DIR instead of build/
//   node scripts/build-native.mjs --cross arm64 --out FILE
//                                               node-gyp with Debian's cross compiler
//                                               (g++-aarch64-linux-gnu) in a scratch copy of the
//                                               sources, so build/ keeps this machine's build
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSampler } from "./build-sampler.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const args = new Set(argv);
const outIndex = argv.indexOf("--out");
const outDir = outIndex >= 0 ? argv[outIndex + 1] : undefined;
const ifPossible = args.has("--if-possible");
const require = createRequire(import.meta.url);

function fail(message) {
  if (ifPossible) {
    console.warn(`heapstate: the native addon was not built: ${message}`);
    console.warn("heapstate: it still works without it (procfs and V8 only; allocator state absent).");
    console.warn("heapstate: to build it later: npm run build:native");
    process.exit(0);
  }
  console.error(`heapstate: native build failed: ${message}`);
  process.exit(1);
}

if (process.platform !== "linux") fail(`the addon supports Linux only (this is ${process.platform})`);

// Node's headers ship with Node in <prefix>/include/node. Pointing the build tools there keeps
// the build offline: without it node-gyp and cmake-js try to download a header tarball.
function nodeDir() {
  const candidates = [
    process.env.HEAPSTATE_NODEDIR,
    resolve(dirname(process.execPath), ".."),
    "/usr",
    "/usr/local",
  ].filter(Boolean);
  return candidates.find((dir) => existsSync(join(dir, "include", "node", "node_api.h")));
}

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: "inherit", ...options });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${argv.join(" ")} exited with ${r.status ?? r.signal}`);
}

function findNodeGyp() {
  try {
    return require.resolve("node-gyp/bin/node-gyp.js");
  } catch {
    // A consumer install has no devDependencies; npm ships its own node-gyp and names it.
    return process.env.npm_config_node_gyp;
  }
}

const debug = args.has("--debug");
if (args.has("--cmake")) {
  let cmakeJs;
  try {
    cmakeJs = require.resolve("cmake-js/bin/cmake-js");
  } catch {
    fail("cmake-js is not installed (npm install)");
  }
  // With "binary": {"napi_versions": [...]} in package.json, cmake-js builds against the
  // Node-API headers it ships and downloads nothing.
  // --CD… options (CMake definitions such as compiler flags) are passed through.
  const defines = argv.filter((a) => a.startsWith("--CD"));
  run(process.execPath, [
    cmakeJs,
    "rebuild",
    ...(debug ? ["--debug"] : []),
    ...(outDir ? ["--out", outDir] : []),
    ...defines,
  ]);
} else {
  const dir = nodeDir();
  if (!dir) fail("Node's headers were not found (set HEAPSTATE_NODEDIR to the Node prefix)");
  const gyp = findNodeGyp();
  if (!gyp) fail("node-gyp was not found (npm install)");
  const crossAt = argv.indexOf("--cross");
  if (crossAt < 0) {
    run(process.execPath, [gyp, "rebuild", `--nodedir=${dir}`, ...(debug ? ["--debug"] : [])]);
    // The glibc sampler beside the addon (`heapstate sampler-path` finds it there first).
    const sampler = buildSampler(join(root, "build", debug ? "Debug" : "Release", "libheapstate-sampler.so"));
    if (sampler.status !== 0) fail(`the allocation sampler did not build:\n${sampler.output}`);
  } else {
    // Node's headers and node-addon-api are the same for every architecture; only the compiler
    // changes. The gyp file asks node for node-addon-api's path: NODE_PATH lets the scratch copy
    // find this checkout's.
    const arch = argv[crossAt + 1];
    const triple = { arm64: "aarch64-linux-gnu", x64: "x86_64-linux-gnu" }[arch];
    if (!triple) fail(`--cross ${arch}: arm64 or x64`);
    if (!outDir) fail("--cross needs --out FILE");
    const cxx = `${triple}-g++`;
    if (spawnSync(cxx, ["--version"], { stdio: "ignore" }).error) {
      fail(`${cxx} was not found (Debian: apt-get install g++-${triple})`);
    }
    const scratch = mkdtempSync(join(tmpdir(), `heapstate-${arch}-`));
    try {
      for (const part of ["native", "binding.gyp", "package.json"])
        cpSync(join(root, part), join(scratch, part), { recursive: true });
      const env = { ...process.env, CC: `${triple}-gcc`, CXX: cxx, LINK: cxx, NODE_PATH: join(root, "node_modules") };
      run(process.execPath, [gyp, "rebuild", `--arch=${arch}`, `--nodedir=${dir}`], { cwd: scratch, env });
      copyFileSync(join(scratch, "build", "Release", "heapstate.node"), resolve(outDir));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}
