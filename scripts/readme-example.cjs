#!/usr/bin/env node
// The README's first example, made again: a heap of a million 200-byte blocks, one in ten kept at
// random, then 20 000 blocks of 8 KiB all freed but the last (the test printer's malloc and free,
// so the heap has that shape and no other), read with collect({ tier: "deep" }), then trimmed.
// Prints formatHuman's text without its regions section, then what trim() promised and released.
// The README's block has this shape (test/e2e/docs.test.ts compares them line by line).
//   npm run build && npm run build:fixtures && node --expose-gc scripts/readme-example.cjs
const { join } = require("node:path");
const root = join(__dirname, "..");
const h = require(process.env.HEAPSTATE_TEST_DIST ?? join(root, "dist", "index.js"));
const printer = require(
  process.env.HEAPSTATE_TEST_PRINTER ?? join(root, "test", "fixtures", "native", "build", "printer.node"),
);

printer.mallocBlocks(1_000_000, 200);
printer.freeRandom(0.9, 42);
const n = printer.mallocBlocks(20_000, 8192);
printer.freeRange(n - 20_000, n - 1);
if (global.gc) global.gc();

const text = h.formatHuman(h.collect({ tier: "deep" }));
const lines = text.split("\n");
const from = lines.findIndex((l) => l.startsWith("regions (smaps):"));
const to = from < 0 ? -1 : lines.findIndex((l, i) => i > from && !l.startsWith("  "));
if (from >= 0) lines.splice(from, (to < 0 ? lines.length : to) - from);
console.log(lines.join("\n"));
const t = h.trim();
const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
console.log(`trim(): promised ${mib(t.promisedBytes ?? 0)}, released ${mib(t.releasedBytes)}`);
