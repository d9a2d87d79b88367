/**
 * Heap-state sidecars for test runs, runner-neutral: `start()` and `stop()` around a test file (or
 * any unit of work) in the process that runs it, `buildRun()` and `write()` where the results are
 * gathered. The Vitest reporter and setup file are built on these; node:test, mocha or a custom
 * harness can use them directly.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { threadId } from "node:worker_threads";
import { collect } from "./collect";
import { diff, type FieldChange } from "./diff";
import { HeapstateError } from "./errors";
import { nativeHeap } from "./figures";
import { append, rows } from "./format";
import { type AllocatorEnvironment, allocatorEnvironment, type HostState, hostInfo } from "./host";
import { readBounded } from "./read-file";
import { type Snapshot, TIERS, type Tier } from "./types";
import { formatBytes } from "./units";
import * as is from "./validate";
import { servingAllocator } from "./views";

/** The figures a sidecar keeps of each reading. */
export interface KeyFigures {
  time: string;
  allocator?: string;
  rssBytes?: number;
  /** The allocator's in-use bytes (mimalloc: committed bytes); `nativeHeapSource` says which. */
  nativeHeapBytes?: number;
  nativeHeapSource?: string;
  v8HeapUsedBytes?: number;
  v8ExternalBytes?: number;
  arrayBuffersBytes?: number;
  unattributedBytes?: number;
  peakRssBytes?: number;
}

export interface Growth {
  rssBytes?: number;
  nativeHeapBytes?: number;
  v8HeapUsedBytes?: number;
  v8ExternalBytes?: number;
}

/** One measured unit of work (a test file). */
export interface FileRecord {
  file: string;
  pid: number;
  threadId: number;
  durationMs: number;
  start: KeyFigures;
  end: KeyFigures;
  growth: Growth;
  /** VmHWM at the end: the peak of the whole process so far (one file's own peak only if it had the process to itself from its start). */
  peakRssBytes?: number;
  /** The largest increases between start and end (byte figures of the two snapshots). */
  topGrowers: FieldChange[];
  /** own-process: nothing else ran in this process meanwhile, the growth is the file's. shared-process: other files ran in the same process at the same time. */
  attribution?: "own-process" | "shared-process";
  sharedWith?: string[];
  warnings?: string[];
}

export interface Budgets {
  nativeHeapBytes?: number;
  rssBytes?: number;
  v8HeapBytes?: number;
}

export interface BudgetViolation {
  file: string;
  figure: keyof Budgets;
  growthBytes: number;
  budgetBytes: number;
  /** False for a shared-process file: the growth may be another file's, so it does not fail the run. */
  enforced: boolean;
  message: string;
}

export interface BaselineChange {
  file: string;
  nativeHeapGrowthBefore?: number;
  nativeHeapGrowthNow?: number;
  rssGrowthBefore?: number;
  rssGrowthNow?: number;
  /** |Δ native heap growth| + |Δ RSS growth|, for ordering. */
  change: number;
}

export interface SidecarRun {
  schema: "heapstate-sidecar/1";
  time: string;
  runner: { name: string; version?: string; pool?: string };
  files: FileRecord[];
  /** Files the runner reported without a measurement (the setup file did not run there), and why. */
  unmeasured: Array<{ file: string; reason: string }>;
  /** The gathering process (the test runner's main process). */
  main: Snapshot;
  host: HostState & { allocatorEnvironment?: AllocatorEnvironment };
  budgets?: Budgets;
  violations: BudgetViolation[];
  /** The comparison with a previous run; `problem` says why there is none (a missing, corrupt or foreign file). */
  baseline?: { file: string; changes: BaselineChange[]; problem?: string };
}

const MiB = 1024 * 1024;

export function keyFigures(s: Snapshot): KeyFigures {
  const k: KeyFigures = { time: s.time };
  const set = <K extends keyof KeyFigures>(key: K, v: KeyFigures[K] | undefined) => {
    if (v !== undefined) k[key] = v;
  };
  set("allocator", servingAllocator(s)?.allocator);
  set("rssBytes", s.process?.rssBytes);
  // A reused reading (`asOf`) is an earlier moment's figure: nativeHeap() gives none then.
  const heap = nativeHeap(s);
  if (heap) {
    k.nativeHeapBytes = heap.bytes;
    k.nativeHeapSource = `${heap.allocator} ${heap.counter}`;
  }
  set("v8HeapUsedBytes", s.v8?.heapUsedBytes);
  set("v8ExternalBytes", s.v8?.externalBytes);
  set("arrayBuffersBytes", s.v8?.arrayBuffersBytes);
  set("unattributedBytes", s.breakdown?.unattributedBytes);
  set("peakRssBytes", s.process?.peakRssBytes);
  return k;
}

