#!/usr/bin/env node
// Builds the test-only helper addons in test/fixtures/native/ with the C compiler, against the
// running Node's headers. The static-jemalloc fixture needs libjemalloc-dev's libjemalloc_pic.a.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "test", "fixtures", "native");
const out = join(dir, "build");
mkdirSync(out, { recursive: true });

const include = [resolve(dirname(process.execPath), "..", "include", "node"), "/usr/include/node"].find((d) =>
  existsSync(join(d, "node_api.h")),
);
if (!include) {
  console.error("build-test-fixtures: Node's headers (include/node/node_api.h) were not found");
  process.exit(1);
}
const cc = process.env.CC ?? "cc";
const jemallocPic = "/usr/lib/x86_64-linux-gnu/libjemalloc_pic.a";

function build(name, extra) {
  const args = [
    "-O2",
    "-shared",
    "-fPIC",
    `-I${include}`,
    "-o",
    join(out, `${name}.node`),
    join(dir, `${name}.c`),
    ...extra,
  ];
  const r = spawnSync(cc, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build-test-fixtures: ${cc} ${args.join(" ")} failed`);
    process.exit(1);
  }
}

build("printer", ["-ldl", "-lpthread"]);
// The benchmarks' floor program doubles as a helper that maps many regions (tests of smaps at scale).
{
  const args = ["-O2", "-o", join(out, "floor"), join(root, "bench", "floor.c"), "-ldl", "-lpthread"];
  const r = spawnSync(cc, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build-test-fixtures: ${cc} ${args.join(" ")} failed`);
    process.exit(1);
  }
}
if (!existsSync(jemallocPic)) {
  console.error(`build-test-fixtures: ${jemallocPic} is missing: apt-get install libjemalloc-dev`);
  process.exit(1);
}
build("jemalloc-static", ["-Wl,--whole-archive", jemallocPic, "-Wl,--no-whole-archive", "-lpthread", "-ldl", "-lm"]);
build("needs-new-glibc", []);
// The native-sites fixture keeps its frames: no inlining across them, frame pointers kept.
build("sites", ["-fno-omit-frame-pointer"]);
// The glibc sampler's stress program: threads, forks and every allocation entry point.
{
  const args = [
    "-O2",
    "-fno-omit-frame-pointer",
    "-pthread",
    "-o",
    join(out, "sampler-stress"),
    join(dir, "sampler-stress.c"),
    "-ldl",
  ];
  const r = spawnSync(cc, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build-test-fixtures: ${cc} ${args.join(" ")} failed`);
    process.exit(1);
  }
}

function program(name, compiler, extra) {
  const args = ["-O2", "-o", join(out, name), join(dir, "tiny.c"), ...extra];
  const r = spawnSync(compiler, args, { stdio: "inherit" });
  if (r.error || r.status !== 0) {
    const hint = compiler === "musl-gcc" ? " (apt-get install musl-tools)" : "";
    console.error(`build-test-fixtures: ${compiler} ${args.join(" ")} failed${hint}`);
    process.exit(1);
  }
}
program("tiny-musl", "musl-gcc", []);
{
  // A process tree with shared file pages and copy-on-write memory (the host view's tests).
  const args = ["-O2", "-Wall", "-o", join(out, "forktree"), join(dir, "forktree.c")];
  const r = spawnSync(cc, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`build-test-fixtures: ${cc} ${args.join(" ")} failed`);
    process.exit(1);
  }
}
program("tiny-static", cc, ["-static"]);

for (const script of ["fetch-old-glibc.mjs", "fetch-arm64-node.mjs"]) {
  const fetched = spawnSync(process.execPath, [join(root, "scripts", script)], { stdio: "inherit" });
  if (fetched.status !== 0) process.exit(1);
}
