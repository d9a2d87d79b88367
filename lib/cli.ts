/**
 * The command line. `main(argv, io)` returns the exit code (a promise of it for --watch), so tests
 * run it in-process; the bin file only calls it. Nothing here reads or computes what the library
 * does not: the CLI chooses, formats and reports errors in one line.
 */
import { readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { collect } from "./collect";
import { diff, formatDiff } from "./diff";
import { HeapstateError } from "./errors";
import { nativeHeap } from "./figures";
import { append, formatHuman, rows } from "./format";
import {
  type AddonState,
  ALLOCATOR_ENV,
  type AllocatorEnvironment,
  allocatorEnvironment,
  type HostState,
  hostInfo,
} from "./host";
import { parseSnapshot } from "./parse";
import { readBounded } from "./read-file";
import { type TopMapping, topMappings } from "./regions";
import type { Snapshot, Tier } from "./types";
import { formatBytes } from "./units";
import { decimal, MAX_PID, MAX_TIMER_MS } from "./validate";
import { servingAllocator } from "./views";

/** Where the CLI writes, and what it knows of its terminal. Tests pass their own. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Colour and in-place redraw only on a terminal. */
  isTTY?: boolean;
  env?: NodeJS.ProcessEnv;
}

const defaultIo = (): CliIo => ({
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
});

/** Exit codes, as documented in --help and the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 3 } as const;

const usage = {
  main: `Usage: heapstate [command] [options]

Where is a Node.js process's memory? Commands:
  show-host   the host, the allocator environment and the heap state of a process (default)
  diff        compare two snapshots saved with --json
  trim        how to give free memory back from a running service
  help        help for a command

Run "heapstate <command> --help" for its options.
Exit codes: 0 ok, 1 the reading failed (process gone or unreadable, bad file), 2 bad usage,
3 internal error.`,
  "show-host": `Usage: heapstate [show-host] [options]

Prints the host (kernel, CPUs, memory, swap, THP, overcommit, cgroup, libc, Node, V8), the
allocator environment (LD_PRELOAD, MALLOC_ARENA_MAX, MALLOC_CONF, GLIBC_TUNABLES and the
allocator that really serves malloc) and the heap state: the breakdown of RSS and findings.

Options:
  --pid N            another process: what the kernel shows (status, smaps, cgroup, environ).
                     Its allocator lives in its own memory and cannot be read from outside.
  --tier T           fast | standard | deep (default standard)
  --deep             the deep tier: smaps regions by category, glibc malloc_info
  --top N            with --deep: the N mappings with the most RSS
  --addresses        with --top / --json: include addresses and file paths (they defeat ASLR)
  --json             the snapshot (schema heapstate/2, docs/schema.md) plus a "host" object
  --watch [SECONDS]  read again every SECONDS (default 2) and show changes since the start;
                     redraws in place on a terminal, appends lines otherwise; Ctrl-C stops
  --count N          with --watch: stop after N readings
  --no-color         no colour (also NO_COLOR=1; colour is only ever used on a terminal)
  -h, --help         this text
  -v, --version      heapstate's version

Exit codes: 0 ok, 1 the reading failed, 2 bad usage, 3 internal error.`,
  diff: `Usage: heapstate diff A.json B.json [--json]

Compares two snapshots written by "heapstate --json" (or collect() saved as JSON): every byte
figure before → after with its change, then the top growers.

Options:
  --json      the structured diff as JSON
  -h, --help  this text

Exit codes: 0 ok, 1 a file could not be read or is not a snapshot, 2 bad usage.`,
  trim: `Usage: heapstate trim

Explains how to give a service's free memory back to the OS. The CLI cannot do it for another
process: free memory belongs to the allocator inside that process.`,
} as const;

type Command = keyof typeof usage;

interface Spec {
  [flag: string]: "flag" | "value" | "optional-number";
}

/** Parses flags by spec; returns the values or a one-line usage error. */
function parseFlags(args: string[], spec: Spec): { flags: Map<string, string | true>; rest: string[] } | string {
  const flags = new Map<string, string | true>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith("-") || arg === "-") {
      rest.push(arg);
      continue;
    }
    const [name, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const kind = spec[name];
    if (kind === undefined) return `unknown option ${JSON.stringify(name)}`;
    if (kind === "flag") {
      if (inline !== undefined) return `option ${name} takes no value`;
      flags.set(name, true);
    } else if (kind === "value") {
      const v = inline ?? args[++i];
      if (v === undefined || (inline === undefined && v.startsWith("-"))) return `option ${name} needs a value`;
      flags.set(name, v);
    } else {
      const next = args[i + 1];
      if (inline !== undefined) flags.set(name, inline);
      else if (next !== undefined && /^\d+(\.\d+)?$/.test(next)) flags.set(name, args[++i] as string);
      else flags.set(name, true);
    }
  }
  return { flags, rest };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

