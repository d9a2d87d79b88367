/** show-host's host view (the host's Node processes) and --tree (a process and its descendants). */

import type { HostState, Tier } from "../../core";
import {
  collectTree,
  cutIndex,
  formatBytes,
  growthFindings,
  type HostProcess,
  type HostView,
  hostProcesses,
  type ProcessTree,
  visibleCopy,
  wrap,
} from "../../core";
import { withAgents } from "../agent/client";
import { type CliIo, EXIT, fail, type Paint } from "./io";

export interface HostViewOptions {
  all: boolean;
  tree?: number;
  tier: Tier;
  json: boolean;
  paint: Paint;
  width: number;
}

/** Cut to `room` columns with an ellipsis, between code points (a pair of surrogates is not split). */
function shorten(text: string, room: number): string {
  if (room <= 1) return "";
  if (text.length <= room) return text;
  return `${text.slice(0, cutIndex(text, room - 1))}…`;
}

function cgroupShort(path: string | undefined): string {
  if (path === undefined) return "?";
  if (path.length <= 24) return path;
  // The tail, from a code point's start: a low surrogate alone is not text.
  const from = path.length - 23;
  const c = path.charCodeAt(from);
  return `…${path.slice(c >= 0xdc00 && c <= 0xdfff ? from + 1 : from)}`;
}

/** The allocator by its short name; how it got there as a one-letter tag, explained under the table. */
function allocatorText(p: HostProcess): string {
  if (p.agent) return `${p.agent.allocator} (a)`;
  if (p.allocator === undefined) return p.rssBytes === undefined ? "-" : "?";
  return p.allocator.how === "preloaded" ? `${p.allocator.name} (p)` : p.allocator.name;
}