let gcFunction: (() => void) | undefined;

/**
 * A full garbage collection, so Buffers a file dropped are freed before its end reading and do
 * not count as growth. Uses global.gc when exposed, else obtains it at run time.
 */
export function fullGc(): void {
  if (gcFunction === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === "function") {
      gcFunction = g;
    } else {
      setFlagsFromString("--expose-gc");
      gcFunction = runInNewContext("gc") as () => void;
    }
  }
  gcFunction();
}

/** A measurement under way. */
export interface Measurement {
  name: string;
  startMs: number;
  snapshot: Snapshot;
  tier: Tier;
  gc: boolean;
}

export interface MeasureOptions {
  /** What to read (default "standard": smaps_rollup gives the exact RSS). */
  tier?: Tier;
  /** A full GC before each reading (default true). */
  gc?: boolean;
}

/**
 * Starts measuring a unit of work in this process.
 * @example
 * const m = start("test/db.test.js"); await runTests(); records.push(stop(m));
 */
export function start(name: string, options?: MeasureOptions): Measurement {
  const where = "sidecar start(name, options)";
  is.text(where, "name", name === undefined ? null : name);
  const o = is.optionsObject(where, options, ["tier", "gc"]);
  const gc = is.bool(where, "gc", o.gc, true);
  const tier = is.oneOf(where, "tier", o.tier, "standard", TIERS);
  if (gc) fullGc();
  // Fresh: a glibc walk in its back-off would give the figure of an earlier moment, and a file's
  // native-heap growth would read as 0 (it did, under vitest's threads pool on a loaded machine).
  return { name, startMs: performance.now(), snapshot: collect({ tier }), tier, gc };
}

/** Ends a measurement: the record to send to wherever results are gathered. */
export function stop(m: Measurement): FileRecord {
  if (m.gc) fullGc();
  const end = collect({ tier: m.tier });
  const a = keyFigures(m.snapshot);
  const b = keyFigures(end);
  const growth: Growth = {};
  const grow = (key: keyof Growth) => {
    const x = a[key];
    const y = b[key];
    if (typeof x === "number" && typeof y === "number") growth[key] = y - x;
  };
  grow("rssBytes");
  grow("nativeHeapBytes");
  grow("v8HeapUsedBytes");
  grow("v8ExternalBytes");
  const record: FileRecord = {
    file: m.name,
    pid: process.pid,
    threadId,
    durationMs: Math.round(performance.now() - m.startMs),
    start: a,
    end: b,
    growth,
    topGrowers: diff(m.snapshot, end).topGrowers,
  };
  if (b.peakRssBytes !== undefined) record.peakRssBytes = b.peakRssBytes;
  const warnings = [...m.snapshot.warnings, ...end.warnings].map((w) => `${w.code}: ${w.message}`);
  if (warnings.length) record.warnings = [...new Set(warnings)];
  return record;
}

const unitFactors: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: MiB, gib: 1024 * MiB };

/** 52428800, "50MiB", "50 MB" → bytes. */
export function parseBytes(value: unknown, what: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "string") {
    const m = /^\s*(\d{1,15}(?:\.\d{1,9})?)\s*([a-zA-Z]{0,3})\s*$/.exec(value);
    const factor = m ? unitFactors[(m[2] || "b").toLowerCase()] : undefined;
    const n = m && factor !== undefined ? Math.round(Number(m[1]) * factor) : undefined;
    if (n !== undefined && Number.isSafeInteger(n)) return n;
  }
  throw is.invalidOption(what, `expected bytes as a whole number or a string such as "50MiB", ${is.received(value)}`);
}

function overlaps(a: FileRecord, b: FileRecord): boolean {
  const s = (r: FileRecord) => Date.parse(r.start.time);
  const e = (r: FileRecord) => Date.parse(r.end.time);
  return s(a) < e(b) && s(b) < e(a);
}

/**
 * Marks each record own-process or shared-process. In a threads pool every file in the same
 * process counts as sharing it (workers run side by side); otherwise files of the same process
 * share it when their times overlap.
 */
export function attribute(records: FileRecord[], pool?: string): void {
  const threadsPool = pool !== undefined && /threads/i.test(pool);
  for (const r of records) {
    const alongside = records.filter((o) => o !== r && o.pid === r.pid && (threadsPool || overlaps(o, r)));
    r.attribution = alongside.length > 0 ? "shared-process" : "own-process";
    if (alongside.length > 0) r.sharedWith = alongside.map((o) => o.file);
    else delete r.sharedWith;
  }
}

