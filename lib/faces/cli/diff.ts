/** heapstate diff: two saved snapshots compared. */

import type { Snapshot } from "../../core";
import { diff, errorText, HeapstateError, parseSnapshot, readBounded } from "../../core";
import { formatDiff } from "../format";
import { parseFlags } from "./args";
import { type CliIo, EXIT, usageError, widthFlag } from "./io";

export function diffCommand(args: string[], io: CliIo): number {
  const parsed = parseFlags(args, { "--json": "flag", "--width": "value" });
  if (typeof parsed === "string") return usageError(io, "diff", parsed);
  const { flags, rest } = parsed;
  const width = widthFlag(flags.get("--width"), io);
  if (typeof width === "string") return usageError(io, "diff", width);
  if (rest.length !== 2) return usageError(io, "diff", `needs two files, received ${rest.length}`);
  const [a, b] = rest.map((file) => {
    let text: string;
    try {
      text = readBounded(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const words: Record<string, string> = {
        ENOENT: "no such file",
        EACCES: "permission denied",
        EISDIR: "is a directory, not a saved reading",
        ENOTDIR: "a part of the path is not a directory",
      };
      const said = code !== undefined ? words[code] : undefined;
      throw new HeapstateError(
        "INVALID_SNAPSHOT",
        `${file}: ${said ? `${said} (${code})` : code && code !== "EFBIG" ? code : errorText(error)}`,
      );
    }
    try {
      return parseSnapshot(text);
    } catch (error) {
      throw new HeapstateError("INVALID_SNAPSHOT", `${file}: ${errorText(error)}`);
    }
  }) as [Snapshot, Snapshot];
  const d = diff(a, b);
  io.out(flags.has("--json") ? JSON.stringify(d, null, 2) : formatDiff(d, { width }));
  return EXIT.ok;
}
