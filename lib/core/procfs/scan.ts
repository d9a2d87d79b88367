/**
 * Scanning kernel text in place: the readings parse status, smaps_rollup and the cgroup's files at
 * every reading, and a split and a regular expression per line made most of what a reading
 * allocated. These helpers compare characters where they lie. Their rules are the regular
 * expressions they replaced (the unit tests hold them to those on fuzzed text).
 *
 * The text is a string, or the bytes of a file read into a reused buffer: each byte is then the
 * character latin1 decodes it to, so both give the same result. The own process's files are
 * scanned as bytes and never become strings (they were 3 KiB of a standard reading's 18).
 */

/** Kernel text: a string, or a file's bytes (each byte the character latin1 decodes it to). */
export type Text = string | Buffer;

/** The character code at `i` (NaN beyond the end, as for a string). */
export function code(text: Text, i: number): number {
  return typeof text === "string" ? text.charCodeAt(i) : i < text.length ? (text[i] as number) : Number.NaN;
}

/** Whether `text` holds `word` (ASCII) at `at`. */
export function holdsAt(text: Text, word: string, at: number): boolean {
  if (typeof text === "string") return text.startsWith(word, at);
  if (at < 0 || at + word.length > text.length) return false;
  for (let i = 0; i < word.length; i++) if (text[at + i] !== word.charCodeAt(i)) return false;
  return true;
}

/** text[from, to) as a string. */
export function sliceOf(text: Text, from: number, to: number): string {
  return typeof text === "string" ? text.slice(from, to) : text.toString("latin1", from, to);
}

/** Whitespace as a regular expression's `\s` and String.prototype.trim see it, the newline aside. */
export function blank(c: number): boolean {
  if (c === 32 || c === 9) return true;
  if (c < 11) return false;
  return (
    c <= 13 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/**
 * The value in `text[from, end)` that a line's rest holds after its colon: at least one blank, 1 to
 * `maxDigits` digits, then " kB" when `kB`, then blanks only (`^\s+(\d{1,N})( kB)?\s*$`).
 * Undefined when it is anything else.
 */
export function lineValue(text: Text, from: number, end: number, maxDigits: number, kB: boolean): number | undefined {
  let i = from;
  while (i < end && blank(code(text, i))) i++;
  if (i === from) return undefined;
  let n = 0;
  const digits = i;
  for (; i < end; i++) {
    const d = code(text, i) - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  if (i === digits || i - digits > maxDigits) return undefined;
  if (kB) {
    if (!holdsAt(text, " kB", i)) return undefined;
    i += 3;
  }
  while (i < end && blank(code(text, i))) i++;
  return i === end ? n : undefined;
}

/** Where the line that starts at `at` ends (its newline, or the end of the text). */
export function lineEnd(text: Text, at: number): number {
  const end = typeof text === "string" ? text.indexOf("\n", at) : text.indexOf(10, at);
  return end < 0 ? text.length : end;
}