const budgetFigures: Array<[keyof Budgets, keyof Growth, string]> = [
  ["nativeHeapBytes", "nativeHeapBytes", "native heap"],
  ["rssBytes", "rssBytes", "RSS"],
  ["v8HeapBytes", "v8HeapUsedBytes", "V8 heap"],
];

export function checkBudgets(records: FileRecord[], budgets: Budgets | undefined): BudgetViolation[] {
  const out: BudgetViolation[] = [];
  if (!budgets) return out;
  for (const r of records) {
    for (const [key, growthKey, label] of budgetFigures) {
      const budget = budgets[key];
      const growth = r.growth[growthKey];
      if (budget === undefined || growth === undefined || growth <= budget) continue;
      const enforced = r.attribution !== "shared-process";
      out.push({
        file: r.file,
        figure: key,
        growthBytes: growth,
        budgetBytes: budget,
        enforced,
        message: `${r.file} grew the ${label} by ${formatBytes(growth)}, over its budget of ${formatBytes(budget)}${enforced ? "" : " (not enforced: the file shared its process with others, the growth may be theirs)"}`,
      });
    }
  }
  return out;
}

export function compareBaseline(records: FileRecord[], baseline: SidecarRun): BaselineChange[] {
  const before = new Map(baseline.files.map((f) => [f.file, f]));
  const changes: BaselineChange[] = [];
  for (const r of records) {
    const b = before.get(r.file);
    if (!b) continue;
    const c: BaselineChange = { file: r.file, change: 0 };
    const pair = (x: number | undefined, y: number | undefined) =>
      x === undefined || y === undefined ? 0 : Math.abs(y - x);
    if (b.growth.nativeHeapBytes !== undefined) c.nativeHeapGrowthBefore = b.growth.nativeHeapBytes;
    if (r.growth.nativeHeapBytes !== undefined) c.nativeHeapGrowthNow = r.growth.nativeHeapBytes;
    if (b.growth.rssBytes !== undefined) c.rssGrowthBefore = b.growth.rssBytes;
    if (r.growth.rssBytes !== undefined) c.rssGrowthNow = r.growth.rssBytes;
    c.change = pair(c.nativeHeapGrowthBefore, c.nativeHeapGrowthNow) + pair(c.rssGrowthBefore, c.rssGrowthNow);
    changes.push(c);
  }
  return changes.sort((x, y) => y.change - x.change);
}

const growthKeys = ["rssBytes", "nativeHeapBytes", "v8HeapUsedBytes", "v8ExternalBytes"] as const;

/** The part of a record a baseline needs, checked: a file name and finite growth figures (others left out). */
function baselineRecord(value: unknown): FileRecord | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const r = value as { file?: unknown; growth?: unknown };
  if (typeof r.file !== "string" || r.growth === null || typeof r.growth !== "object") return undefined;
  const growth: Growth = {};
  for (const k of growthKeys) {
    const v = (r.growth as Record<string, unknown>)[k];
    if (typeof v === "number" && Number.isFinite(v)) growth[k] = v;
  }
  return { ...(value as FileRecord), file: r.file, growth };
}

/**
 * Reads a sidecar written before (for a baseline). Throws HeapstateError ("INVALID_SNAPSHOT")
 * naming the file when it cannot be read or is not a sidecar; records that are not records are
 * left out.
 */
