/**
 * Every snippet in the README, CONTRIBUTING.md and docs/ is run: JavaScript blocks as programs
 * (CommonJS, or ES modules when they import or export) that require "heapstate" by name, as a user
 * would (the package resolves itself), and shell blocks line by line (`npx heapstate …` through the
 * checkout's bin; npm commands must name scripts the package has). A snippet that throws, exits
 * non-zero or names something that does not exist fails here, not in a reader's terminal.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { childEnv, fixtures, root, scaled } from "../helpers";

interface Snippet {
  file: string;
  line: number;
  lang: string;
  code: string;
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
    });
  }

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
