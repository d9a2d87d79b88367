#!/usr/bin/env node
// Builds the prebuilt addons the package ships: prebuilds/linux-<arch>/heapstate.napi.glibc.node,
// named the way node-gyp-build picks files (napi: one binary for every Node version), for x64 and
// arm64. This machine's architecture is built natively (into build/, as build:native does), the
// other with Debian's cross compiler (g++-aarch64-linux-gnu or g++-x86-64-linux-gnu).
// Each is a Release build from source, stripped, and it is refused when it is not for its
// architecture or needs a newer glibc or libstdc++ than Node's official Linux binaries do: a
// consumer able to run Node must be able to load it.
//   node scripts/build-prebuild.mjs                 rebuild both from source, then copy and check; a
//                                                   cross compiler that is missing skips its
//                                                   architecture with one line (`npm pack`)
//   node scripts/build-prebuild.mjs --all           both, or fail (`npm test`, and a release)
//   node scripts/build-prebuild.mjs --arch x64      one architecture only
//   node scripts/build-prebuild.mjs --check F       only check an existing file F
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSampler } from "./build-sampler.mjs";
import { compareVersions, highestByNamespace, versionNeeds } from "./elf-needs.cjs";

/** The glibc sampler's file name, in build/Release and in each prebuilds/linux-<arch>. */
export const SAMPLER_FILE = "libheapstate-sampler.so";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// What the official Node 20 binaries for linux-x64 and linux-arm64 need (readelf -V; Node 22 and
// 24 need the same or more). test/native/portable.test.ts compares each prebuild with the real
// binary of the Node that runs it (x64) and with Node 20 for arm64.
export const LIMITS = { GLIBC: "2.28", GLIBCXX: "3.4.21", CXXABI: "1.3.9", GCC: "3.0" };

const TARGETS = {
  x64: { triple: "x86_64-linux-gnu", machine: "Advanced Micro Devices X86-64" },
  arm64: { triple: "aarch64-linux-gnu", machine: "AArch64" },
};

/** The ELF header's machine, as readelf names it ("AArch64"). */
function elfMachine(file) {
  const r = spawnSync("readelf", ["-h", file], { encoding: "utf8" });
  return /^\s*Machine:\s+(.+)$/m.exec(r.stdout ?? "")?.[1].trim();
}

function fail(message) {
  console.error(`build-prebuild: ${message}`);
  process.exit(1);
}

/** Problems with a built addon's symbol-version needs, as sentences; empty when it is fine. */
export function checkNeeds(file) {
  const needs = versionNeeds(file);
  const problems = [];
  for (const [library, versions] of Object.entries(needs)) {
    for (const v of versions) {
      if (!/^[A-Z_]+?_\d+(\.\d+)*$/.test(v)) problems.push(`${library}: needs ${v}, which is not a public version`);
    }
  }
  const highest = highestByNamespace(needs);
  for (const [ns, version] of Object.entries(highest)) {
    const limit = LIMITS[ns];
    if (limit === undefined) problems.push(`needs ${ns}_${version}, a library Node's binaries do not load`);
    else if (compareVersions(version, limit) > 0)
      problems.push(`needs ${ns}_${version}, newer than Node's ${ns}_${limit}`);
  }
  return { needs, highest, problems };
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}`);
}

function main(argv) {
  if (process.platform !== "linux") fail(`prebuilds are made on Linux (this is ${process.platform})`);
  const checkAt = argv.indexOf("--check");
  if (checkAt >= 0) {
    const { highest, problems } = checkNeeds(resolve(argv[checkAt + 1]));
    if (problems.length > 0) fail(problems.join("; "));
    console.log(`ok: ${JSON.stringify(highest)}`);
    return;
  }
  // Only a glibc build machine makes a glibc prebuild; on musl the name would need "musl".
  const report = process.report.getReport();
  if (!report.header.glibcVersionRuntime) fail("this script builds the glibc prebuild and must run on glibc");

  const archAt = argv.indexOf("--arch");
  const arches = archAt >= 0 ? argv[archAt + 1].split(",") : ["x64", "arm64"];
  const lenient = archAt < 0 && !argv.includes("--all");
  for (const tool of ["g++", "make", "python3"]) {
    if (spawnSync(tool, ["--version"], { stdio: "ignore" }).status !== 0)
      fail(
        `${tool} was not found: building the addon needs a C++ toolchain (Debian: apt-get install g++ make python3)`,
      );
  }
  rmSync(join(root, "prebuilds"), { recursive: true, force: true });
  for (const arch of arches) {
    const target = TARGETS[arch];
    if (!target) fail(`--arch ${arch}: x64 or arm64`);
    if (arch !== process.arch && spawnSync(`${target.triple}-g++`, ["--version"], { stdio: "ignore" }).status !== 0) {
      const why = `${target.triple}-g++ was not found (Debian: apt-get install g++-${target.triple})`;
      if (!lenient) fail(`prebuilds/linux-${arch}: ${why}`);
      console.warn(
        `build-prebuild: prebuilds/linux-${arch} is not built: ${why}; this tarball then loads no addon on linux-${arch} (heapstate works there from procfs and V8 alone)`,
      );
      continue;
    }
    const dir = join(root, "prebuilds", `linux-${arch}`);
    mkdirSync(dir, { recursive: true });
    const out = join(dir, "heapstate.napi.glibc.node");
    if (arch === process.arch) {
      run(process.execPath, [join(root, "scripts", "build-native.mjs")]);
      const built = join(root, "build", "Release", "heapstate.node");
      if (!existsSync(built)) fail(`${built} was not produced`);
      copyFileSync(built, out);
      run("strip", ["--strip-unneeded", out]);
    } else {
      run(process.execPath, [join(root, "scripts", "build-native.mjs"), "--cross", arch, "--out", out]);
      run(`${target.triple}-strip`, ["--strip-unneeded", out]);
    }
    // The glibc sampler (LD_PRELOAD=$(npx heapstate sampler-path)), beside the addon.
    const sampler = join(dir, SAMPLER_FILE);
    const built = buildSampler(sampler, { cc: arch === process.arch ? "cc" : `${target.triple}-gcc` });
    if (built.status !== 0) fail(`${relative(root, sampler)} did not build:\n${built.output}`);
    run(arch === process.arch ? "strip" : `${target.triple}-strip`, ["--strip-unneeded", sampler]);
    for (const file of [out, sampler]) {
      const machine = elfMachine(file);
      const { highest, problems } = checkNeeds(file);
      if (machine !== target.machine) problems.push(`it is built for ${machine}, not ${target.machine}`);
      if (problems.length > 0) {
        rmSync(file);
        fail(`${relative(root, file)} would not load everywhere Node runs: ${problems.join("; ")}`);
      }
      console.log(
        `${relative(root, file)}: ${statSync(file).size} bytes, ${machine}; needs ${JSON.stringify(highest)}`,
      );
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
