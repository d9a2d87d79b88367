/** show-host: the host, the allocator environment and a process's heap state, once or watched. */

import type { Snapshot } from "../../core";
import {
  type AddonState,
  ALLOCATOR_ENV,
  type AllocatorEnvironment,
  allocatorEnvironment,
  append,
  decimal,
  formatBytes,
  type HostState,
  hostInfo,
  MAX_PID,
  parseReadRequest,
  rows,
  sampleNativeSites,
  servingAllocator,
  type TopMapping,
  topMappings,
  visible,
  wrap,
} from "../../core";
import { askAgent } from "../agent/client";
import { formatHuman, formatTopMappings, visibleSnapshot } from "../format";
import { parseFlags, positiveInt, type Spec, version, WATCH_MAX_S, WATCH_MIN_S } from "./args";
import { showHostView } from "./hostview";
import { type CliIo, EXIT, type Paint, painter, usageError, widthFlag } from "./io";
import { read, type ShowOptions } from "./reading";
import { watch } from "./watch";

function describeAddon(a: AddonState): string {
  if (!a.loaded) return `none for ${a.platform}: allocator state is not available (see the warning below)`;
  if (a.source === "prebuilt") return `prebuilt for ${a.platform}`;
  if (a.source === "override") return `${a.file} (HEAPSTATE_BINDING) on ${a.platform}`;
  return `built from source on ${a.platform} (${a.file})`;
}

/** The longest sampling window --window asks (seconds): the agent's own limit. */
const WINDOW_MAX_S = 20;

const showHostSpec: Spec = {
  "--pid": "value",
  "--tier": "value",
  "--deep": "flag",
  "--top": "value",
  "--sites": "optional-number",
  "--window": "value",
  "--addresses": "flag",
  "--json": "flag",
  "--watch": "optional-number",
  "--count": "value",
  "--no-color": "flag",
  "--width": "value",
  "--all": "flag",
  "--tree": "value",
  "--self": "flag",
  "-v": "flag",
  "--version": "flag",
};

export function showHost(args: string[], io: CliIo): number | Promise<number> {
  const parsed = parseFlags(args, showHostSpec);
  if (typeof parsed === "string") return usageError(io, "", parsed);
  const { flags, rest } = parsed;
  if (rest.length > 0) return usageError(io, "", `unexpected argument ${JSON.stringify(rest[0])}`);
  if (flags.has("-v") || flags.has("--version")) {
    io.out(version());
    return EXIT.ok;
  }
  // A process id option: absent, a pid, or the usage message.
  const pidOption = (name: "--pid" | "--tree"): number | string | undefined => {
    if (!flags.has(name)) return undefined;
    const value = positiveInt(flags.get(name), MAX_PID);
    return value ?? `${name} takes a process id from 1 to ${MAX_PID}, received ${JSON.stringify(flags.get(name))}`;
  };
  const pid = pidOption("--pid");
  const tree = pidOption("--tree");
  if (typeof pid === "string") return usageError(io, "", pid);
  if (typeof tree === "string") return usageError(io, "", tree);
  if (flags.has("--self") && flags.has("--pid"))
    return usageError(io, "", "--self and --pid name two processes: one of them");
  if (tree !== undefined && (flags.has("--self") || flags.has("--pid")))
    return usageError(io, "", "--tree reads a process and its descendants: not with --pid or --self");
  const addresses = flags.has("--addresses");
  const request = parseReadRequest(
    {
      tier: flags.get("--tier"),
      top: flags.get("--top"),
      sites: flags.get("--sites"),
      deep: flags.has("--deep") || flags.has("--top") || addresses,
    },
    { tier: "--tier", top: "--top", sites: "--sites", deep: "--deep, --top and --addresses" },
  );
  if ("error" in request) return usageError(io, "", request.error);
  const { tier, top, sites } = request;
  const width = widthFlag(flags.get("--width"), io);
  if (typeof width === "string") return usageError(io, "", width);
  // The host view: no single process named. Its tier says what is read of each process.
  const hostView = !flags.has("--pid") && !flags.has("--self");
  if (hostView && (top !== undefined || addresses || sites !== undefined))
    return usageError(io, "", "--top, --sites and --addresses read one process: with --pid N or --self");
  // --window S: jemalloc's sampling switched on for S seconds, the sites read at its end.
  let windowMs: number | undefined;
  if (flags.has("--window")) {
    const w = decimal(String(flags.get("--window")));
    if (sites === undefined) return usageError(io, "", "--window goes with --sites");
    if (w === undefined || w * 1000 < 1 || w > WINDOW_MAX_S)
      return usageError(
        io,
        "",
        `--window takes a number of seconds up to ${WINDOW_MAX_S}, received ${JSON.stringify(flags.get("--window"))}`,
      );
    windowMs = Math.round(w * 1000);
  }
  if (!hostView && flags.has("--all")) return usageError(io, "", "--all goes with the host view (no --pid, --self)");
  const watchSpec = watchFlags(flags);
  if (typeof watchSpec === "string") return usageError(io, "", watchSpec);
  if (hostView) {
    const paint = painter(io, flags.has("--no-color"));
    return showHostView(
      {
        all: flags.has("--all"),
        ...(tree !== undefined ? { tree } : {}),
        tier,
        json: flags.has("--json"),
        paint,
        width,
      },
      () => hostLines(paint, width, undefined),
      () => hostInfo(),
      io,
      watchSpec,
    );
  }
  const options: ShowOptions = {
    pid,
    tier,
    top,
    sites,
    windowMs,
    addresses,
    json: flags.has("--json"),
    paint: painter(io, flags.has("--no-color")),
    width,
  };
  const self = pid === undefined || pid === process.pid;
  // Watched, each reading is made the way one reading is: another process through its agent too.
  if (watchSpec) return watch(options, watchSpec.seconds, watchSpec.count, io, () => readProcess(options, self));
  if (self && windowMs === undefined) return output(read(options), options, io, "self");
  return readProcess(options, false).then((r) => output(r.snapshot, options, io, r.source));
}

