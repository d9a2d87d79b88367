#!/usr/bin/env node
// Fetches Debian 11's C and C++ runtime (glibc 2.31, libstdc++ from GCC 10) into
// test/fixtures/old-glibc/root, so a test can load the prebuilt addon into Node under a glibc older
// than the one it was built on (2.36 here) and older than 2.34, where dl* got new versions.
// Node's official binaries need glibc 2.28; Debian 10 (2.28) has left deb.debian.org.
// Each .deb is checked against the SHA-256 in the suite's package index. Cached: a second run
// with the files in place downloads nothing.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "test", "fixtures", "old-glibc");
const mirror = process.env.HEAPSTATE_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const suite = "bullseye";
const wanted = ["libc6", "libstdc++6", "libgcc-s1"];
const marker = join(out, "versions.json");

function fail(message) {
  console.error(`fetch-old-glibc: ${message}`);
  process.exit(1);
}

async function get(url) {
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  } catch (error) {
    fail(`${url}: ${error.cause?.message ?? error.message}`);
  }
  if (!response.ok) fail(`${url}: HTTP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

if (existsSync(marker) && existsSync(join(out, "root", "lib", "x86_64-linux-gnu", "libc.so.6"))) {
  process.exit(0);
}
if (process.arch !== "x64") fail(`only x64 is fetched (this is ${process.arch})`);

const index = gunzipSync(await get(`${mirror}/dists/${suite}/main/binary-amd64/Packages.gz`)).toString("utf8");
const found = {};
for (const stanza of index.split("\n\n")) {
  const field = (name) => new RegExp(`^${name}: (.+)$`, "m").exec(stanza)?.[1];
  const name = field("Package");
  if (name && wanted.includes(name) && !found[name]) {
    found[name] = { version: field("Version"), filename: field("Filename"), sha256: field("SHA256") };
  }
}
for (const name of wanted) if (!found[name]?.filename) fail(`${name} is not in ${suite}'s index`);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "root"), { recursive: true });
for (const name of wanted) {
  const { filename, sha256 } = found[name];
  const deb = await get(`${mirror}/${filename}`);
  const digest = createHash("sha256").update(deb).digest("hex");
  if (digest !== sha256) fail(`${filename}: SHA-256 ${digest}, the index says ${sha256}`);
  const file = join(out, `${name}.deb`);
  writeFileSync(file, deb);
  const r = spawnSync("dpkg-deb", ["-x", file, join(out, "root")], { stdio: "inherit" });
  if (r.status !== 0) fail(`dpkg-deb -x ${file} failed`);
  rmSync(file);
}
writeFileSync(marker, `${JSON.stringify({ suite, packages: found }, null, 2)}\n`);
console.log(`fetch-old-glibc: ${suite} ${wanted.map((n) => `${n} ${found[n].version}`).join(", ")}`);
