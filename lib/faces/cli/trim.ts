/**
 * heapstate trim: how to trim from a service (the CLI cannot do it for another process); and
 * heapstate sampler-path, the other command that only tells what to do in the service.
 */
import { samplerPath } from "../../core";
import { type CliIo, EXIT, usageError } from "./io";

export function trimCommand(args: string[], io: CliIo): number {
  if (args.length > 0) return usageError(io, "trim", `takes no options, received ${JSON.stringify(args[0])}`);
  io.out(`heapstate trim does not trim anything from the command line: free memory belongs to the
allocator inside each process, and this CLI's own process has nothing worth giving back.

In the service, call trim() where a pause of a few milliseconds is acceptable (for example after
a burst of work, or from an admin endpoint):

  const { trim } = require("heapstate");
  const { releasedBytes, before, after } = trim();
  console.log(\`gave back \${releasedBytes} bytes of RSS\`);

It runs malloc_trim(0) under glibc, purges every jemalloc arena, releases tcmalloc's free pages
or runs mi_collect(true), and measures what left RSS.`);
  return EXIT.ok;
}

/** heapstate sampler-path: where the glibc sampler is, for LD_PRELOAD (the help says how). */
export function samplerPathCommand(args: string[], io: CliIo): number {
  if (args.length > 0) return usageError(io, "sampler-path", `takes no options, received ${JSON.stringify(args[0])}`);
  const found = samplerPath();
  if ("error" in found) {
    io.err(`heapstate: ${found.error}`);
    return EXIT.failed;
  }
  io.out(found.file);
  return EXIT.ok;
}
