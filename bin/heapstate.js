#!/usr/bin/env node
"use strict";
const { existsSync } = require("node:fs");
const { join, resolve } = require("node:path");

const cli = join(__dirname, "..", "dist", "faces", "cli", "index.js");
if (!existsSync(cli)) {
  // A checkout that was never built (a folder install from a clone, before `npm run build`).
  process.stderr.write(
    `heapstate: not built: ${resolve(__dirname, "..")} has no dist/ (run \`npm run build\` there, or install from a git URL or a tarball, which build it)\n`,
  );
  process.exit(1);
}
require(cli).runCommand(process.argv.slice(2));