/** Sizes in binary units with one letter (K = KiB, M = MiB, G = GiB, T = TiB): the table fits 100 columns. */
function compactBytes(n: number | undefined): string {
  if (n === undefined) return "?";
  if (n < 1024) return `${n}B`;
  const units = ["K", "M", "G", "T"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)}${units[u]}`;
}

/** The last code-point-whole `room` characters of text. */
function tail(text: string, room: number): string {
  let from = Math.max(0, text.length - room);
  const c = text.charCodeAt(from);
  if (c >= 0xdc00 && c <= 0xdfff) from++;
  return text.slice(from);
}

/**
 * The command in `room` columns: the program and its script by their names (not their
 * directories), then as much of the arguments as fits; when they do not, their end, which tells
 * one worker of a service from another (`node server.js …--worker 3`).
 */
export function commandCell(command: string, room: number): string {
  const words = command.split(" ");
  const base = (w: string) => (w.startsWith("/") && w.length > 1 ? w.slice(w.lastIndexOf("/") + 1) || w : w);
  // The script: the first argument that is not an option; after -e or -p, the code is what runs.
  const evalAt = words.findIndex((w, i) => i > 0 && /^(-e|-p|--eval|--print)$/.test(w));
  const first = words.findIndex((w, i) => i > 0 && !w.startsWith("-"));
  const script = evalAt > 0 && (first < 0 || evalAt < first) ? evalAt : first;
  const short = words.map((w, i) => (i === 0 || i === script ? base(w) : w)).join(" ");
  if (short.length <= room) return short;
  const head = script > 0 ? `${base(words[0] as string)} ${base(words[script] as string)}` : base(words[0] as string);
  const rest = words.slice(script > 0 ? script + 1 : 1).join(" ");
  if (rest === "" || head.length + 3 >= room) return shorten(short, room);
  return `${head} …${tail(rest, room - head.length - 2)}`;
}

/** The table of processes: one row each, the command in what the width leaves. */
export function processTable(processes: HostProcess[], width: number, share?: Record<number, number>): string[] {
  // One cgroup for all (a container): said once below the table, not on every row.
  const cgroups = new Set(processes.map((p) => p.cgroup));
  const oneCgroup = cgroups.size === 1 ? [...cgroups][0] : undefined;
  const head = ["pid", "ppid", "rss", "pss", "uss", "swap", "thr", "arenas", "allocator", "cgroup"];
  if (share) head.splice(5, 0, "share");
  const body = processes.map((p) => {
    const row = [
      String(p.pid),
      p.ppid === undefined ? "?" : String(p.ppid),
      compactBytes(p.rssBytes),
      compactBytes(p.pssBytes),
      compactBytes(p.ussBytes),
      compactBytes(p.swapBytes),
      p.threads === undefined ? "?" : String(p.threads),
      p.glibcArenas === undefined ? "-" : String(p.glibcArenas),
      allocatorText(p),
      cgroupShort(p.cgroup),
    ];
    const part = share?.[p.pid];
    if (share) row.splice(5, 0, part === undefined ? "?" : `${(part * 100).toFixed(1)}%`);
    return row;
  });
  if (oneCgroup !== undefined) {
    head.pop();
    for (const row of body) row.pop();
  }
  // A narrow width drops the columns a reader misses least (their figures stay in --json), so that
  // the command keeps 20 columns.
  const widthsOf = () => head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const tableWidth = () => widthsOf().reduce((n, w) => n + w + 2, 0) + 2;
  for (const drop of ["uss", "swap", "thr", "ppid"]) {
    if (width <= 0 || tableWidth() + 20 <= width) break;
    const i = head.indexOf(drop);
    head.splice(i, 1);
    for (const row of body) row.splice(i, 1);
  }
  const widths = widthsOf();
  const left = (i: number) => head[i] === "allocator" || head[i] === "cgroup";
  const line = (cells: string[]) =>
    cells.map((c, i) => (left(i) ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  const fixed = line(head).length + 4;
  const room = width > 0 ? Math.max(20, width - fixed) : Number.POSITIVE_INFINITY;
  const out = [`  ${line(head)}  command`];
  processes.forEach((p, k) => {
    out.push(`  ${line(body[k] as string[])}  ${commandCell(p.command, room)}`);
  });
  // What could not be read, said once for all the rows it concerns, not cut into their commands.
  const unread = new Map<string, number>();
  for (const p of processes) for (const u of p.unreadable ?? []) unread.set(u, (unread.get(u) ?? 0) + 1);
  if (unread.size > 0) {
    const list = [...unread].map(([u, n]) => (n === processes.length ? u : `${u} (${n})`)).join(", ");
    out.push(wrap(`  ? could not be read: ${list}`, width));
  }
  const tags = [
    processes.some((p) => p.allocator?.how === "preloaded" && !p.agent) ? "(p) preloaded (LD_PRELOAD)" : "",
    processes.some((p) => p.agent) ? "(a) from the process's own agent" : "",
  ].filter(Boolean);
  out.push(wrap(`  sizes: K/M/G = KiB/MiB/GiB${tags.length ? `; ${tags.join("; ")}` : ""}`, width));
  if (oneCgroup !== undefined && processes.length > 0) out.push(`  every one in cgroup ${oneCgroup}`);
  return out;
}

/** One line per process whose agent socket was found and not used, with why. */
function agentLines(processes: HostProcess[], width: number): string[] {
  return processes
    .filter((p) => p.agentNotUsed !== undefined)
    .map((p) => wrap(`  process ${p.pid}: its agent was not used (${p.agentNotUsed}); its row is from procfs`, width));
}

/** Why no process's PSS is in the totals: the tier, or what reading smaps_rollup met. */
function pssMissing(v: HostView): string {
  if (v.tier === "fast") return "not read in this tier: --tier standard or --deep";
  const why = v.processes.flatMap((p) => (p.unreadable ?? []).filter((u) => u.startsWith("smaps_rollup")));
  if (why.some((u) => u.includes("EACCES") || u.includes("EPERM")))
    return "permission denied: run as the processes' user or as root";
  return why.length > 0 ? `could not be read: ${[...new Set(why)].join(", ")}` : "not read";
}

function totalsLines(v: HostView): string[] {
  const t = v.totals;
  const lines = [
    `  Σ rss ${formatBytes(t.rssBytes)} (a page shared by several processes counted in each)`,
    t.pssBytes !== undefined
      ? `  Σ pss ${formatBytes(t.pssBytes)} (each shared page counted once: their memory)${t.withoutPss ? `, without ${t.withoutPss} process${t.withoutPss > 1 ? "es" : ""} that could not be read` : ""}`
      : `  Σ pss (${pssMissing(v)})`,
  ];
  if (t.ussBytes !== undefined) lines.push(`  Σ uss ${formatBytes(t.ussBytes)} (pages only one process maps)`);
  return lines;
}

export function hostViewText(host: string[], view: HostView, o: HostViewOptions, self: number): string {
  // Command lines, cgroup paths and what agents answered are other users' text: escaped first.
  const v = visibleCopy(view);
  const lines = [...host];
  const what = o.all ? "processes" : "node processes";
  lines.push(
    o.paint.bold(
      wrap(
        `${what} (${v.processes.length}, by rss; this CLI, process ${self}, left out${o.all ? "" : "; --all for every process"})`,
        o.width,
      ),
    ),
  );
  if (v.processes.length === 0)
    lines.push(o.all ? "  (none readable)" : "  (none: no other Node.js process runs here)");
  else {
    lines.push(...processTable(v.processes, o.width));
    lines.push(...totalsLines(v).map((l) => wrap(l, o.width)));
    lines.push(...agentLines(v.processes, o.width));
  }
  lines.push(
    wrap(
      "  figures from procfs, and for a process that runs heapstate's agent (startAgent(), or --require heapstate/agent) its own reading: its allocator's counters, breakdown and findings; heapstate --pid N shows one in full",
      o.width,
    ),
  );
  return lines.join("\n");
}

export function treeText(tree: ProcessTree, o: HostViewOptions): string {
  const t = visibleCopy(tree);
  const lines = [o.paint.bold(wrap(`process tree of ${t.root} (${t.processes.length} processes, by rss)`, o.width))];
  lines.push(...processTable(t.processes, o.width, t.pssShare));
  lines.push(...totalsLines(t).map((l) => wrap(l, o.width)));
  lines.push(...agentLines(t.processes, o.width));
  if (t.findings.length > 0) {
    lines.push(o.paint.bold("findings"));
    for (const f of t.findings) {
      const l = wrap(`  ${f.severity === "warn" ? "WARN" : "info"} ${f.id}: ${f.message}`, o.width);
      lines.push(f.severity === "warn" ? o.paint.warn(l) : l);
    }
  }
  return lines.join("\n");
}

/** The view from procfs, then each process that runs an agent filled from its own reading. */
async function readView(o: HostViewOptions): Promise<HostView | ProcessTree> {
  const view =
    o.tree !== undefined
      ? collectTree({ pid: o.tree, tier: o.tier })
      : hostProcesses({ all: o.all, tier: o.tier, exclude: [process.pid] });
  return withAgents(view, o.tier === "deep" ? "standard" : o.tier);
}

/** The schema of show-host's and --tree's JSON (docs/schema.md). */
export const HOST_SCHEMA = "heapstate-host/1";

/**
 * show-host's and --tree's JSON: one shape, `{ schema, host, time, tier, processes, totals }`,
 * and for --tree also `tree: { root, pssShare, findings }`.
 */
function viewJson(view: HostView | ProcessTree, host: HostState, o: HostViewOptions): object {
  const out: Record<string, unknown> = {
    schema: HOST_SCHEMA,
    host,
    time: view.time,
    tier: view.tier,
    processes: view.processes,
    totals: view.totals,
  };
  if (o.tree !== undefined) {
    const t = view as ProcessTree;
    out.tree = { root: t.root, pssShare: t.pssShare, findings: t.findings };
  }
  return out;
}

function render(
  view: HostView | ProcessTree,
  hostLines: () => string[],
  hostJson: () => HostState,
  o: HostViewOptions,
): string {
  if (o.json) return JSON.stringify(viewJson(view, hostJson(), o), null, 2);
  return o.tree !== undefined ? treeText(view as ProcessTree, o) : hostViewText(hostLines(), view, o, process.pid);
}

/** One view, or --watch: the view again every `seconds` (redrawn on a terminal). */
export function showHostView(
  o: HostViewOptions,
  hostLines: () => string[],
  hostJson: () => HostState,
  io: CliIo,
  watch?: { seconds: number; count: number | undefined },
): number | Promise<number> {
  if (watch === undefined)
    return readView(o).then((view) => {
      io.out(render(view, hostLines, hostJson, o));
      return EXIT.ok;
    });
  return new Promise((resolve) => {
    let ticks = 0;
    let first: ProcessTree | undefined;
    let timer: NodeJS.Timeout | undefined;
    const stop = (code: number) => {
      if (timer) clearTimeout(timer);
      process.removeListener("SIGINT", onInt);
      resolve(code);
    };
    const onInt = () => stop(EXIT.ok);
    process.once("SIGINT", onInt);
    const tick = async () => {
      let text: string;
      try {
        let view = await readView(o);
        if (o.tree !== undefined) {
          // The tree watched: a process that grows while its siblings stay flat is named.
          const tree = view as ProcessTree;
          first ??= tree;
          view = { ...tree, findings: [...tree.findings, ...growthFindings(first, tree)] };
        }
        // --json with --watch: one line per reading (NDJSON), in the shape of a single view.
        text = o.json ? JSON.stringify(viewJson(view, hostJson(), o)) : render(view, hostLines, hostJson, o);
      } catch (error) {
        stop(fail(error, io));
        return;
      }
      ticks++;
      io.out(io.isTTY && !o.json ? `\x1b[H\x1b[2J${text}` : text);
      if (watch.count !== undefined && ticks >= watch.count) stop(EXIT.ok);
      else timer = setTimeout(() => void tick(), watch.seconds * 1000);
    };
    void tick();
  });
}
