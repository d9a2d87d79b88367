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

/** Set while a run's directory exists: each Vitest project runs this setup, and one directory serves them all. */
const MARK = "HEAPSTATE_SUITE_TMPDIR";

export default function setup(): () => void {
  // The projects ("unit", "processes") each run the global setup: a second call must not nest a
  // directory in the first (nested, Chromium's and the agent's socket paths grew past 107 bytes).
  if (process.env[MARK]) return () => {};
  const dir = mkdtempSync(join(tmpdir(), "heapstate-suite-"));
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  process.env[MARK] = dir;
  return () => {
    delete process.env[MARK];
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
