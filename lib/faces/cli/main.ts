/**
 * The command line. `main(argv, io)` returns the exit code (a promise of it for --watch), so tests
 * run it in-process; the bin file calls runCommand(). Nothing here reads or computes what the
 * library does not: the CLI chooses, formats and reports errors in one line.
 */
import { writeSync } from "node:fs";
import { type Command, usage, version } from "./args";
import { diffCommand } from "./diff";
import { type CliIo, defaultIo, EXIT, fail } from "./io";
import { showHost } from "./show";
import { samplerPathCommand, trimCommand } from "./trim";

/**
 * Runs the CLI. Returns the exit code; with --watch, a promise of it.
 * @example
 * process.exitCode = await main(["show-host", "--json"]);
 */
export function main(argv: readonly string[], io: CliIo = defaultIo()): number | Promise<number> {
  try {
    const code = run([...argv], io);
    // An asynchronous command (--watch, the host view, an agent asked) fails the same way: one line.
    return typeof code === "number" ? code : code.catch((error: unknown) => fail(error, io));
  } catch (error) {
    return fail(error, io);
  }
}

/**
 * Runs the CLI as the `heapstate` command in this process (the bin file calls it). A reader that
 * goes away (`heapstate --watch | head -1`) ends the command quietly with status 0; any other
 * failure to write the output (a full disk) ends it with status 1 and one line, never a stack.
 */
export function runCommand(argv: readonly string[]): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT.ok);
    try {
      writeSync(2, `heapstate: the output could not be written (${error.code ?? error.message})\n`);
    } catch {
      // stderr is gone too: the status says it
    }
    process.exit(EXIT.failed);
  });
  // An error output that cannot be written has nowhere to be reported; the exit status still says it.
  process.stderr.on("error", () => {});
  Promise.resolve(main(argv)).then((code) => {
    process.exitCode = code;
  });
}

function run(args: string[], io: CliIo): number | Promise<number> {
  const first = args[0];
  if (first === "-v" || first === "--version") {
    io.out(version());
    return EXIT.ok;
  }
  if (first === "help") {
    const topic = args[1] ?? "main";
    if (!(topic in usage)) {
      io.err(`heapstate: no help for ${JSON.stringify(topic)} (commands: show-host, diff, trim, sampler-path)`);
      return EXIT.usage;
    }
    io.out(usage[topic as Command]);
    return EXIT.ok;
  }
  if (first === "-h" || first === "--help") {
    io.out(usage.main);
    return EXIT.ok;
  }
  let command: Command = "show-host";
  if (first !== undefined && !first.startsWith("-")) {
    if (!(first in usage) || first === "main") {
      io.err(
        `heapstate: unknown command ${JSON.stringify(first)} (commands: show-host, diff, trim, sampler-path; see heapstate --help)`,
      );
      return EXIT.usage;
    }
    command = first as Command;
    args.shift();
  }
  if (args.includes("-h") || args.includes("--help")) {
    io.out(usage[command]);
    return EXIT.ok;
  }
  switch (command) {
    case "diff":
      return diffCommand(args, io);
    case "trim":
      return trimCommand(args, io);
    case "sampler-path":
      return samplerPathCommand(args, io);
    default:
      return showHost(args, io);
  }
}
