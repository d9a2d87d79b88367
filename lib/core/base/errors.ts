/** Codes of {@link HeapstateError}. */
export type HeapstateErrorCode =
  | "INVALID_OPTION"
  | "NO_SUCH_PROCESS"
  | "PROCESS_NOT_READABLE"
  | "PROCFS_UNAVAILABLE"
  | "KERNEL_THREAD"
  | "ZOMBIE_PROCESS"
  | "INVALID_SNAPSHOT"
  | "REENTRANT_READING";

/**
 * The one error type heapstate throws, with a string `code`.
 * @example
 * try { collect({ pid: 1234 }) } catch (e) { if (e instanceof HeapstateError && e.code === "NO_SUCH_PROCESS") … }
 */
export class HeapstateError extends Error {
  readonly code: HeapstateErrorCode;
  constructor(code: HeapstateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HeapstateError";
    this.code = code;
  }
}

/**
 * What an error says, as one line of at most `max` characters, whatever was thrown: an Error's
 * message, or the value as a string. Never throws: a thrown value may be a revoked proxy, an object
 * whose `message` getter or `toString` throws, or a symbol, and the catch that reads it must still
 * answer (a server's handler, a reading's warning). Control characters are not escaped here (a
 * JSON answer keeps them exact); text faces escape what they print.
 * @example
 * try { f() } catch (error) { warnings.push({ …, message: `f failed: ${errorText(error)}` }) }
 */
export function errorText(error: unknown, max = 500): string {
  let text: string;
  try {
    text = error instanceof Error ? String(error.message) : String(error);
  } catch {
    try {
      const name = (error as { constructor?: { name?: unknown } } | null)?.constructor?.name;
      text = `${typeof name === "string" && name !== "" ? name : describeType(error)} that cannot be shown as text`;
    } catch {
      text = `${describeType(error)} that cannot be shown as text`;
    }
  }
  const first = text.split("\n", 1)[0] ?? "";
  return first.length > max ? `${first.slice(0, max - 1)}…` : first;
}

/** Whether `error` is heapstate's own error; false for anything that cannot be asked (a revoked proxy). */
export function isHeapstateError(error: unknown): error is HeapstateError {
  try {
    return error instanceof HeapstateError;
  } catch {
    return false;
  }
}

/** A system error's code (ENOENT, EACCES…), else {@link errorText}; never throws. */
export function errorCode(error: unknown): string {
  try {
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (typeof code === "string" && code !== "") return code;
  } catch {
    // a value whose code cannot be read: its text, below
  }
  return errorText(error);
}

/** "a number", "a string", "null", "an array"… for messages that say what was received. */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  try {
    if (Array.isArray(value)) return "an array";
  } catch {
    return "a revoked proxy"; // Array.isArray throws on nothing else
  }
  const t = typeof value;
  return t === "object" || t === "undefined" ? t : `a ${t}`;
}

/**
 * Throws INVALID_SNAPSHOT unless `value` looks like a snapshot (an object with a numeric pid and a
 * tier), so a JavaScript caller who passes nothing or the wrong thing reads what went wrong.
 */
export function assertSnapshot(value: unknown, where: string): void {
  const v = value as { pid?: unknown; tier?: unknown } | null;
  if (v === null || typeof v !== "object" || typeof v.pid !== "number" || typeof v.tier !== "string") {
    throw new HeapstateError(
      "INVALID_SNAPSHOT",
      `${where}: expected a snapshot from collect() or parseSnapshot(), received ${describeType(value)}`,
    );
  }
}
