/** Where the CLI writes, its exit codes, and how an error becomes one line of plain text. */
import { WriteStream } from "node:tty";
import { errorText, isHeapstateError, visible } from "../../core";

/** Where the CLI writes, and what it knows of its terminal. Tests pass their own. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Colour and in-place redraw only on a terminal. */
  isTTY?: boolean;
  /**
   * Whether to colour, as Node decides it for the terminal (stdout.hasColors(): FORCE_COLOR,
   * NO_COLOR, NODE_DISABLE_COLORS and TERM=dumb honoured). Absent: colour on a terminal unless NO_COLOR.
   */
  hasColors?: boolean;
  /** The terminal's width, where there is one: text is wrapped to it (100 columns otherwise). */
  columns?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Whether to colour, as Node decides for a terminal (tty's hasColors(): NO_COLOR,
 * NODE_DISABLE_COLORS, TERM=dumb, FORCE_COLOR); not on a pipe or a file unless FORCE_COLOR says so.
 */
export function colours(isTTY: boolean, env: NodeJS.ProcessEnv): boolean {
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "";
  if (!isTTY && !forced) return false;
  return WriteStream.prototype.hasColors.call(process.stdout as WriteStream, 16, env);
}

export const defaultIo = (): CliIo => {
  const tty = process.stdout.isTTY === true;
  return {
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    isTTY: tty,
    hasColors: colours(tty, process.env),
    ...(tty && process.stdout.columns > 0 ? { columns: process.stdout.columns } : {}),
    env: process.env,
  };
};

/** Where text is wrapped: the terminal's width, or 100 columns when not a terminal. */
export function widthOf(io: CliIo): number {
  return io.columns !== undefined && io.columns >= 40 ? io.columns : 100;
}

/** --width N (0: never wrap), else widthOf(io); for a value that is not a width, the usage message. */
export function widthFlag(value: string | true | undefined, io: CliIo): number | string {
  if (value === undefined) return widthOf(io);
  if (value === true || !/^\d{1,5}$/.test(value) || Number(value) > 10_000)
    return `--width takes a whole number of columns from 0 to 10000, received ${JSON.stringify(value)}`;
  return Number(value);
}

/** Exit codes, as documented in --help and the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 3 } as const;

export interface Paint {
  bold: (s: string) => string;
  warn: (s: string) => string;
}

export function painter(io: CliIo, noColor: boolean): Paint {
  const env = io.env ?? {};
  const on = !noColor && (io.hasColors ?? colours(io.isTTY === true, env));
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: wrap("1"), warn: wrap("33") };
}

/**
 * A message as one line of plain text: a file's content quoted in an error (JSON.parse quotes it)
 * may hold newlines and terminal escape sequences, which must neither break the one-line promise
 * nor reach the terminal. The same escaping as every other text the CLI prints ({@link visible}).
 */
export function oneLine(text: string): string {
  return visible(text);
}

export function fail(error: unknown, io: CliIo): number {
  if (isHeapstateError(error)) {
    io.err(`heapstate: ${oneLine(error.message)}`);
    return EXIT.failed;
  }
  io.err(`heapstate: internal error: ${oneLine(errorText(error))} (please report it)`);
  return EXIT.internal;
}

export function usageError(io: CliIo, command: string, message: string): number {
  io.err(
    `heapstate${command ? ` ${command}` : ""}: ${oneLine(message)} (see heapstate ${command ? `${command} ` : ""}--help)`,
  );
  return EXIT.usage;
}
