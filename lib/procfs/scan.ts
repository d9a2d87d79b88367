/**
 * Scanning kernel text in place: the readings parse status, smaps_rollup and the cgroup's files at
 * every reading, and a split and a regular expression per line made most of what a reading
 * allocated. These helpers compare characters where they lie. Their rules are the regular
 * expressions they replaced (the unit tests hold them to those on fuzzed text).
 */

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
export function lineValue(text: string, from: number, end: number, maxDigits: number, kB: boolean): number | undefined {
  let i = from;
  while (i < end && blank(text.charCodeAt(i))) i++;
  if (i === from) return undefined;
  let n = 0;
  const digits = i;
  for (; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  if (i === digits || i - digits > maxDigits) return undefined;
  if (kB) {
    if (!text.startsWith(" kB", i)) return undefined;
    i += 3;
  }
  while (i < end && blank(text.charCodeAt(i))) i++;
  return i === end ? n : undefined;
}

/** Where the line that starts at `at` ends (its newline, or the end of the text). */
export function lineEnd(text: string, at: number): number {
  const end = text.indexOf("\n", at);
  return end < 0 ? text.length : end;
}
