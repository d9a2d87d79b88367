#!/usr/bin/env node
// Compiles lib/ to CommonJS in dist/ (lib/faces/vitest/setup.mts to ESM: it imports vitest), then writes
// the ESM entries: thin wrappers that re-export the CommonJS modules' names, so `import` and
// `require` share one module instance (one cache, one loaded addon) instead of two copies.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const dist = join(root, "dist");

rmSync(dist, { recursive: true, force: true });
const tsc = require.resolve("typescript/bin/tsc");
// The JavaScript without comments, the declarations with them: the API's documentation is in the
// .d.ts files editors read. With the comments the package packed 270 KiB, 235 KiB without, and a
// process that required it held 0.2 MiB more (the sources stay in memory).
for (const args of [["--removeComments", "--declaration", "false"], ["--emitDeclarationOnly"]]) {
  const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json"), ...args], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// The main entry, written from lib/index.ts's own export list (read with TypeScript's parser):
// a name exported from the core (lib/core/) is required with the entry, since a first reading must
// work even when the process has run out of descriptors and could not open a module file then; a
// name exported from a face (lib/faces/) is a function that requires its face on its first call.
// Which is which comes from where the module lives, not from a list. tsc's declarations stay as
// they are, so editors keep each function's documentation.
{
  const ts = require("typescript");
  const source = readFileSync(join(root, "lib", "index.ts"), "utf8");
  const file = ts.createSourceFile("index.ts", source, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out = [
    '"use strict";',
    "// Written by scripts/build-ts.mjs from lib/index.ts: the core loads with the entry, each face on first use.",
    'Object.defineProperty(exports, "__esModule", { value: true });',
    "const once = (id) => { let m; return () => (m ??= require(id)); };",
  ];
  const modules = new Map();
  let names = 0;
  for (const statement of file.statements) {
    if (!ts.isExportDeclaration(statement) || statement.isTypeOnly) continue;
    const from = statement.moduleSpecifier?.text;
    const clause = statement.exportClause;
    if (from === undefined || !clause || !ts.isNamedExports(clause))
      throw new Error("build-ts: lib/index.ts may only re-export named values from modules");
    const id = from.replace(/\/index$/, "");
    const face = /^\.\/faces\//.test(id);
    if (!face && !/^\.\/core$/.test(id))
      throw new Error(`build-ts: lib/index.ts exports from ${from}, in neither wing`);
    let variable = modules.get(id);
    if (variable === undefined) {
      variable = `m${modules.size}`;
      modules.set(id, variable);
      out.push(face ? `const ${variable} = once("${id}");` : `const ${variable} = require("${id}");`);
    }
    for (const spec of clause.elements) {
      if (spec.isTypeOnly) continue;
      const name = spec.name.text;
      const member = (spec.propertyName ?? spec.name).text;
      names++;
      if (!face) {
        out.push(`Object.defineProperty(exports, "${name}", { enumerable: true, get: () => ${variable}.${member} });`);
        continue;
      }
      const value = require(join(dist, `${id}.js`))[member];
      if (typeof value !== "function" || /^class\b/.test(Function.prototype.toString.call(value)))
        throw new Error(
          `build-ts: ${name} (from ${from}) is not a plain function: a face's export must be one to load lazily`,
        );
      out.push(`exports.${name} = function ${name}(...args) { return ${variable}().${member}.apply(this, args); };`);
    }
  }
  if (names < 10) throw new Error("build-ts: lib/index.ts did not have the expected shape");
  writeFileSync(join(dist, "index.js"), `${out.join("\n")}\n`);
}

// [entry without extension, the export that is also the default (or none)]
// "*": the namespace is the default export (`import heapstate from "heapstate"`).
const entries = [
  ["index", "*"],
  ["faces/sidecar/index", undefined],
  ["faces/metrics/prometheus", undefined],
  ["faces/metrics/otel", undefined],
  ["faces/vitest/index", "HeapstateReporter"],
];
for (const [entry, defaultName] of entries) {
  const base = entry.split("/").pop();
  const names = Object.keys(require(join(dist, `${entry}.js`))).filter((n) => n !== "__esModule" && n !== "default");
  // Node's require, not an ESM import of CommonJS: a bundler's or Vitest's module runner that
  // transforms a linked package's files as source would otherwise meet `exports` it cannot run.
  let text = `import { createRequire } from "node:module";\nconst cjs = createRequire(import.meta.url)("./${base}.js");\nexport const { ${names.join(", ")} } = cjs;\n`;
  if (defaultName === "*") text += "export default cjs;\n";
  else if (defaultName) text += `export default cjs.${defaultName};\n`;
  writeFileSync(join(dist, `${entry}.mjs`), text);
  const types =
    defaultName === "*"
      ? `export * from "./${base}.js";\nimport * as ns from "./${base}.js";\nexport default ns;\n`
      : `export * from "./${base}.js";\n${defaultName ? `export { ${defaultName} as default } from "./${base}.js";\n` : ""}`;
  writeFileSync(join(dist, `${entry}.d.mts`), types);
}

// heapstate/vitest-setup is an ES module that Vitest imports; `require` of it gets a CommonJS
// stand-in that says so, instead of Node's ERR_REQUIRE_ESM or a Vitest internal-state error.
writeFileSync(
  join(dist, "faces", "vitest", "setup.js"),
  `"use strict";\nthrow new Error("heapstate/vitest-setup is a Vitest setup file (an ES module): name it in setupFiles of vitest.config, do not require() it");\n`,
);
writeFileSync(join(dist, "faces", "vitest", "setup.d.ts"), "export {};\n");
