/**
 * Every snippet in the README, CONTRIBUTING.md and docs/ is run: JavaScript blocks as programs
 * (CommonJS, or ES modules when they import or export) that require "heapstate" by name, as a user
 * would (the package resolves itself), and shell blocks line by line (`npx heapstate …` through the
 * checkout's bin; npm commands must name scripts the package has). A snippet that throws, exits
 * non-zero or names something that does not exist fails here, not in a reader's terminal.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { agentSocket } from "../../lib/faces/agent/client";
import { childEnv, fixtures, printerAddon, requireLib, root, runInfo, scaled } from "../helpers";

interface Snippet {
  file: string;
  line: number;
  lang: string;
  code: string;
  /** A text block right after a JavaScript one (nothing but blank lines between): what it prints. */
  output?: string;
}

/**
 * A printed text's shape: its lines with every figure (numbers, their units, times) made one
 * token and runs of spaces one space. Figures differ from run to run; the lines, their labels and
 * their sentences must not.
 */
function shape(text: string): string[] {
  const lines = text
    .trimEnd()
    .split("\n")
    .map((l) =>
      l
        .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "TIME")
        .replace(/[-+]?\d+(\.\d+)?/g, "#")
        .replace(/# ?(B|KiB|MiB|GiB|TiB|µs|ms|%)(?![\w])/g, "#U")
        .replace(/\s+/g, " ")
        .trim(),
    );
  // V8's heap spaces are V8's own list, which differs between Node versions (trusted_space came
  // with V8 12): a run of them is one line of the shape.
  return lines.filter((l, i) => !(l.startsWith("v#-space ") && lines[i - 1]?.startsWith("v#-space ")));
}

/** The CLI from this checkout, as a document's `$ npx heapstate …` block runs it. */
function heapstateCli(args: string[]) {
  return spawnSync(process.execPath, [join(root, "bin", "heapstate.js"), ...args], {
    env: childEnv(),
    encoding: "utf8",
    maxBuffer: 256 << 20,
    timeout: scaled(60_000),
  });
}

/** An `unattributed` line's figure and share, when a text shows one. */
function unattributed(text: string): { bytes: number; share: number } | undefined {
  const m = /^ {2}unattributed +(-?[\d.]+) (B|KiB|MiB|GiB) +(-?[\d.]+)%/m.exec(text);
  if (!m) return undefined;
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[m[2] as "B"];
  return { bytes: Number(m[1]) * unit, share: Number(m[3]) / 100 };
}

const documents = [
  "README.md",
  "CONTRIBUTING.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => join("docs", f)),
];

function snippets(file: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i] as string);
    out.push({ file, line: start + 1, lang: open[1] as string, code: body.join("\n") });
    // The block right after a JavaScript one, with only blank lines between, is what it prints.
    const prev = out[out.length - 2];
    const self = out[out.length - 1] as Snippet;
    if (self.lang === "text" && prev && (prev.lang === "js" || prev.lang === "ts") && prev.output === undefined) {
      const between = lines.slice(prev.line + prev.code.split("\n").length + 1, start);
      if (between.every((l) => l.trim() === "")) prev.output = self.code;
    }
  }
  return out;
}

const all = documents.flatMap(snippets);
// Inside the package, so that require("heapstate") and import "heapstate" resolve to the package
// itself (Node's self-reference through package.json "exports"), and its dependencies are found.
const dir = join(root, ".cache", "doc-snippets");
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> })
  .scripts;

function resolvable(name: string): boolean {
  try {
    createRequire(join(dir, "x.cjs")).resolve(name);
    return true;
  } catch {
    return false;
  }
}

