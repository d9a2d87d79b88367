#!/usr/bin/env node
// npm's `prepack` (npm pack, npm publish, and a git install's pack): builds what the tarball
// ships, and takes `prepare` out of the packed package.json. `prepare` is for git and folder
// installs, which build from source; in a tarball there is nothing to build, and npm would list
// it among the "install scripts" a consumer must approve. `postpack` puts package.json back.
//   HEAPSTATE_PACK_AS_BUILT=1   pack what `npm run build` and `build:prebuild` made (the tests)
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const manifest = join(root, "package.json");
const backup = join(root, ".package.json.unpacked");

if (process.argv[2] === "--restore") {
  if (existsSync(backup)) renameSync(backup, manifest);
  process.exit(0);
}

function run(script) {
  const r = spawnSync(process.execPath, [join(root, "scripts", script)], { cwd: root, stdio: "inherit" });
  if (r.error || r.status !== 0) process.exit(r.status ?? 1);
}

if (process.env.HEAPSTATE_PACK_AS_BUILT !== "1") {
  run("build-ts.mjs");
  run("build-prebuild.mjs");
}
const text = readFileSync(manifest, "utf8");
const pkg = JSON.parse(text);
if (pkg.scripts?.prepare !== undefined) {
  if (!existsSync(backup)) copyFileSync(manifest, backup);
  delete pkg.scripts.prepare;
  writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
}
