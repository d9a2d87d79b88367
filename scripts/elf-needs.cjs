// The symbol versions an ELF object needs from each shared library, as `readelf -V` lists them
// (the .gnu.version_r section): { "libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.14"], ... }.
"use strict";
const { spawnSync } = require("node:child_process");

function versionNeeds(file) {
  // -V also lists every symbol's version: a large binary (node) prints tens of megabytes.
  const r = spawnSync("readelf", ["-V", "-W", file], { encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`readelf: ${r.error.message} (Debian's binutils has it)`);
  if (r.status !== 0) throw new Error(`readelf -V ${file}: ${r.stderr.trim()}`);
  const needs = {};
  let section = false;
  let library;
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("Version needs section")) section = true;
    else if (/^Version (definition|symbols) section/.test(line)) section = false;
    if (!section) continue;
    const file = /File: (\S+)/.exec(line);
    if (file) {
      library = file[1];
      needs[library] ??= [];
      continue;
    }
    const name = /Name: (\S+)/.exec(line);
    if (name && library) needs[library].push(name[1]);
  }
  return needs;
}

/** Version-namespace → highest version needed: { GLIBC: "2.14", GLIBCXX: "3.4.21", ... }. */
function highestByNamespace(needs) {
  const out = {};
  for (const versions of Object.values(needs)) {
    for (const v of versions) {
      const m = /^([A-Z_]+?)_(\d+(?:\.\d+)*)$/.exec(v);
      if (!m) continue;
      const [, ns, number] = m;
      if (out[ns] === undefined || compareVersions(number, out[ns]) > 0) out[ns] = number;
    }
  }
  return out;
}

function compareVersions(a, b) {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

module.exports = { versionNeeds, highestByNamespace, compareVersions };
