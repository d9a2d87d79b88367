// A generated block of a document, between `<!-- NAME -->` and `<!-- /NAME -->`, written anew:
// the bench's table of targets (docs/performance.md), the remedies' table (docs/diagnosis.md).
import { readFileSync, writeFileSync } from "node:fs";

/** Replaces the block's content with `body`; false when the file has no such block. */
export function writeDocBlock(file, name, body) {
  const text = readFileSync(file, "utf8");
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) return false;
  writeFileSync(file, `${text.slice(0, a + open.length)}\n${body}\n${text.slice(b)}`);
  return true;
}