/** --watch [SECONDS] and --count N: the watch asked for, none, or the usage message. */
function watchFlags(
  flags: Map<string, string | true>,
): { seconds: number; count: number | undefined } | string | undefined {
  if (!flags.has("--watch")) return flags.has("--count") ? "--count goes with --watch" : undefined;
  const w = flags.get("--watch");
  const seconds = w === true ? 2 : decimal(w as string);
  if (seconds === undefined || seconds < WATCH_MIN_S || seconds > WATCH_MAX_S)
    return `--watch takes a number of seconds from ${WATCH_MIN_S} to ${WATCH_MAX_S}, written in decimal, received ${JSON.stringify(w)}`;
  let count: number | undefined;
  if (flags.has("--count")) {
    count = positiveInt(flags.get("--count"), Number.MAX_SAFE_INTEGER);
    if (count === undefined)
      return `--count takes a whole number ≥ 1, received ${JSON.stringify(flags.get("--count"))}`;
  }
  return { seconds, count };
}

/**
 * One reading of the process asked for. Another process: its own full reading through its agent
 * when it runs one that may be trusted, else procfs, with a warning naming why an agent found for
 * it was not used.
 */
export async function readProcess(
  options: ShowOptions,
  self: boolean,
): Promise<{ snapshot: Snapshot; source: "self" | "agent" | "procfs" }> {
  if (self || options.pid === undefined) {
    if (options.windowMs !== undefined)
      return {
        snapshot: await sampleNativeSites({ durationMs: options.windowMs, top: options.sites ?? 10 }),
        source: "self",
      };
    return { snapshot: read(options), source: "self" };
  }
  const pid = options.pid;
  // A dump of the allocator's profile inside the service takes longer than a reading (and a
  // sampling window as long as it was asked).
  const timeoutMs = options.sites !== undefined ? 15_000 + (options.windowMs ?? 0) : 3000;
  const a = await askAgent(pid, options.tier, timeoutMs, options.sites, options.windowMs);
  if (a !== undefined && "snapshot" in a) return { snapshot: a.snapshot, source: "agent" };
  const s = read(options);
  if (options.sites !== undefined)
    s.warnings.push({
      source: "agent",
      code: "NATIVE_SITES_UNAVAILABLE",
      message: `process ${pid}'s native allocation sites are read inside it, by its allocator, through its agent (NODE_OPTIONS="--require heapstate/agent", or startAgent()), and ${a === undefined ? "it runs none" : `its agent was not used (${a.refused})`}`,
    });
  if (a !== undefined)
    s.warnings.push({
      source: "agent",
      code: "AGENT_NOT_USED",
      message: `process ${pid}'s agent was not used (${a.refused}): this reading is from procfs`,
    });
  return { snapshot: s, source: "procfs" };
}