describe("the documents' snippets", () => {
  it("there are snippets in every document that shows code, and each has a language", () => {
    expect(all.length).toBeGreaterThan(10);
    for (const s of all) expect(["js", "ts", "sh", "text", "c", "cpp"], `${s.file}:${s.line}`).toContain(s.lang);
  });

  it("every relative link points at a file that exists", () => {
    for (const doc of documents) {
      const text = readFileSync(join(root, doc), "utf8");
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(join(root, dirname(doc), target)), `${doc}: ${target}`).toBe(true);
      }
    }
  });

  for (const s of all.filter((x) => x.lang === "js" || x.lang === "ts")) {
    it(`${s.file}:${s.line} runs`, () => {
      const esm = /^\s*(import|export)\s/m.test(s.code);
      const file = join(dir, `${s.file.replace(/[/.]/g, "_")}_${s.line}.${esm ? "mjs" : "cjs"}`);
      writeFileSync(file, `${s.code}\n`);
      // A snippet for a package heapstate does not depend on says so on its first line
      // ("// needs: sharp"): without that package here, it must at least parse.
      const needs = /^\/\/ needs: (\S+)/.exec(s.code)?.[1];
      if (needs !== undefined && !resolvable(needs)) {
        const check = spawnSync(process.execPath, ["--check", file], { encoding: "utf8", maxBuffer: 256 << 20 });
        expect(check.status, `${s.file}:${s.line}\n${check.stderr}`).toBe(0);
        return;
      }
      // A server the snippet starts is asked for /debug/memory, then lets the process end.
      const r = spawnSync(process.execPath, ["--require", join(fixtures, "children", "doc-servers.cjs"), file], {
        cwd: dir,
        env: childEnv(),
        encoding: "utf8",
        maxBuffer: 256 << 20,
        timeout: scaled(30_000),
      });
      expect(r.status, `${s.file}:${s.line}\n${r.stderr}`).toBe(0);
      const served = [...r.stderr.matchAll(/\[served (\d+) (\w+)\]\n/g)];
      expect(served.length, `${s.file}:${s.line}: servers answered`).toBe((s.code.match(/\.listen\(/g) ?? []).length);
      for (const m of served) expect(m[2], `${s.file}:${s.line}: port ${m[1]}`).toBe("200");
      expect(r.stderr.replace(/\[served \d+ \w+\]\n/g, ""), `${s.file}:${s.line}`).not.toMatch(/Error|Warning/);
      if (s.output !== undefined) {
        // What it prints has the shape of the block the document shows after it.
        expect(shape(r.stdout), `${s.file}:${s.line}: its output against the block after it`).toEqual(shape(s.output));
      }
      // A snippet that shows where the RSS is leaves little unattributed: max(4 MiB, 3 %).
      const u = unattributed(r.stdout);
      if (u !== undefined) {
        const rss = Math.abs(u.share) > 0 ? Math.abs(u.bytes / u.share) : 0;
        expect(Math.abs(u.bytes), `${s.file}:${s.line}: unattributed ${u.bytes}`).toBeLessThanOrEqual(
          Math.max(4 * 1024 * 1024, 0.03 * rss),
        );
      }
    });
  }

  // A text block that shows a command's output (`$ npx heapstate …`): the command is run, and the
  // lines that do not depend on which processes the host runs (the table's header, the legend
  // under it, the totals' wording) must be in what it prints, in the same shape.
  for (const s of all.filter(
    (x) => x.lang === "text" && x.code.startsWith("$ npx heapstate") && !/ --pid \d+ --sites/.test(x.code),
  )) {
    it(`${s.file}:${s.line}: the command's output has the block's fixed lines`, () => {
      const [first, ...rest] = s.code.split("\n");
      const args = (first as string).replace("$ npx heapstate", "").trim().split(/\s+/).filter(Boolean);
      const r = heapstateCli(args);
      expect(r.status, runInfo(r)).toBe(0);
      const printed = new Set(shape(r.stdout));
      const fixed = rest.filter((l) => /^ +pid +ppid |^ {2}sizes: |^ {2}Σ (rss|pss|uss) |^node processes \(/.test(l));
      expect(fixed.length, "the block shows the table's fixed lines").toBeGreaterThanOrEqual(4);
      for (const line of fixed) {
        // The legend names only the tags its rows use; the header's widths follow the figures.
        const want = (shape(line)[0] as string).replace(/; \(p\) .*$/, "");
        expect(
          [...printed].some((p) => p.replace(/; \([pa]\) .*$/, "") === want),
          `${s.file}:${s.line}: ${line.trim()}`,
        ).toBe(true);
      }
    });
  }

  // A `--sites` block shows a service of 600 deflate streams under jemalloc's profile, read through
  // its agent: that service is started again, the command run on it, and the block's first site
  // (its owner and frames) and the section's heading must be what it prints, in the same shape.
  for (const s of all.filter((x) => x.lang === "text" && /^\$ npx heapstate --pid \d+ --sites/.test(x.code))) {
    it(`${s.file}:${s.line}: --sites on the service it describes names the same first site`, async () => {
      const svc = spawn(process.execPath, [join(fixtures, "children", "deflate-idle.cjs")], {
        cwd: root,
        env: childEnv({
          NODE_OPTIONS: "--require heapstate/agent",
          LD_PRELOAD: requireLib("jemalloc"),
          MALLOC_CONF: "prof:true,lg_prof_sample:19",
        }),
        stdio: ["ignore", "pipe", "inherit"],
      });
      try {
        await new Promise((resolve) => svc.stdout?.once("data", resolve));
        const pid = svc.pid as number;
        for (let end = Date.now() + 10_000; agentSocket(pid) === undefined && Date.now() < end; )
          await new Promise((r) => setTimeout(r, 50));
        const [first = "", ...rest] = s.code.split("\n");
        const args = first
          .replace("$ npx heapstate", "")
          .trim()
          .split(/\s+/)
          .map((a, i, all) => (all[i - 1] === "--pid" ? String(pid) : a));
        const r = heapstateCli(args);
        expect(r.status, runInfo(r)).toBe(0);
        // Node 26 names the allocation hook CompressionStreamMemoryOwner::AllocForZlib.
        const norm = (l: string) =>
          l.replace(/CompressionStream[A-Za-z]*( ?<…>)?::AllocForZlib/, "CompressionStream::AllocForZlib");
        const printed = shape(r.stdout).map(norm);
        const block = shape(rest.join("\n")).map(norm);
        const at = block.findIndex((l) => l.startsWith("native heap by allocation site"));
        expect(at, "the block shows the sites' heading").toBeGreaterThanOrEqual(0);
        const want = block.slice(at, at + 6); // heading (two lines), the first site and its three frames
        const from = printed.indexOf(want[0] as string);
        expect(printed.slice(from, from + 6), r.stdout).toEqual(want);
      } finally {
        svc.kill();
      }
    });
  }

  it("every JavaScript block followed by a text block is compared with it (the README's and the docs')", () => {
    const compared = all.filter((x) => x.output !== undefined).map((x) => `${x.file}:${x.line}`);
    expect(compared).toContain(
      `docs/diagnosis.md:${all.find((x) => x.file === "docs/diagnosis.md" && x.code.includes("deflate-streams"))?.line}`,
    );
  });

  it("README's first example has the shape scripts/readme-example.cjs prints today (the heap it describes, made again)", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const from = readme.indexOf("## What it tells you");
    const block = snippets("README.md").find((x) => x.lang === "text" && readme.indexOf(x.code) > from);
    expect(block, "the README's example block").toBeDefined();
    const r = spawnSync(process.execPath, ["--expose-gc", join(root, "scripts", "readme-example.cjs")], {
      env: childEnv({ HEAPSTATE_TEST_DIST: join(root, "dist", "index.js"), HEAPSTATE_TEST_PRINTER: printerAddon }),
      encoding: "utf8",
      maxBuffer: 64 << 20,
      timeout: scaled(120_000),
    });
    expect(r.status, runInfo(r)).toBe(0);
    expect(shape(r.stdout)).toEqual(shape(block?.code ?? ""));
  });

  for (const s of all.filter((x) => x.lang === "sh")) {
    it(`${s.file}:${s.line} names commands that work`, () => {
      for (const raw of s.code.split("\n")) {
        const line = raw.replace(/\s+#.*$/, "").trim();
        if (line === "" || line.startsWith("#")) continue;
        const words = line.split(/\s+/);
        if (line === "npm install heapstate") {
          // The install from the registry is the one test/e2e/install.test.ts makes from the packed tarball.
          expect(readFileSync(join(root, "test", "e2e", "install.test.ts"), "utf8")).toContain("npm pack");
        } else if (words[0] === "npx" && words[1] === "heapstate") {
          const r = spawnSync(process.execPath, [join(root, "bin", "heapstate.js"), ...words.slice(2)], {
            env: childEnv(),
            encoding: "utf8",
            maxBuffer: 256 << 20,
            timeout: scaled(60_000),
          });
          expect(r.status, `${s.file}:${s.line}: ${line}\n${r.stderr}`).toBe(0);
          expect(r.stdout.length, line).toBeGreaterThan(0);
        } else if (words[0] === "npm" && words[1] === "run") {
          expect(scripts[words[2] as string], `${s.file}:${s.line}: ${line}`).toBeDefined();
        } else if (words[0] === "npm" && (words[1] === "test" || words[1] === "install" || words[1] === "ci")) {
          if (words[1] === "test") expect(scripts.test).toBeDefined();
          expect(words.length, `${s.file}:${s.line}: ${line}`).toBe(2);
        } else if (words[0] === "bash" && words[1]?.startsWith("scripts/")) {
          expect(readdirSync(join(root, "scripts")), line).toContain((words[1] as string).slice("scripts/".length));
        } else {
          throw new Error(`${s.file}:${s.line}: a shell line this test does not know how to check: ${line}`);
        }
      }
    });
  }
});