interface Paint {
  bold: (s: string) => string;
  warn: (s: string) => string;
}

function painter(io: CliIo, noColor: boolean): Paint {
  const env = io.env ?? {};
  const on = io.isTTY === true && !noColor && (env.NO_COLOR === undefined || env.NO_COLOR === "");
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: wrap("1"), warn: wrap("33") };
}

function describeAddon(a: AddonState): string {
  if (!a.loaded) return `none for ${a.platform}: allocator state is not available (see the warning below)`;
  if (a.source === "prebuilt") return `prebuilt for ${a.platform}`;
  if (a.source === "override") return `${a.file} (HEAPSTATE_BINDING) on ${a.platform}`;
  return `built from source on ${a.platform} (${a.file})`;
}

/**
 * Runs the CLI. Returns the exit code; with --watch, a promise of it.
 * @example
 * process.exitCode = await main(["show-host", "--json"]);
 */
export function main(argv: readonly string[], io: CliIo = defaultIo()): number | Promise<number> {
  try {
    return run([...argv], io);
  } catch (error) {
    return fail(error, io);
  }
}

/**
 * Runs the CLI as the `heapstate` command in this process (the bin file calls it). A reader that
 * goes away (`heapstate --watch | head -1`) ends the command quietly with status 0; any other
 * failure to write the output (a full disk) ends it with status 1 and one line, never a stack.
 */
export function runCommand(argv: readonly string[]): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT.ok);
    try {
      writeSync(2, `heapstate: the output could not be written (${error.code ?? error.message})\n`);
    } catch {
      // stderr is gone too: the status says it
    }
    process.exit(EXIT.failed);
  });
  // An error output that cannot be written has nowhere to be reported; the exit status still says it.
  process.stderr.on("error", () => {});
  Promise.resolve(main(argv)).then((code) => {
    process.exitCode = code;
  });
}

/**
 * A message as one line of plain text: a file's content quoted in an error (JSON.parse quotes it)
 * may hold newlines and terminal escape sequences, which must neither break the one-line promise
 * nor reach the terminal.
 */
export function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === "\n" || c === "\t" ? " " : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function fail(error: unknown, io: CliIo): number {
  if (error instanceof HeapstateError) {
    io.err(`heapstate: ${oneLine(error.message)}`);
    return EXIT.failed;
  }
  io.err(`heapstate: internal error: ${oneLine(String((error as Error)?.message ?? error))} (please report it)`);
  return EXIT.internal;
}

function run(args: string[], io: CliIo): number | Promise<number> {
  const first = args[0];
  if (first === "-v" || first === "--version") {
    io.out(version());
    return EXIT.ok;
  }
  if (first === "help") {
    const topic = args[1] ?? "main";
    if (!(topic in usage)) {
      io.err(`heapstate: no help for ${JSON.stringify(topic)} (commands: show-host, diff, trim)`);
      return EXIT.usage;
    }
    io.out(usage[topic as Command]);
    return EXIT.ok;
  }
  if (first === "-h" || first === "--help") {
    io.out(usage.main);
    return EXIT.ok;
  }
  let command: Command = "show-host";
  if (first !== undefined && !first.startsWith("-")) {
    if (!(first in usage) || first === "main") {
      io.err(
        `heapstate: unknown command ${JSON.stringify(first)} (commands: show-host, diff, trim; see heapstate --help)`,
      );
      return EXIT.usage;
    }
    command = first as Command;
    args.shift();
  }
  if (args.includes("-h") || args.includes("--help")) {
    io.out(usage[command]);
    return EXIT.ok;
  }
  switch (command) {
    case "diff":
      return diffCommand(args, io);
    case "trim":
      return trimCommand(args, io);
    default:
      return showHost(args, io);
  }
}

