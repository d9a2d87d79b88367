/**
 * The suite removes what it creates in the temporary directory: every `heapstate-*` entry that
 * appears there during the run and is still there at its end is removed, and named on stderr (a
 * test that leaves one should clean up after itself; this keeps a developer's /tmp clean meanwhile).
 * Entries that were there before the run, or that are not ours (another user's), are left alone.
 */
import { lstatSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function ours(): Set<string> {
  const dir = tmpdir();
  const uid = process.getuid?.();
  const out = new Set<string>();
  for (const name of readdirSync(dir)) {
    if (!name.startsWith("heapstate-")) continue;
    try {
      if (uid === undefined || lstatSync(join(dir, name)).uid === uid) out.add(name);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export default function setup(): () => void {
  const before = ours();
  return () => {
    const left = [...ours()].filter((n) => !before.has(n));
    for (const name of left) rmSync(join(tmpdir(), name), { recursive: true, force: true });
    if (left.length > 0)
      process.stderr.write(
        `test/global-tmp.ts: removed ${left.length} leftover(s) in ${tmpdir()}: ${left.slice(0, 8).join(", ")}\n`,
      );
  };
}
