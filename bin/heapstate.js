#!/usr/bin/env node
"use strict";
require("../dist/cli.js").runCommand(process.argv.slice(2));
