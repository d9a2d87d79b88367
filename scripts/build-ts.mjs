#!/usr/bin/env node
// Compiles lib/ to CommonJS in dist/ (lib/vitest/setup.mts to ESM: it imports vitest), then writes
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

// The main entry, its faces made lazy: tsc's `require` of every module at load becomes, for each
// function of a face (the HTTP handler and its page, the sampler, the CLI's views, the agent,
// formatting, parsing), a wrapper that requires its module on the first call. The reading core
// (collect, snapshot, trim, baselines, reporters) stays loaded by `require("heapstate")`: a first
// reading must work even when the process has run out of descriptors and could not open a module
// file then. The addon is loaded by the first reading that needs it. The source (lib/index.ts)
// keeps plain re-exports, so the tests, which run the TypeScript, see the same names.
{
  const EAGER = new Set(["./errors", "./units", "./collect", "./snapshot", "./trim", "./baseline", "./reporters"]);
  const file = join(dist, "index.js");
  const text = readFileSync(file, "utf8");
  const modules = new Map();
  for (const m of text.matchAll(/^var (\w+) = require\("(\.\/[\w/-]+)"\);$/gm)) modules.set(m[1], m[2]);
  const exported = [
    ...text.matchAll(
      /^Object\.defineProperty\(exports, "(\w+)", \{ enumerable: true, get: function \(\) \{ return (\w+)\.(\w+); \} \}\);$/gm,
    ),
  ];
  const header = text.slice(0, text.indexOf('Object.defineProperty(exports, "__esModule"'));
  const out = [
    header.trimEnd(),
    'Object.defineProperty(exports, "__esModule", { value: true });',
    "const once = (id) => { let m; return () => (m ??= require(id)); };",
  ];
  const used = new Set();
  for (const [, name, variable, member] of exported) {
    const id = modules.get(variable);
    if (id === undefined) throw new Error(`build-ts: ${name} comes from an unknown module variable ${variable}`);
    if (EAGER.has(id)) {
      if (!used.has(id)) {
        out.push(`const ${variable} = require("${id}");`);
        used.add(id);
      }
      out.push(`Object.defineProperty(exports, "${name}", { enumerable: true, get: () => ${variable}.${member} });`);
      continue;
    }
    const value = require(join(dist, `${id}.js`))[member];
    if (typeof value !== "function" || /^class\b/.test(Function.prototype.toString.call(value)))
      throw new Error(`build-ts: ${name} (from ${id}) is not a plain function: list ${id} as eager`);
    if (!used.has(id)) {
      out.push(`const ${variable} = once("${id}");`);
      used.add(id);
    }
    out.push(`exports.${name} = function ${name}(...args) { return ${variable}().${member}.apply(this, args); };`);
  }
  if (exported.length < 10) throw new Error("build-ts: dist/index.js did not have the expected shape");
  writeFileSync(file, `${out.join("\n")}\n`);
}

// [entry without extension, the export that is also the default (or none)]
// "*": the namespace is the default export (`import heapstate from "heapstate"`).
const entries = [
  ["index", "*"],
  ["sidecar", undefined],
  ["prometheus", undefined],
  ["otel", undefined],
  ["vitest/index", "HeapstateReporter"],
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
  join(dist, "vitest", "setup.js"),
  `"use strict";\nthrow new Error("heapstate/vitest-setup is a Vitest setup file (an ES module): name it in setupFiles of vitest.config, do not require() it");\n`,
);
writeFileSync(join(dist, "vitest", "setup.d.ts"), "export {};\n");