function output(s: Snapshot, options: ShowOptions, io: CliIo, source: "self" | "agent" | "procfs"): number {
  if (options.json) {
    io.out(JSON.stringify({ ...jsonOf(s, options), readBy: source }, null, 2));
  } else {
    const text = showText(s, options);
    io.out(
      source === "agent"
        ? `${text}\n${wrap(`read by process ${s.pid}'s own heapstate agent (startAgent(), or --require heapstate/agent): its allocator's counters, breakdown and findings`, options.width)}`
        : text,
    );
  }
  return EXIT.ok;
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

/** The host block: the host's facts, wrapped to the width; a cgroup row (the reading's) when given. */
export function hostLines(paint: Paint, width: number, cgroup: string | undefined): string[] {
  const h = hostInfo();
  const lines: string[] = [paint.bold("host")];
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
  const facts: Array<[string, string]> = [
    ["kernel", h.kernel],
    ["cpus", String(h.cpus)],
    ["memory", mem],
    ["swap", swap],
    ["transparent huge pages", h.transparentHugePages ?? "(unknown)"],
    ["overcommit", h.overcommit ?? "(unknown)"],
  ];
  if (cgroup !== undefined) facts.push(["cgroup", cgroup]);
  facts.push(
    ["libc", h.libc ? `${h.libc.family}${h.libc.version ? ` ${h.libc.version}` : ""}` : "(unknown)"],
    ["node / v8", `${h.node} / ${h.v8}`],
    ["heapstate addon", describeAddon(h.addon)],
  );
  append(
    lines,
    wrap(
      rows(
        facts.map(([k, v]) => [k, visible(v)]),
        "  ",
      ).join("\n"),
      width,
    ).split("\n"),
  );
  return lines;
}

export function showText(snapshot: Snapshot, o: ShowOptions): string {
  const { bold } = o.paint;
  // Another process's reading (its agent's answer, its cgroup path, its maps): escaped before use.
  const s = visibleSnapshot(snapshot);
  const cg = s.cgroup;
  const lines: string[] = hostLines(
    o.paint,
    o.width,
    cg
      ? `v${cg.version} ${cg.path}  limit ${cg.limitBytes === undefined ? "none" : formatBytes(cg.limitBytes)}  usage ${formatBytes(cg.usageBytes)}`
      : "(unknown)",
  );
  // Wrapped before any colour is added: the escape sequences would count as columns.
  const wrapped = (text: string[]) => wrap(text.join("\n"), o.width).split("\n");
  lines.push(bold(`allocator environment (process ${s.pid})`));
  const env = allocatorEnvironment(s.pid);
  const envRows: Array<[string, string]> = ALLOCATOR_ENV.map((k) => [
    k,
    env === undefined ? `(unknown: /proc/${s.pid}/environ may not be read)` : visible(env[k] ?? "(not set)"),
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
  append(lines, wrapped(rows(envRows, "  ")));

  lines.push(bold("heap state"));
  append(
    lines,
    formatHuman(s, { width: o.width })
      .split("\n")
      .map((l) => (/^(WARN|warning) /.test(l) ? o.paint.warn(l) : l)),
  );

  if (o.top !== undefined) {
    const [title = "", ...rest] = formatTopMappings(topMappings(s.regions, o.top, o.addresses), o.top);
    lines.push(bold(title));
    append(lines, wrapped(rest));
  }
  return lines.join("\n");
}
