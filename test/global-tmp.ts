/**
 * The suite's own temporary directory: every test and every child it starts gets TMPDIR set to a
 * fresh directory (mode 1777 like /tmp, since some tests run children as other users), removed
 * with all it holds when the run ends. What a test leaves behind there is named on stderr (it
 * should clean up after itself), and nothing is ever left in the machine's temporary directory,
 * nor taken from another run's.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "heapstate-suite-"));
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return () => {
    let left: string[] = [];
    try {
      left = readdirSync(dir);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0)
      process.stderr.write(
        `test/global-tmp.ts: removed ${left.length} leftover(s) of this run: ${left.slice(0, 8).join(", ")}\n`,
      );
  };
}
