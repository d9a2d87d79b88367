/** The command line as far as the allocator issue takes it (show-host grows in its own issue). */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../lib/cli";
import type { Snapshot } from "../../lib/types";
import { childEnv, requireLib, root } from "../helpers";

function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("heapstate CLI", () => {
  it("--json prints a snapshot with the allocator that serves malloc", () => {
    const r = run(["--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as Snapshot;
    expect(s.schema).toBe("heapstate/1");
    expect(s.heap?.allocator).toBe("glibc");
  });

  it("bad usage: exit 2 and one line naming the flag", () => {
    const r = run(["--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('heapstate: unknown option "--frobnicate" (see heapstate --help)');
    expect(run(["--tier", "huge"]).code).toBe(2);
    expect(run(["--pid"]).code).toBe(2);
  });

  it("a process that does not exist: exit 1 and one clear line", () => {
    const r = run(["--pid", "4194305"]); // above the largest pid Linux hands out
    expect(r.code).toBe(1);
    expect(r.err).toBe("heapstate: process 4194305 does not exist (or exited while being read)");
  });

  it("--help and --version", () => {
    expect(run(["--help"]).out).toContain("Usage: heapstate");
    expect(run(["--version"]).out).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("the bin, under a jemalloc preload, prints jemalloc as the heap", () => {
    const text = execFileSync(process.execPath, [join(root, "bin", "heapstate.js")], {
      env: childEnv({ LD_PRELOAD: requireLib("jemalloc") }),
      encoding: "utf8",
    });
    expect(text).toMatch(
      /^ {2}jemalloc 5\.\S+ {2}\/usr\/lib\/x86_64-linux-gnu\/libjemalloc\.so\.2 {2}\(serves malloc\)$/m,
    );
    expect(text).toMatch(/^ {4}allocated +\d/m);
  });
});
