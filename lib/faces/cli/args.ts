/** The commands' help texts and how their arguments are read. */
import { MAX_TIMER_MS, packageVersion } from "../../core";

export const usage = {
  main: `Usage: heapstate [command] [options]

Where is a Node.js process's memory? Commands:
  show-host   the host and its Node processes, a process tree, or one process in full (default)
  diff        compare two snapshots saved with --json
  trim        how to give free memory back from a running service
  sampler-path  the path of heapstate's allocation sampler for glibc, for LD_PRELOAD
  help        help for a command

Run "heapstate <command> --help" for its options.
Exit codes: 0 ok, 1 the reading failed (process gone or unreadable, bad file), 2 bad usage,
3 internal error.`,
  "show-host": `Usage: heapstate [show-host] [options]

Prints the host (kernel, CPUs, memory, swap, THP, overcommit, libc, Node, V8), then its Node.js
processes: pid, parent, RSS, PSS (shared pages divided among those that map them), USS (pages
only that process maps), swap, threads, glibc's arenas, the allocator serving malloc as far as
procfs tells (a preloaded allocator, or libc's), the cgroup, the command; sorted by RSS, with
totals that count shared pages once (Σ PSS). This CLI's own process is left out.

Options:
  --all              every process, not only Node's
  --tree PID         a process and its descendants: rows, each one's share of the tree's PSS,
                     totals and findings across the tree
  --pid N            one process in full: what the kernel shows (status, smaps, cgroup, environ),
                     its breakdown and findings. Its allocator lives in its own memory and cannot
                     be read from outside: load heapstate in it for that
  --self             the same for this CLI's own process (its allocator read too)
  --tier T           fast | standard | deep (default standard). Of each process in the host view:
                     fast reads status; standard adds smaps_rollup (PSS, USS) and maps; deep adds
                     smaps (glibc's arenas' resident bytes)
  --deep             the deep tier: with --pid/--self, smaps regions by category, glibc malloc_info
  --top N            with --pid/--self: the N mappings with the most RSS (deep tier)
  --sites [N]        with --pid/--self: the N (default 10) native allocation sites holding the
                     most, from the allocator's sampled profile (jemalloc with MALLOC_CONF=prof:true,
                     tcmalloc with TCMALLOC_SAMPLE_PARAMETER, glibc with heapstate sampler-path's
                     library preloaded), read inside the process: through its agent (deep tier)
  --window S         with --sites: switch jemalloc's sampling on for S seconds (at most 20) first,
                     for a process started with MALLOC_CONF=prof:true,prof_active:false: the sites
                     of what those seconds allocated and still hold
  --addresses        with --top / --json: include addresses and file paths (they defeat ASLR)
  --json             the same as data: { host, processes, totals }, { host, tree }, or the
                     snapshot (schema heapstate/3, docs/schema.md) plus a "host" object
  --watch [SECONDS]  read again every SECONDS (default 2); one process: changes since the start;
                     redraws in place on a terminal, appends otherwise; Ctrl-C stops
  --count N          with --watch: stop after N readings
  --width N          wrap lines at N columns (default: the terminal's width, else 100; 0: never)
  --no-color         no colour (also NO_COLOR, NODE_DISABLE_COLORS, TERM=dumb; FORCE_COLOR
                     colours a pipe too: as Node decides)
  -h, --help         this text
  -v, --version      heapstate's version

Exit codes: 0 ok, 1 the reading failed, 2 bad usage, 3 internal error.`,
  diff: `Usage: heapstate diff A.json B.json [--json]

Compares two snapshots written by "heapstate --json" (or collect() saved as JSON): every byte
figure before → after with its change, then the top growers.

Options:
  --json      the structured diff as JSON
  --width N   wrap lines at N columns (default: the terminal's width, else 100; 0: never)
  -h, --help  this text

Exit codes: 0 ok, 1 a file could not be read or is not a snapshot, 2 bad usage.`,
  trim: `Usage: heapstate trim

Explains how to give a service's free memory back to the OS. The CLI cannot do it for another
process: free memory belongs to the allocator inside that process.`,
  "sampler-path": `Usage: heapstate sampler-path

Prints the path of heapstate's allocation sampler for glibc's malloc (Linux with glibc, x64 or
arm64). Preloaded, it samples about one allocation per 512 KiB (HEAPSTATE_SAMPLE_BYTES sets the
mean; 1 samples every allocation) with its stack, so that a deep reading with native sites
(--sites, collect({ tier: "deep", nativeSites: true }), /debug/memory?sites=N) names the code that
holds the native heap:

  LD_PRELOAD=$(npx heapstate sampler-path) node server.js

Its cost and accuracy: docs/diagnosis.md ("Which code holds the native heap"). Exit codes: 0 the
path printed, 1 there is no sampler for this platform (said in one line).`,
} as const;

export type Command = keyof typeof usage;

export interface Spec {
  [flag: string]: "flag" | "value" | "optional-number";
}

/** Parses flags by spec; returns the values or a one-line usage error. */
export function parseFlags(args: string[], spec: Spec): { flags: Map<string, string | true>; rest: string[] } | string {
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
      if (v === undefined) return `option ${name} needs a value`;
      // A negative number is a value (a wrong one, said by the option's own check); another option is not.
      if (inline === undefined && v.startsWith("-") && !/^-\d/.test(v))
        return `option ${name} needs a value, not the option ${JSON.stringify(v)}`;
      flags.set(name, v);
    } else {
      const next = args[i + 1];
      if (inline !== undefined) flags.set(name, inline);
      else if (next !== undefined && /^\d+(\.\d+)?$/.test(next)) flags.set(name, args[++i] as string);
      // A word after it that is not an option is a value it cannot take: said as the option's.
      else if (next !== undefined && !next.startsWith("-"))
        return `option ${name} takes a number, received ${JSON.stringify(next)}`;
      else flags.set(name, true);
    }
  }
  return { flags, rest };
}

export function version(): string {
  return packageVersion();
}

/** A whole number from 1 to `max` written in decimal ("12"; not "0x10", "1e3" or "+5"). */
export function positiveInt(v: string | true | undefined, max: number): number | undefined {
  if (typeof v !== "string" || !/^\d{1,15}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= max ? n : undefined;
}

/** --watch accepts 0.1 s to just under 2³¹ ms (Node's timers turn anything longer into 1 ms). */
export const WATCH_MIN_S = 0.1;
export const WATCH_MAX_S = Math.floor(MAX_TIMER_MS / 1000);