function usageError(io: CliIo, command: string, message: string): number {
  io.err(
    `heapstate${command ? ` ${command}` : ""}: ${oneLine(message)} (see heapstate ${command ? `${command} ` : ""}--help)`,
  );
  return EXIT.usage;
}

/** A whole number from 1 to `max` written in decimal ("12"; not "0x10", "1e3" or "+5"). */
function positiveInt(v: string | true | undefined, max: number): number | undefined {
  if (typeof v !== "string" || !/^\d{1,15}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= max ? n : undefined;
}

/** --watch accepts 0.1 s to just under 2³¹ ms (Node's timers turn anything longer into 1 ms). */
const WATCH_MIN_S = 0.1;
const WATCH_MAX_S = Math.floor(MAX_TIMER_MS / 1000);

const showHostSpec: Spec = {
  "--pid": "value",
  "--tier": "value",
  "--deep": "flag",
  "--top": "value",
  "--addresses": "flag",
  "--json": "flag",
  "--watch": "optional-number",
  "--count": "value",
  "--no-color": "flag",
  "-v": "flag",
  "--version": "flag",
};

interface ShowOptions {
  pid?: number | undefined;
  tier: Tier;
  top?: number | undefined;
  addresses: boolean;
  json: boolean;
  paint: Paint;
}

function showHost(args: string[], io: CliIo): number | Promise<number> {
  const parsed = parseFlags(args, showHostSpec);
  if (typeof parsed === "string") return usageError(io, "", parsed);
  const { flags, rest } = parsed;
  if (rest.length > 0) return usageError(io, "", `unexpected argument ${JSON.stringify(rest[0])}`);
  if (flags.has("-v") || flags.has("--version")) {
    io.out(version());
    return EXIT.ok;
  }
  let pid: number | undefined;
  if (flags.has("--pid")) {
    pid = positiveInt(flags.get("--pid"), MAX_PID);
    if (pid === undefined)
      return usageError(
        io,
        "",
        `--pid takes a process id from 1 to ${MAX_PID}, received ${JSON.stringify(flags.get("--pid"))}`,
      );
  }
  let tier: Tier = "standard";
  if (flags.has("--tier")) {
    const t = flags.get("--tier");
    if (t !== "fast" && t !== "standard" && t !== "deep") {
      return usageError(io, "", `--tier takes fast, standard or deep, received ${JSON.stringify(t)}`);
    }
    tier = t;
  }
  let top: number | undefined;
  if (flags.has("--top")) {
    top = positiveInt(flags.get("--top"), 1000);
    if (top === undefined)
      return usageError(
        io,
        "",
        `--top takes a whole number from 1 to 1000, received ${JSON.stringify(flags.get("--top"))}`,
      );
  }
  const addresses = flags.has("--addresses");
  if (flags.has("--deep") || top !== undefined || addresses) {
    if (flags.has("--tier") && tier !== "deep")
      return usageError(io, "", "--deep, --top and --addresses need the deep tier");
    tier = "deep";
  }
  const options: ShowOptions = {
    pid,
    tier,
    top,
    addresses,
    json: flags.has("--json"),
    paint: painter(io, flags.has("--no-color")),
  };
  if (flags.has("--watch")) {
    const w = flags.get("--watch");
    const seconds = w === true ? 2 : decimal(w as string);
    if (seconds === undefined || seconds < WATCH_MIN_S || seconds > WATCH_MAX_S)
      return usageError(
        io,
        "",
        `--watch takes a number of seconds from ${WATCH_MIN_S} to ${WATCH_MAX_S}, written in decimal, received ${JSON.stringify(w)}`,
      );
    let count: number | undefined;
    if (flags.has("--count")) {
      count = positiveInt(flags.get("--count"), Number.MAX_SAFE_INTEGER);
      if (count === undefined)
        return usageError(io, "", `--count takes a whole number ≥ 1, received ${JSON.stringify(flags.get("--count"))}`);
    }
    return watch(options, seconds, count, io);
  }
  if (flags.has("--count")) return usageError(io, "", "--count goes with --watch");
  const s = read(options);
  if (options.json) {
    io.out(JSON.stringify(jsonOf(s, options), null, 2));
  } else {
    io.out(showText(s, options));
  }
  return EXIT.ok;
}

function read(o: ShowOptions): Snapshot {
  return collect({
    tier: o.tier,
    ...(o.pid !== undefined ? { pid: o.pid } : {}),
    includeAddresses: o.top !== undefined || o.addresses,
  });
}

/** The snapshot for --json: addresses stay out unless asked for, plus host and environment. */
function jsonOf(
  s: Snapshot,
  o: ShowOptions,
): Snapshot & { host: HostState & { allocatorEnvironment?: AllocatorEnvironment }; topRegions?: TopMapping[] } {
  const top = o.top !== undefined ? topMappings(s.regions, o.top, o.addresses) : undefined;
  const regions = o.addresses ? s.regions : s.regions?.map(({ mappings: _, ...r }) => r);
  const env = allocatorEnvironment(s.pid);
  return {
    ...s,
    ...(regions ? { regions } : {}),
    ...(top ? { topRegions: top } : {}),
    host: { ...hostInfo(), ...(env ? { allocatorEnvironment: env } : {}) },
  };
}

function showText(s: Snapshot, o: ShowOptions): string {
  const h = hostInfo();
  const { bold } = o.paint;
  const lines: string[] = [bold("host")];
  const mem =
    h.memTotalBytes === undefined
      ? "(unknown)"
      : `${formatBytes(h.memTotalBytes)} total, ${formatBytes(h.memAvailableBytes)} available`;
  const swap =
    h.swapTotalBytes === undefined
      ? "(unknown)"
      : h.swapTotalBytes === 0
        ? "none"
        : `${formatBytes(h.swapTotalBytes)}, ${formatBytes(h.swapFreeBytes)} free`;
  const cg = s.cgroup;
  append(
    lines,
    rows(
      [
        ["kernel", h.kernel],
        ["cpus", String(h.cpus)],
        ["memory", mem],
        ["swap", swap],
        ["transparent huge pages", h.transparentHugePages ?? "(unknown)"],
        ["overcommit", h.overcommit ?? "(unknown)"],
        [
          "cgroup",
          cg
            ? `v${cg.version} ${cg.path}  limit ${cg.limitBytes === undefined ? "none" : formatBytes(cg.limitBytes)}  usage ${formatBytes(cg.usageBytes)}`
            : "(unknown)",
        ],
        ["libc", h.libc ? `${h.libc.family}${h.libc.version ? ` ${h.libc.version}` : ""}` : "(unknown)"],
        ["node / v8", `${h.node} / ${h.v8}`],
        ["heapstate addon", describeAddon(h.addon)],
      ],
      "  ",
    ),
  );

  lines.push(bold(`allocator environment (process ${s.pid})`));
  const env = allocatorEnvironment(s.pid);
  const envRows: Array<[string, string]> = ALLOCATOR_ENV.map((k) => [
    k,
    env === undefined ? `(unknown: /proc/${s.pid}/environ may not be read)` : (env[k] ?? "(not set)"),
  ]);
  const heap = servingAllocator(s);
  const outside = s.warnings.find((w) => w.code === "ALLOCATOR_NOT_READABLE_FROM_OUTSIDE");
  envRows.push([
    "serves malloc",
    heap
      ? `${heap.allocator}${heap.version ? ` ${heap.version}` : ""} (${heap.library})`
      : outside
        ? "(unknown: the allocator lives inside that process and cannot be read from outside; heapstate does not guess from the mapped libraries)"
        : `(unknown: ${s.warnings.find((w) => w.source === "native" || w.source === "heap")?.message ?? "not measured"})`,
  ]);
  append(lines, rows(envRows, "  "));

  lines.push(bold("heap state"));
  append(
    lines,
    formatHuman(s)
      .split("\n")
      .map((l) => (/^(WARN|warning) /.test(l) ? o.paint.warn(l) : l)),
  );

  if (o.top !== undefined) {
    lines.push(bold(`top ${o.top} mappings by RSS`));
    append(
      lines,
      rows(
        topMappings(s.regions, o.top, o.addresses).map((r) => [
          `${r.category} ${r.perms}`,
          `size ${formatBytes(r.sizeBytes).padStart(10)}  rss ${formatBytes(r.rssBytes).padStart(10)}${r.start ? `  ${r.start}-${r.end}` : ""}${r.path ? `  ${r.path}` : ""}`,
        ]),
        "  ",
      ),
    );
  }
  return lines.join("\n");
}

function signed(n: number | undefined): string {
  if (n === undefined) return "";
  return n > 0 ? ` (+${formatBytes(n)})` : n < 0 ? ` (${formatBytes(n)})` : " (±0)";
}

function watchFigures(s: Snapshot): Array<[string, number | undefined]> {
  return [
    ["rss", s.process?.rssBytes],
    [`heap ${nativeHeap(s)?.counter ?? "allocated"}`, nativeHeap(s)?.bytes],
    ["v8 used", s.v8?.heapUsedBytes],
    ["unattributed", s.breakdown?.unattributedBytes],
  ];
}

function watch(o: ShowOptions, seconds: number, count: number | undefined, io: CliIo): Promise<number> {
  return new Promise((resolve) => {
    let start: Snapshot | undefined;
    let ticks = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = (code: number) => {
      if (timer) clearTimeout(timer);
      process.removeListener("SIGINT", onInt);
      resolve(code);
    };
    const onInt = () => {
      if (io.isTTY) io.out("");
      stop(EXIT.ok);
    };
    process.once("SIGINT", onInt);
    const tick = () => {
      let s: Snapshot;
      try {
        s = read(o);
      } catch (error) {
        stop(fail(error, io));
        return;
      }
      start ??= s;
      ticks++;
      const base = new Map(watchFigures(start));
      if (o.json) {
        io.out(JSON.stringify(s));
      } else if (io.isTTY) {
        const figures = watchFigures(s).map(([k, v]): [string, string] => [
          k,
          `${formatBytes(v).padStart(10)}${ticks > 1 && v !== undefined ? signed(v - (base.get(k) ?? v)) : ""}`,
        ]);
        io.out(
          `\x1b[H\x1b[2J${o.paint.bold(`heapstate --watch ${seconds}s  reading ${ticks}  (changes since ${start.time}; Ctrl-C stops)`)}\n${rows(figures, "  ").join("\n")}\n\n${formatHuman(s)}`,
        );
      } else {
        const parts = watchFigures(s).map(([k, v]) => {
          const b = base.get(k);
          return `${k} ${formatBytes(v)}${ticks > 1 && v !== undefined && b !== undefined ? signed(v - b) : ""}`;
        });
        io.out(`${s.time}  ${parts.join("  ")}`);
      }
      if (count !== undefined && ticks >= count) stop(EXIT.ok);
      else timer = setTimeout(tick, seconds * 1000);
    };
    tick();
  });
}

function diffCommand(args: string[], io: CliIo): number {
  const parsed = parseFlags(args, { "--json": "flag" });
  if (typeof parsed === "string") return usageError(io, "diff", parsed);
  const { flags, rest } = parsed;
  if (rest.length !== 2) return usageError(io, "diff", `needs two files, received ${rest.length}`);
  const [a, b] = rest.map((file) => {
    let text: string;
    try {
      text = readBounded(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new HeapstateError(
        "INVALID_SNAPSHOT",
        `${file}: ${code && code !== "EFBIG" ? code : (error as Error).message}`,
      );
    }
    try {
      return parseSnapshot(text);
    } catch (error) {
      throw new HeapstateError("INVALID_SNAPSHOT", `${file}: ${(error as Error).message}`);
    }
  }) as [Snapshot, Snapshot];
  const d = diff(a, b);
  io.out(flags.has("--json") ? JSON.stringify(d, null, 2) : formatDiff(d));
  return EXIT.ok;
}

function trimCommand(args: string[], io: CliIo): number {
  if (args.length > 0) return usageError(io, "trim", `takes no options, received ${JSON.stringify(args[0])}`);
  io.out(`heapstate trim does not trim anything from the command line: free memory belongs to the
allocator inside each process, and this CLI's own process has nothing worth giving back.

In the service, call trim() where a pause of a few milliseconds is acceptable (for example after
a burst of work, or from an admin endpoint):

  const { trim } = require("heapstate");
  const { releasedBytes, before, after } = trim();
  console.log(\`gave back \${releasedBytes} bytes of RSS\`);

It runs malloc_trim(0) under glibc, purges every jemalloc arena, releases tcmalloc's free pages
or runs mi_collect(true), and measures what left RSS.`);
  return EXIT.ok;
}
