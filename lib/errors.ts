/** Codes of {@link HeapstateError}. */
export type HeapstateErrorCode =
  | "INVALID_OPTION"
  | "NO_SUCH_PROCESS"
  | "PROCESS_NOT_READABLE"
  | "PROCFS_UNAVAILABLE"
  | "KERNEL_THREAD"
  | "ZOMBIE_PROCESS"
  | "INVALID_SNAPSHOT";

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
