/**
 * Text from other users made safe before any text face prints it: visible() on any string, then
 * every face that prints other processes' text (the host table, --tree, formatHuman and formatDiff
 * of a reading that came from elsewhere), fed command lines, cgroup paths, allocator names and
 * finding ids full of escape sequences and newlines. What they print holds no control character
 * but the newline between rows, no DEL, no C1, no bidirectional control, and no row that was not
 * a row: the same number of lines as with harmless text. JSON stays exact.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { errorText } from "../../lib/core/base/errors";
import { visible, visibleCopy } from "../../lib/core/base/visible";
import { diff } from "../../lib/core/model/diff";
import { parseSnapshot } from "../../lib/core/model/parse";
import type { Snapshot } from "../../lib/core/model/types";
import type { HostProcess, HostView, ProcessTree } from "../../lib/core/read/host-view";
import { hostViewText, treeText } from "../../lib/faces/cli/hostview";
import { oneLine } from "../../lib/faces/cli/io";
import { formatDiff, formatHuman } from "../../lib/faces/format";
import { fixtures } from "../helpers";

/** What may never reach a terminal from a text face: C0 but the newline, DEL, C1, bidi controls, separators, lone surrogates. */
const UNSAFE_IN_OUTPUT =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u;
const UNSAFE_IN_FIELD = new RegExp(UNSAFE_IN_OUTPUT.source.replace("\\u0009\\u000b", "\\u000a\\u000b"), "u");

const HOSTILE = [
  "\x1b]0;pwned\x07",
  "\x1b[2J\x1b[H",
  "\x1b[31mred",
  "\nWARN forged line: run rm -rf /",
  "\r\x1b[K",
  "\u009b2J",
  "\u009d0;title\u009c",
  "\u202eevil\u202c",
  "a\u2028b",
  "\ud800",
  "\x7f\x00\x08",
  "tab\there",
];

/** Strings mixing the hostile pieces above with arbitrary text, including every code point. */
const hostileText = fc
  .array(fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ unit: "binary", maxLength: 12 }), fc.string()), {
    maxLength: 6,
  })
  .map((parts) => parts.join(""));

describe("visible()", () => {
  it("leaves no character that acts on a terminal, whatever the text", () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        const v = visible(text);
        expect(v).not.toMatch(UNSAFE_IN_FIELD);
        // Safe characters are kept as they are, and the escaped ones are shown, never dropped.
        expect(v.length).toBeGreaterThanOrEqual(text.length);
      }),
    );
  });

  it("shows each escaped character as ps does, and keeps the rest exactly", () => {
    expect(visible("node \x1b]0;pwned\x07 server.js")).toBe("node \\x1b]0;pwned\\x07 server.js");
    expect(visible("a\nb\tc\rd")).toBe("a\\nb\\tc\\rd");
    expect(visible("\u009b2J \x7f")).toBe("\\x9b2J \\x7f");
    expect(visible("\u202eabc")).toBe("\\u{202e}abc");
    expect(visible("\ud800x")).toBe("\\u{d800}x");
    // Printable text of any script, emoji (surrogate pairs) and backslashes stay as they are.
    for (const keep of ["/usr/bin/node server.js --port=80", "données 数据 данные", "😀 node", "C:\\path"])
      expect(visible(keep)).toBe(keep);
  });

  it("visibleCopy escapes every string and key of a value and keeps its shape; the value itself when nothing needs it", () => {
    const plain = { a: "x", b: [1, "y", { c: true }] };
    expect(visibleCopy(plain)).toBe(plain);
    const bad = { "k\x1b": ["\n", 2, { deep: "\x1b[2J" }], ok: "fine" };
    expect(visibleCopy(bad)).toEqual({ "k\\x1b": ["\\n", 2, { deep: "\\x1b[2J" }], ok: "fine" });
    expect(bad["k\x1b"][0]).toBe("\n"); // the original is not changed
  });

  it("oneLine (the CLI's error line) is the same escaping", () => {
    fc.assert(
      fc.property(hostileText, (t) => {
        expect(oneLine(t)).toBe(visible(t));
      }),
    );
  });
});

describe("errorText()", () => {
  it("never throws, whatever was thrown, and says one line", () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const values: unknown[] = [
      undefined,
      null,
      Symbol("s"),
      10n,
      new Error("first\nsecond"),
      {
        toString() {
          throw new Error("no");
        },
      },
      Object.create(null),
      revoked.proxy,
      new Proxy(
        {},
        {
          get() {
            throw new Error("trap");
          },
          getPrototypeOf() {
            throw new Error("trap");
          },
        },
      ),
      {
        get message() {
          throw new Error("getter");
        },
      },
    ];
    for (const v of values) {
      const t = errorText(v);
      expect(typeof t).toBe("string");
      expect(t).not.toContain("\n");
    }
    expect(errorText(new Error("first\nsecond"))).toBe("first");
    expect(errorText(revoked.proxy)).toMatch(/revoked proxy/);
    expect(errorText("x".repeat(1000), 50)).toHaveLength(50);
  });
});

