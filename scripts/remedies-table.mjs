// Writes the table of docs/diagnosis.md's "What the remedies did, measured" from what the last run
// of test/truth/remedies.test.ts measured (.cache/remedies/<shape>.json): a row per verdict and
// heap shape, with RSS growth under glibc and with the remedy at the three points the test reads.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeDocBlock } from "./doc-block.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, ".cache", "remedies");
if (!existsSync(dir)) {
  console.error("remedies:table: no measurements: run npx vitest run test/truth/remedies.test.ts first");
  process.exit(1);
}
const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
const rows = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")));
const latest = rows
  .map((r) => r.time.slice(0, 10))
  .sort()
  .at(-1);
const three = (r) => `${mib(r.builtBytes)} / ${mib(r.idleBytes)} / ${mib(r.purgedBytes)}`;
const lines = [
  `Measured ${latest} by \`test/truth/remedies.test.ts\`: RSS growth over each child's start, right after the shape is built / after the row's idle time (an allocator's decay runs; glibc has none) / after trim().`,
  "",
  "| verdict | shape | what the verdict states | idle | without the remedy | with it | RSS saved at best |",
  "|---|---|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| \`${r.verdict}\` | \`${r.shape}\` | ${r.stated.what} ${mib(r.stated.bytes)} | ${r.idleSeconds ?? "?"} s | ${r.without.what}: ${three(r.without)} | ${r.with.what}${r.with.settings ? ` with \`${r.with.settings.includes("=") ? r.with.settings : `MALLOC_CONF=${r.with.settings}`}\`` : ""}: ${three(r.with)} | ${mib(r.savedBytes)} |`,
  ),
];
const file = join(root, "docs", "diagnosis.md");
if (!writeDocBlock(file, "remedies:table", lines.join("\n"))) {
  console.error(`remedies:table: ${file} has no <!-- remedies:table --> … <!-- /remedies:table --> block`);
  process.exit(1);
}
console.log(`remedies:table: ${rows.length} rows written to docs/diagnosis.md`);
