/**
 * The command line. `main(argv)` returns the exit code so tests run it in-process; the bin file
 * only calls it. Exit codes: 0 ok, 1 the reading failed (e.g. the process is gone), 2 usage error.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HeapstateError } from "./errors";
import { formatHuman } from "./format";
import { collect } from "./snapshot";
import type { Tier } from "./types";

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: CliIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
};

const usage = `Usage: heapstate [show-host] [options]

Prints where this process's memory is: the allocator that serves malloc and what it holds,
the other allocators in the process, and the kernel's RSS figures.

Options:
  --json          the snapshot as JSON (schema heapstate/1)
  --tier T        fast | standard | deep (default: standard; deep adds glibc's malloc_info)
  --pid N         another process: kernel figures only (allocator state cannot be read from outside)
  -h, --help      this text
  -v, --version   heapstate's version

Exit codes: 0 ok, 1 the reading failed, 2 bad usage.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

export function main(argv: readonly string[], io: CliIo = defaultIo): number {
  const args = [...argv];
  if (args[0] === "show-host") args.shift();
  let json = false;
  let tier: Tier | undefined;
  let pid: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const value = (): string | undefined => args[++i];
    switch (arg) {
      case "-h":
      case "--help":
        io.out(usage);
        return 0;
      case "-v":
      case "--version":
        io.out(version());
        return 0;
      case "--json":
        json = true;
        break;
      case "--tier": {
        const t = value();
        if (t !== "fast" && t !== "standard" && t !== "deep") {
          io.err(
            `heapstate: --tier takes fast, standard or deep (received ${t === undefined ? "nothing" : JSON.stringify(t)})`,
          );
          return 2;
        }
        tier = t;
        break;
      }
      case "--pid": {
        const p = value();
        if (p === undefined || !/^\d+$/.test(p) || Number(p) <= 0) {
          io.err(`heapstate: --pid takes a process id (received ${p === undefined ? "nothing" : JSON.stringify(p)})`);
          return 2;
        }
        pid = Number(p);
        break;
      }
      default:
        io.err(
          `heapstate: unknown ${arg.startsWith("-") ? "option" : "command"} ${JSON.stringify(arg)} (see heapstate --help)`,
        );
        return 2;
    }
  }
  try {
    const s = collect({ tier, pid });
    io.out(json ? JSON.stringify(s, null, 2) : formatHuman(s));
    return 0;
  } catch (error) {
    if (error instanceof HeapstateError) {
      io.err(`heapstate: ${error.message}`);
      return 1;
    }
    throw error;
  }
}
