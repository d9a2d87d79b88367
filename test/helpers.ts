/** Shared test helpers: paths, the Debian allocator libraries, and child processes. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll } from "vitest";
import type { Snapshot } from "../lib/core/model/types";
import { withViews } from "../lib/core/model/views";

export const root = resolve(__dirname, "..");
export const dist = join(root, "dist", "index.js");
export const fixtures = join(root, "test", "fixtures");
export const printerAddon = join(fixtures, "native", "build", "printer.node");
export const jemallocStaticAddon = join(fixtures, "native", "build", "jemalloc-static.node");

const libdir = "/usr/lib/x86_64-linux-gnu";
export const allocatorLibs = {
  jemalloc: { path: join(libdir, "libjemalloc.so.2"), debian: "libjemalloc2" },
  tcmalloc: { path: join(libdir, "libtcmalloc_minimal.so.4"), debian: "libtcmalloc-minimal4" },
  mimalloc: { path: join(libdir, "libmimalloc.so.2"), debian: "libmimalloc2.0" },
  // gperftools' full tcmalloc: it samples the heap (TCMALLOC_SAMPLE_PARAMETER), the minimal one does not.
  "tcmalloc-full": { path: join(libdir, "libtcmalloc.so.4"), debian: "libgoogle-perftools4" },
} as const;

export type PreloadName = keyof typeof allocatorLibs;

/**
 * The allocator tests run, never skip: a missing Debian library fails the test with the command
 * that installs it (in CI and everywhere else).
 */
export function requireLib(name: PreloadName): string {
  const lib = allocatorLibs[name];
  if (!existsSync(lib.path)) {
    throw new Error(
      `${lib.path} is missing${process.env.CI ? " in CI" : ""}: apt-get install ${lib.debian} (the allocator tests must run, not skip)`,
    );
  }
  return lib.path;
}

/** heapstate's glibc sampler as `npm run build:native` builds it (what `heapstate sampler-path` answers in a checkout). */
export function samplerLib(): string {
  const file = join(root, "build", "Release", "libheapstate-sampler.so");
  if (!existsSync(file))
    throw new Error(`${file} is missing: npm run build:native builds it (the sampler's tests must run, not skip)`);
  return file;
}

/** Environment for a child: ours, minus anything that would change its allocator. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    "LD_PRELOAD",
    "MALLOC_CONF",
    "GLIBC_TUNABLES",
    "MALLOC_ARENA_MAX",
    "HEAPSTATE_NO_NATIVE",
    "HEAPSTATE_SAMPLE_BYTES",
    "HEAPSTATE_SAMPLER_SLOTS",
  ])
    delete env[k];
  // An extra set to undefined removes the variable.
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Runs test/fixtures/children/<script> with node and returns the JSON it prints last. A child whose
 * scenario depends on the address layout (kernel.cjs requireUnderBreak) may print `{ rerun: why }`
 * instead: it is run again, three times at most, and then the test fails with the reason.
 */
export function runChild<T = unknown>(
  script: string,
  args: string[] = [],
  extraEnv: Record<string, string | undefined> = {},
  nodeArgs: string[] = [],
): T {
  const reasons: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const stdout = execFileSync(
      process.execPath,
      ["--expose-gc", ...nodeArgs, join(fixtures, "children", script), ...args],
      {
        env: childEnv({ HEAPSTATE_TEST_DIST: dist, HEAPSTATE_TEST_PRINTER: printerAddon, ...extraEnv }),
        encoding: "utf8",
        maxBuffer: 64 << 20,
        timeout: scaled(60_000),
      },
    );
    const lines = stdout.trim().split("\n");
    const result = parseJson<T | { rerun: string }>(lines[lines.length - 1] as string);
    const rerun = (result as { rerun?: unknown } | null)?.rerun;
    if (typeof rerun !== "string") return result as T;
    reasons.push(rerun);
  }
  throw new Error(`${script} could not set up its scenario in 3 runs: ${reasons.join("; ")}`);
}

/**
 * Runs `make` (a child process, say) in beforeAll, so that nothing runs while Vitest collects the
 * file (a failure is then the tests', with their names, and `-t` filters skip it), and returns a
 * getter for its result.
 */
export function inBeforeAll<T>(make: () => T, timeoutMs = 120_000): () => T {
  let result: { value: T } | undefined;
  beforeAll(() => {
    result = { value: make() };
  }, timeoutMs);
  return () => {
    if (!result) throw new Error("read before its beforeAll ran (or beforeAll failed)");
    return result.value;
  };
}

/**
 * JSON.parse, with every snapshot in it given its `heap` view (the serving allocator, which the
 * schema holds once, in `allocators`), as collect() and parseSnapshot() give it.
 */