export function readSidecar(path: string): SidecarRun {
  let value: unknown;
  try {
    value = JSON.parse(readBounded(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new HeapstateError(
      "INVALID_SNAPSHOT",
      `sidecar ${path}: ${code && code !== "EFBIG" ? code : (error as Error).message}`,
    );
  }
  const v = value as { schema?: unknown; files?: unknown } | null;
  if (v === null || typeof v !== "object" || v.schema !== "heapstate-sidecar/1" || !Array.isArray(v.files)) {
    throw new HeapstateError(
      "INVALID_SNAPSHOT",
      `sidecar ${path}: not a heapstate sidecar (schema heapstate-sidecar/1)`,
    );
  }
  const files: FileRecord[] = [];
  for (const f of v.files) {
    const r = baselineRecord(f);
    if (r) files.push(r);
  }
  return { ...(v as SidecarRun), files };
}

export interface BuildOptions {
  runner: SidecarRun["runner"];
  budgets?: Budgets;
  /** A previous sidecar file to compare with. */
  baseline?: string;
  unmeasured?: SidecarRun["unmeasured"];
}

/** Gathers records into one run: attribution, budgets, baseline, and the gathering process's own state. */
export function buildRun(records: FileRecord[], options: BuildOptions): SidecarRun {
  attribute(records, options.runner.pool);
  const env = allocatorEnvironment(process.pid);
  const run: SidecarRun = {
    schema: "heapstate-sidecar/1",
    time: new Date().toISOString(),
    runner: options.runner,
    files: records,
    unmeasured: options.unmeasured ?? [],
    main: collect(),
    host: { ...hostInfo(), ...(env ? { allocatorEnvironment: env } : {}) },
    violations: checkBudgets(records, options.budgets),
  };
  if (options.budgets) run.budgets = options.budgets;
  if (options.baseline) {
    // A baseline that cannot be used is said, in the run and its summary; it never fails the run.
    try {
      run.baseline = { file: options.baseline, changes: compareBaseline(records, readSidecar(options.baseline)) };
    } catch (error) {
      run.baseline = {
        file: options.baseline,
        changes: [],
        problem: error instanceof HeapstateError ? error.message : `sidecar ${options.baseline}: ${String(error)}`,
      };
    }
  }
  return run;
}

/** Writes a run as JSON, creating the directory. */
export function write(path: string, run: SidecarRun): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(run, null, 2)}\n`);
}

function signed(n: number | undefined): string {
  if (n === undefined) return "(unknown)";
  return n > 0 ? `+${formatBytes(n)}` : formatBytes(n);
}

function table(records: FileRecord[], key: keyof Growth, title: string, top: number): string[] {
  const sorted = records
    .filter((r) => r.growth[key] !== undefined)
    .sort((a, b) => (b.growth[key] as number) - (a.growth[key] as number))
    .slice(0, top);
  if (sorted.length === 0) return [];
  const header: [string, string] = [
    "file",
    `${"native heap".padStart(12)}  ${"rss".padStart(12)}  ${"v8 heap".padStart(12)}  ${"peak rss".padStart(10)}  process`,
  ];
  const body = sorted.map((r): [string, string] => [
    r.file,
    `${signed(r.growth.nativeHeapBytes).padStart(12)}  ${signed(r.growth.rssBytes).padStart(12)}  ${signed(r.growth.v8HeapUsedBytes).padStart(12)}  ${formatBytes(r.peakRssBytes).padStart(10)}  ${r.pid}${r.attribution === "shared-process" ? " (shared)" : ""}`,
  ]);
  return [title, ...rows([header, ...body], "  ")];
}

/** The printed summary: top files by native-heap growth and by RSS growth, budgets, baseline. */
export function formatSummary(
  run: SidecarRun,
  options: { top?: number | undefined; path?: string | undefined } = {},
): string {
  const top = options.top ?? 5;
  const lines: string[] = [];
  const shared = run.files.some((f) => f.attribution === "shared-process");
  lines.push(
    `heapstate: memory growth per test file (${run.files.length} measured${run.runner.pool ? `, pool ${run.runner.pool}` : ""})`,
  );
  if (shared) {
    lines.push(
      "  (shared) = the file shared its process with other files at the same time: its growth includes theirs and is not attributed to it alone",
    );
  }
  append(lines, table(run.files, "nativeHeapBytes", "top by native heap growth:", top));
  append(lines, table(run.files, "rssBytes", "top by RSS growth:", top));
  for (const u of run.unmeasured) lines.push(`  not measured: ${u.file}: ${u.reason}`);
  for (const v of run.violations)
    lines.push(`${v.enforced ? "BUDGET EXCEEDED" : "budget (not enforced)"}: ${v.message}`);
  if (run.baseline) {
    const changed = run.baseline.changes.filter((c) => c.change > 0).slice(0, top);
    if (run.baseline.problem) lines.push(`baseline not used: ${run.baseline.problem}`);
    else lines.push(`compared with ${run.baseline.file}:`);
    if (changed.length === 0 && !run.baseline.problem) lines.push("  no file's growth changed");
    append(
      lines,
      rows(
        changed.map((c) => [
          c.file,
          `native heap ${signed(c.nativeHeapGrowthBefore)} → ${signed(c.nativeHeapGrowthNow)}   rss ${signed(c.rssGrowthBefore)} → ${signed(c.rssGrowthNow)}`,
        ]),
        "  ",
      ),
    );
  }
  if (options.path) lines.push(`sidecar: ${options.path}`);
  return lines.join("\n");
}
