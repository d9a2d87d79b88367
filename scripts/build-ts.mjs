#!/usr/bin/env node
// Compiles lib/ to CommonJS in dist/, then writes the ESM entry: a thin wrapper that re-exports
// the CommonJS module's names, so `import` and `require` share one module instance (one cache,
// one loaded addon) instead of two copies of the package's state.
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const dist = join(root, "dist");

rmSync(dist, { recursive: true, force: true });
const tsc = require.resolve("typescript/bin/tsc");
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json")], { stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);

const names = Object.keys(require(join(dist, "index.js"))).filter((n) => n !== "__esModule");
writeFileSync(join(dist, "index.mjs"), `import cjs from "./index.js";\nexport const { ${names.join(", ")} } = cjs;\n`);
writeFileSync(join(dist, "index.d.mts"), `export * from "./index.js";\n`);
