/** Where the CLI writes, its exit codes, and how an error becomes one line of plain text. */
import { HeapstateError } from "../errors";

/** Where the CLI writes, and what it knows of its terminal. Tests pass their own. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Colour and in-place redraw only on a terminal. */
  isTTY?: boolean;
  env?: NodeJS.ProcessEnv;
}

export const defaultIo = (): CliIo => ({
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
});

/** Exit codes, as documented in --help and the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 3 } as const;

export interface Paint {
  bold: (s: string) => string;
  warn: (s: string) => string;
}

export function painter(io: CliIo, noColor: boolean): Paint {
  const env = io.env ?? {};
  const on = io.isTTY === true && !noColor && (env.NO_COLOR === undefined || env.NO_COLOR === "");
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: wrap("1"), warn: wrap("33") };
}

/**
 * A message as one line of plain text: a file's content quoted in an error (JSON.parse quotes it)
 * may hold newlines and terminal escape sequences, which must neither break the one-line promise
 * nor reach the terminal.
 */
export function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === "\n" || c === "\t" ? " " : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

export function fail(error: unknown, io: CliIo): number {
  if (error instanceof HeapstateError) {
    io.err(`heapstate: ${oneLine(error.message)}`);
    return EXIT.failed;
  }
  io.err(`heapstate: internal error: ${oneLine(String((error as Error)?.message ?? error))} (please report it)`);
  return EXIT.internal;
}

export function usageError(io: CliIo, command: string, message: string): number {
  io.err(
    `heapstate${command ? ` ${command}` : ""}: ${oneLine(message)} (see heapstate ${command ? `${command} ` : ""}--help)`,
  );
  return EXIT.usage;
}
