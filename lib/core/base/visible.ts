/**
 * Text from outside heapstate's own process made safe to print: another process's command line,
 * title and environment, paths from its maps, cgroup paths, anything an agent or a saved file says.
 * Printed raw, such text can retitle the reader's terminal (`ESC ] 0 ; … BEL`), clear or colour it
 * (`ESC [ 2 J`), or forge whole lines of output with a newline. Every text face (the CLI's tables,
 * `--pid`, `--tree`, formatHuman, formatDiff, the handler's text) passes what it prints through
 * {@link visible} or {@link visibleCopy}, before cutting to width, so that a cut never lands inside
 * an escape sequence; JSON stays exact.
 */

/**
 * What is shown escaped: C0 controls (newline and tab too: inside one field they are not layout),
 * DEL and C1 (U+0080–U+009F: a terminal in UTF-8 mode may take U+009B as CSI), the line and
 * paragraph separators, the bidirectional controls that reorder what a reader sees (U+061C,
 * U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), and lone surrogates (not text; a terminal shows
 * them as U+FFFD, hiding what was there). With the `u` flag a surrogate pair is one code point and
 * does not match.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "gu");

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
}

/**
 * `text` with every character that could act on a terminal or hide what is there shown visibly, as
 * `ps` and `ls -b` do: `\x1b`, `\n`, `\t`, `\x9b`, `\u{202e}`. Everything else (any other Unicode,
 * backslashes) is kept as it is. A string without such a character is returned as it is.
 * @example
 * visible("node \x1b]0;pwned\x07 server.js") // 'node \\x1b]0;pwned\\x07 server.js'
 */
export function visible(text: string): string {
  return UNSAFE.test(text) ? text.replace(UNSAFE_ALL, escapeOne) : text;
}

/**
 * A copy of `value` with {@link visible} applied to every string in it, keys included (an agent's
 * answer may name anything); numbers, booleans and the shape are kept. The value itself when no
 * string in it needs escaping, so the common case allocates nothing. Cycles are not followed
 * (readings have none); depth is bounded.
 */
export function visibleCopy<T>(value: T): T {
  return copy(value, 0) as T;
}

const MAX_DEPTH = 64;

function copy(value: unknown, depth: number): unknown {
  if (typeof value === "string") return visible(value);
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const c = copy(v, depth + 1);
      if (c !== v && out === undefined) out = value.slice(0, i);
      if (out !== undefined) out.push(c);
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = (value as Record<string, unknown>)[k];
    const ck = visible(k);
    const cv = copy(v, depth + 1);
    if ((ck !== k || cv !== v) && out === undefined) {
      // Own enumerable properties only: a snapshot's views (heap) are given again by the caller.
      out = {};
      for (let j = 0; j < i; j++) {
        const kj = keys[j] as string;
        out[kj] = (value as Record<string, unknown>)[kj];
      }
    }
    if (out !== undefined) out[ck] = cv;
  }
  return out ?? value;
}
