#!/usr/bin/env node
// npm's `prepare`: runs when heapstate is installed from a git URL or a folder (npm runs it with
// the devDependencies installed), and on `npm install` in a checkout. Builds what is missing, so
// that `require("heapstate")` and `npx heapstate` work without a published tarball:
//   - dist/ (the TypeScript build), when dist/index.js is absent;
//   - the addon for this machine, into prebuilds/ (what a git install ships), when neither
//     build/Release nor that prebuild is there. A failed addon build (no compiler) is reported in
//     one line and the install goes on: heapstate then works without it (procfs and V8 only).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function step(script, args = []) {
  const r = spawnSync(process.execPath, [join(root, "scripts", script), ...args], { cwd: root, stdio: "inherit" });
  return r.error === undefined && r.status === 0;
}

/**
 * A folder install (`npm install /path/to/checkout`) links a checkout whose own dependencies may
 * never have been installed: the build needs them, so they are installed first, from its lock file.
 */
function ensureBuildTools() {
  try {
    createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
    return;
  } catch {}
  const npm = process.env.npm_execpath;
  if (!npm) {
    console.error(`heapstate: prepare: ${root} has no node_modules: run \`npm ci\` there first`);
    process.exit(1);
  }
  console.log(`heapstate: prepare: installing the build's dependencies in ${root} (npm ci)`);
  // The outer install's npm_* settings (its prefix, its command) are not this one's.
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) || /^npm_config_(cache|registry|userconfig|proxy|https_proxy|cafile|strict_ssl)$/i.test(k))
      env[k] = v;
  }
  const r = spawnSync(process.execPath, [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], {
    cwd: root,
    env,
    stdio: "inherit",
  });
  if (r.error || r.status !== 0) {
    console.error(`heapstate: prepare: npm ci in ${root} failed: run it there to see why`);
    process.exit(1);
  }
}

if (!existsSync(join(root, "dist", "index.js"))) ensureBuildTools();
if (!existsSync(join(root, "dist", "index.js")) && !step("build-ts.mjs")) {
  console.error("heapstate: prepare: the TypeScript build failed (see above)");
  process.exit(1);
}
// A git install packs the prepared folder with dist/, bin/ and prebuilds/ only (build/ is not
// shipped): the addon built here goes where the package looks, prebuilds/linux-<arch>.
const prebuild = join(root, "prebuilds", `linux-${process.arch}`, "heapstate.napi.glibc.node");
if (!existsSync(join(root, "build", "Release", "heapstate.node")) && !existsSync(prebuild)) {
  if (!step("build-prebuild.mjs", ["--arch", process.arch])) {
    console.warn(
      "heapstate: prepare: the native addon was not built (see the line above); heapstate works without it, from procfs and V8 alone (allocator state absent)",
    );
  }
}