const row = (pid: number, command: string, extra: Partial<HostProcess> = {}): HostProcess => ({
  pid,
  ppid: 1,
  command,
  node: true,
  rssBytes: 50 << 20,
  pssBytes: 30 << 20,
  ussBytes: 20 << 20,
  swapBytes: 0,
  threads: 7,
  glibcArenas: 2,
  allocator: { name: "glibc", how: "libc" },
  cgroup: "/user.slice",
  source: "procfs",
  ...extra,
});

const paint = { bold: (s: string) => s, warn: (s: string) => s };

function views(command: string, cgroup: string, agentText: string): { host: HostView; tree: ProcessTree } {
  const processes = [
    row(100, command, { cgroup }),
    row(101, "node plain.js", {
      cgroup: "/other",
      source: "agent",
      // The types allow only known names (parseSnapshot drops others); the printer escapes whatever arrives.
      agent: { allocator: agentText as never, version: agentText, findings: [agentText as never] },
    }),
    row(102, "node third.js", { agentNotUsed: agentText }),
  ];
  const totals = { processes: 3, rssBytes: 150 << 20, pssBytes: 90 << 20, withoutPss: 0 };
  const host: HostView = { time: "2026-12-07T00:00:00.000Z", tier: "standard", processes, totals };
  const tree: ProcessTree = {
    ...host,
    root: 100,
    pssShare: { 100: 0.3, 101: 0.3, 102: 0.4 },
    findings: [
      {
        id: "tree-common-finding",
        severity: "warn",
        message: `2 of the 2 processes read by their agents raise ${agentText} (100, 101): one cause, to fix once`,
        evidence: { finding: agentText },
      },
    ],
  };
  return { host, tree };
}

describe("the host table and --tree with other users' text", () => {
  for (const width of [0, 100, 60]) {
    it(`escape before cutting, and forge no row (width ${width})`, () => {
      const o = { all: false, tier: "standard" as const, json: false, paint, width };
      const lines = (h: HostView, t: ProcessTree) => [
        hostViewText(["host"], h, o, 1),
        treeText(t, { ...o, tree: 100 }),
      ];
      const harmless = views("node server.js --port 80", "/user.slice/x", "glibc");
      const [hostPlain, treePlain] = lines(harmless.host, harmless.tree);
      fc.assert(
        fc.property(hostileText, hostileText, hostileText, (command, cgroup, agentText) => {
          const v = views(command, cgroup, agentText);
          const [hostOut, treeOut] = lines(v.host, v.tree);
          for (const out of [hostOut, treeOut]) expect(out).not.toMatch(UNSAFE_IN_OUTPUT);
          // A newline inside a field is shown, not obeyed: with width 0 (no wrapping) the text
          // has exactly as many lines as the harmless one.
          if (width === 0) {
            expect((hostOut as string).split("\n")).toHaveLength((hostPlain as string).split("\n").length);
            expect((treeOut as string).split("\n")).toHaveLength((treePlain as string).split("\n").length);
          }
          expect(hostOut).not.toMatch(/^WARN forged/m);
        }),
        { numRuns: 200 },
      );
    });
  }
});

describe("formatHuman and formatDiff of a reading that came from elsewhere", () => {
  const saved = JSON.parse(readFileSync(join(fixtures, "snapshots", "deep-jemalloc.json"), "utf8")) as Record<
    string,
    unknown
  >;

  /** Keys whose values are free text in a reading (names, paths, messages, versions): what another process chose or said. */
  const FREE_TEXT = new Set(["library", "version", "message", "source", "path", "label", "hostname", "file", "name"]);

  /**
   * Names of a closed set, in the list that holds them: parseSnapshot leaves out what is not one of
   * them (schema.test.ts), so they are not free text (a warning's source, a part's or child's name).
   */
  const CLOSED = new Set(["warnings.source", "parts.name", "children.name"]);

  /** The saved reading with the hostile text added to every free-text field. */
  function poisoned(text: string): Snapshot {
    const replace = (v: unknown, key: string, list: string): unknown => {
      if (typeof v === "string") return FREE_TEXT.has(key) && !CLOSED.has(`${list}.${key}`) ? `${v}${text}` : v;
      if (Array.isArray(v)) return v.map((x) => replace(x, key, key));
      if (v && typeof v === "object")
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replace(x, k, list)]));
      return v;
    };
    return parseSnapshot(replace(saved, "", ""));
  }

  it("print no control character and no extra line, and the JSON keeps the text exact", () => {
    const plainLines = formatHuman(parseSnapshot(saved), { width: 0 }).split("\n").length;
    fc.assert(
      fc.property(hostileText, (text) => {
        const s = poisoned(text);
        for (const width of [0, 100]) {
          const out = formatHuman(s, { width });
          expect(out).not.toMatch(UNSAFE_IN_OUTPUT);
          if (width === 0) expect(out.split("\n")).toHaveLength(plainLines);
          expect(formatDiff(diff(s, s), { width })).not.toMatch(UNSAFE_IN_OUTPUT);
        }
        // JSON is exact: what was read is what is written.
        const library = s.allocators[0]?.library ?? "";
        expect(JSON.parse(JSON.stringify(s)).allocators[0].library).toBe(library);
        if (text !== "") expect(library.endsWith(text)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
