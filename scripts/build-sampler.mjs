#!/usr/bin/env node
// Builds heapstate's allocation sampler for glibc (native/sampler/sampler.c): a small C library
// preloaded in front of glibc's malloc (LD_PRELOAD=$(npx heapstate sampler-path)). C only, no
// Node headers: it runs inside any process, before Node starts.
//   node scripts/build-sampler.mjs --out FILE                 this machine's compiler (cc)
//   node scripts/build-sampler.mjs --cross arm64 --out FILE   Debian's cross compiler
// Frame pointers are kept (its own frames start the walk), its thread-locals are initial-exec
// (no allocation on first use), and it exports only the allocation functions and its two own.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export const SAMPLER_FLAGS = [
  "-std=gnu11",
  "-O2",
  "-fPIC",
  "-fno-omit-frame-pointer",
  "-fvisibility=hidden",
  "-ftls-model=initial-exec",
  "-Wall",
  "-Wextra",
];

/** Builds the sampler into `out` with `cc`; returns the compiler's exit status and output. */
export function buildSampler(out, { cc = "cc", extra = [] } = {}) {
  mkdirSync(dirname(out), { recursive: true });
  const args = [
    ...SAMPLER_FLAGS,
    "-shared",
    `-Wl,--version-script=${join(root, "native", "sampler", "exports.map")}`,
    "-Wl,-z,now",
    ...extra,
    "-o",
    out,
    join(root, "native", "sampler", "sampler.c"),
  ];
  const r = spawnSync(cc, args, { cwd: root, encoding: "utf8" });
  return { status: r.error ? -1 : r.status, output: `${r.error?.message ?? ""}${r.stdout ?? ""}${r.stderr ?? ""}` };
}

function main(argv) {
  const outAt = argv.indexOf("--out");
  if (outAt < 0) {
    console.error("build-sampler: --out FILE is needed");
    process.exit(2);
  }
  const crossAt = argv.indexOf("--cross");
  const triple = crossAt >= 0 ? { arm64: "aarch64-linux-gnu", x64: "x86_64-linux-gnu" }[argv[crossAt + 1]] : undefined;
  if (crossAt >= 0 && !triple) {
    console.error(`build-sampler: --cross ${argv[crossAt + 1]}: arm64 or x64`);
    process.exit(2);
  }
  const r = buildSampler(resolve(argv[outAt + 1]), { cc: triple ? `${triple}-gcc` : "cc" });
  if (r.status !== 0) {
    console.error(`build-sampler: the sampler did not build:\n${r.output}`);
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
