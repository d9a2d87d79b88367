/** Text helpers of every face: human units and aligned rows. */

/** Human units: 1536 → "1.5 KiB". Undefined → "(unknown)", never 0. */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "(unknown)";
  const sign = n < 0 ? "-" : "";
  let v = Math.abs(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${sign}${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Aligned "label  value" rows. A loop, not Math.max(...): a million rows must not overflow the stack. */
export function rows(pairs: Array<[string, string]>, indent: string): string[] {
  let width = 0;
  for (const [k] of pairs) if (k.length > width) width = k.length;
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`.trimEnd());
}

/** lines.push(...more) without spreading: a call's arguments live on the stack. */
export function append(lines: string[], more: readonly string[]): void {
  for (const l of more) lines.push(l);
}

/**
 * Where to cut `text` at most `n` UTF-16 units in without splitting a surrogate pair (an emoji, a
 * CJK extension character): n, or n − 1 when the unit before the cut opens a pair.
 */
export function cutIndex(text: string, n: number): number {
  if (n <= 0 || n >= text.length) return Math.max(0, Math.min(n, text.length));
  const c = text.charCodeAt(n - 1);
  return c >= 0xd800 && c <= 0xdbff ? n - 1 : n;
}

const UNIT = /^(B|KiB|MiB|GiB|TiB|PiB|µs|ms|s|%)[,;:)]*$/;

/** A number and its unit stay on one line: "16.3 MiB" is one word to wrap. */
function keepUnits(words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const last = out.length - 1;
    if (last >= 0 && UNIT.test(w) && /\d$/.test(out[last] as string)) out[last] = `${out[last]} ${w}`;
    else out.push(w);
  }
  return out;
}

/**
 * Long lines wrapped at spaces to `width` columns (0: not wrapped), each continuation indented
 * under its first line (its indent and four more). A word longer than a line (a path) is cut.
 */
export function wrap(text: string, width: number): string {
  if (!(width > 0)) return text;
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (line.length <= width) {
      out.push(line);
      continue;
    }
    const lead = /^ */.exec(line)?.[0].length ?? 0;
    const hang = " ".repeat(Math.min(lead + 4, Math.floor(width / 2)));
    let current = line.slice(0, lead);
    const blank = () => current.trim() === "";
    for (let word of keepUnits(line.slice(lead).split(" "))) {
      const sep = blank() ? "" : " ";
      if (current.length + sep.length + word.length <= width) {
        current += sep + word;
        continue;
      }
      if (!blank()) {
        out.push(current);
        current = hang;
      }
      // A word longer than a whole line (a path, a URL) is cut where the line ends.
      while (current.length + word.length > width) {
        const room = width - current.length;
        if (room <= 0) {
          current = hang;
          continue;
        }
        // Never between the two halves of a surrogate pair (a one-unit room before a pair takes it whole).
        const cut = cutIndex(word, room) || Math.min(2, word.length);
        out.push(current + word.slice(0, cut));
        current = hang;
        word = word.slice(cut);
      }
      current += word;
    }
    out.push(current);
  }
  return out.join("\n");
}
