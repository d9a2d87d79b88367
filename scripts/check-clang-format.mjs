#!/usr/bin/env node
// Fails when a C++ file in native/ or the sampler's C in native/sampler/ is not clang-formatted
// (.clang-format). Part of `npm run lint`.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const files = ["native", join("native", "sampler")].flatMap((dir) =>
  readdirSync(join(root, dir))
    .filter((f) => /\.(cc|h|c)$/.test(f))
    .map((f) => join(root, dir, f)),
);
const r = spawnSync("clang-format", ["--dry-run", "--Werror", ...files], { stdio: "inherit" });
if (r.error) {
  console.error(`clang-format is not installed (apt-get install clang-format): ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