export function parseJson<T = unknown>(text: string): T {
  return JSON.parse(text, (_key, value: unknown) => {
    const v = value as { schema?: unknown; allocators?: unknown } | null;
    if (
      v &&
      typeof v === "object" &&
      typeof v.schema === "string" &&
      v.schema.startsWith("heapstate/") &&
      Array.isArray(v.allocators)
    ) {
      return withViews(v as Snapshot);
    }
    return value;
  }) as T;
}

export const MiB = 1024 * 1024;

/** glibc malloc_stats(): the "Total (incl. mmap):" block. */
export function glibcTotals(text: string): { system: number; inUse: number } {
  const total = text.slice(text.indexOf("Total (incl. mmap):"));
  const system = /system bytes\s*=\s*(\d+)/.exec(total);
  const inUse = /in use bytes\s*=\s*(\d+)/.exec(total);
  if (!system || !inUse) throw new Error(`no totals in malloc_stats output:\n${text}`);
  return { system: Number(system[1]), inUse: Number(inUse[1]) };
}

/**
 * For a test that needs root (switching to the user "nobody" with setpriv): as root it runs; as
 * another user it is skipped with the reason — except in CI, where it must run and fails instead.
 */
export function requireRoot(
  ctx: { skip: (note?: string) => never },
  what: string,
  because = "it switches to the user nobody",
): void {
  if (process.getuid?.() === 0) return;
  const reason = `${what} needs root (${because}); run the suite as root to include it`;
  if (process.env.CI) throw new Error(`${reason}: CI runs as root and must not skip it`);
  ctx.skip(reason);
}

/** A Node child that idles (test/fixtures/children/idle.cjs), resolved once it has started. */
export async function idleChild(env: Record<string, string | undefined> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(fixtures, "children", "idle.cjs")], {
    env: childEnv(env),
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("error", reject);
  });
  return child;
}

/**
 * The first line a child prints on stdout that is a JSON object with `key` (`{"port":…}`), parsed;
 * rejects with the child's status and stderr when it exits first (stderr must be a pipe to be quoted).
 */
export function announced<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith(`{"${key}"`));
      if (line) resolve(JSON.parse(line) as T);
    });
    child.once("exit", (code, signal) =>
      reject(new Error(`the child exited (${code ?? signal}) before printing ${key}: ${err}`)),
    );
  });
}

/**
 * What a finished child did, for a failed assertion's message: its status, the signal that ended
 * it, spawn's own error (ENOBUFS, ETIMEDOUT) and the end of its stderr, so that a failure on a busy
 * host says why, not "expected null to be 0".
 */
export function runInfo(r: {
  status: number | null;
  signal?: NodeJS.Signals | null;
  error?: Error;
  stderr?: string | Buffer;
}): string {
  const err = String(r.stderr ?? "").slice(-2000);
  return `status ${r.status}, signal ${r.signal ?? "none"}${r.error ? `, ${r.error.message}` : ""}; stderr: ${err || "(empty)"}`;
}

/** A time allowance scaled by the host's load at the start of the run (vitest.config.mts): 1–4×. */
export function scaled(ms: number): number {
  const f = Number(process.env.HEAPSTATE_TEST_TIME_SCALE);
  return Math.round(ms * (Number.isFinite(f) && f >= 1 ? f : 1));
}

/**
 * A world-readable copy of what the CLI needs (dist, bin, package.json, the prebuilds and
 * node-gyp-build), for tests that run it as another user: a checkout may sit where only its owner
 * can read. Returns the copy's bin/heapstate.js; the copy is in the suite's TMPDIR.
 */
export function worldReadableCli(): string {
  const copy = mkdtempSync(join(tmpdir(), "heapstate-cli-"));
  for (const part of ["dist", "bin", "package.json", "prebuilds", join("node_modules", "node-gyp-build")])
    cpSync(join(root, part), join(copy, part), { recursive: true });
  chmodSync(copy, 0o755);
  return join(copy, "bin", "heapstate.js");
}

/** mimalloc's printer: " committed:   33.0 MiB   33.0 MiB   64.2 KiB   33.0 MiB" → current (4th). */
export function mimallocCommitted(text: string): number {
  const m = /committed:\s+(.*)$/m.exec(text);
  if (!m) throw new Error(`no committed line in mimalloc's stats:\n${text}`);
  const fields = [...(m[1] as string).matchAll(/(-?[\d.]+)\s*(B|KiB|MiB|GiB)?/g)];
  const current = fields[3];
  if (!current) throw new Error(`unexpected committed line: ${m[0]}`);
  const scale = { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB }[(current[2] ?? "B") as "B"] ?? 1;
  return Number(current[1]) * scale;
}
