/**
 * heapstate/vitest: a Vitest reporter (3.x and later: onInit, onTestRunEnd). Gathers the records
 * that heapstate/vitest-setup puts on each test file's meta, writes one sidecar JSON, prints the
 * files that grew native memory and RSS most, checks budgets and compares with a baseline.
 *
 * @example
 * // vitest.config.ts
 * export default defineConfig({ test: {
 *   setupFiles: ["heapstate/vitest-setup"],
 *   reporters: ["default", ["heapstate/vitest", { budgets: { nativeHeapBytes: "50MiB" } }]],
 * } });
 */
import { isAbsolute, join, relative } from "node:path";
import { is } from "../../core";
import { type Budgets, buildRun, type FileRecord, formatSummary, parseBytes, type SidecarRun, write } from "../sidecar";

export interface HeapstateReporterOptions {
  /** Where the sidecar goes (default .vitest/heapstate/sidecar.json under the project root). */
  outputFile?: string;
  /** Fail the run when a file grows a figure by more than this (bytes, or "50MiB"). */
  budgets?: { nativeHeapBytes?: number | string; rssBytes?: number | string; v8HeapBytes?: number | string };
  /** A previous sidecar to compare with. */
  baseline?: string;
  /** Rows in each table of the summary (default 5). */
  top?: number;
  /** Print the summary (default true). */
  print?: boolean;
  /** Where the summary is printed (default process.stdout). */
  write?: (text: string) => void;
}

interface ModuleLike {
  moduleId?: string;
  meta?: () => Record<string, unknown>;
}

interface VitestLike {
  version?: string;
  config?: { root?: string; pool?: string };
  logger?: { log(...args: unknown[]): void; warn(...args: unknown[]): void };
}

/** Pools that run several test files in one process at once: a file's growth may be another's. */
const SHARED_POOLS = new Set(["threads", "vmThreads"]);

const optionKeys = ["outputFile", "budgets", "baseline", "top", "print", "write"] as const;
const budgetKeys = ["nativeHeapBytes", "rssBytes", "v8HeapBytes"] as const;

export class HeapstateReporter {
  private readonly options: {
    outputFile?: string | undefined;
    baseline?: string | undefined;
    top: number;
    print: boolean;
    write?: ((text: string) => void) | undefined;
  };
  private readonly budgets?: Budgets;
  private root = process.cwd();
  private logger: VitestLike["logger"];
  private runner: SidecarRun["runner"] = { name: "vitest" };
  /** The last run, for programmatic use and tests. */
  lastRun?: SidecarRun;
  /** Where the last sidecar was written. */
  lastPath?: string;

  constructor(options?: HeapstateReporterOptions) {
    const where = "heapstate/vitest reporter options";
    const o = is.optionsObject(where, options, optionKeys);
    this.options = {
      outputFile: is.text(where, "outputFile", o.outputFile),
      baseline: is.text(where, "baseline", o.baseline),
      top: is.integer(where, "top", o.top, 5, 1, 1000),
      print: is.bool(where, "print", o.print, true),
      write: is.fn<(text: string) => void>(where, "write", o.write),
    };
    if (o.budgets !== undefined) {
      const budgets = is.optionsObject(`${where}: budgets`, o.budgets, budgetKeys);
      const b: Budgets = {};
      for (const k of budgetKeys) {
        const v = budgets[k];
        if (v !== undefined) b[k] = parseBytes(v, `${where}: budgets.${k}`);
      }
      this.budgets = b;
    }
  }

  onInit(vitest: VitestLike): void {
    this.root = vitest.config?.root ?? process.cwd();
    this.logger = vitest.logger;
    const pool = vitest.config?.pool;
    if (pool && SHARED_POOLS.has(pool) && this.budgets) {
      this.warn(
        `heapstate: the ${pool} pool runs several test files in one process at once, so a file's growth may be another's: budgets are reported there but not enforced (pool: "forks" gives each file its own process)`,
      );
    }
    this.runner = {
      name: "vitest",
      ...(vitest.version ? { version: vitest.version } : {}),
      ...(vitest.config?.pool ? { pool: vitest.config.pool } : {}),
    };
  }

  onTestRunEnd(testModules: ReadonlyArray<ModuleLike>): void {
    const records: FileRecord[] = [];
    const unmeasured: SidecarRun["unmeasured"] = [];
    for (const m of testModules) {
      const file = m.moduleId ? relative(this.root, m.moduleId) : "unknown";
      const record = m.meta?.()?.heapstate as FileRecord | undefined;
      if (
        record &&
        typeof record === "object" &&
        typeof record.pid === "number" &&
        record.growth !== null &&
        typeof record.growth === "object" &&
        typeof record.start === "object" &&
        typeof record.end === "object"
      ) {
        records.push({ ...record, file });
      } else {
        unmeasured.push({ file, reason: 'no heapstate record: add "heapstate/vitest-setup" to setupFiles' });
      }
    }
    const path = this.options.outputFile
      ? isAbsolute(this.options.outputFile)
        ? this.options.outputFile
        : join(this.root, this.options.outputFile)
      : join(this.root, ".vitest", "heapstate", "sidecar.json");
    const baseline =
      this.options.baseline &&
      (isAbsolute(this.options.baseline) ? this.options.baseline : join(this.root, this.options.baseline));
    const run = buildRun(records, {
      runner: this.runner,
      ...(this.budgets ? { budgets: this.budgets } : {}),
      ...(baseline ? { baseline } : {}),
      unmeasured,
    });
    write(path, run);
    this.lastRun = run;
    this.lastPath = path;
    if (this.options.print !== false) {
      const text = formatSummary(run, { top: this.options.top, path: relative(process.cwd(), path) || path });
      // Through Vitest's logger, as its own reporters print, unless told where.
      if (this.options.write) this.options.write(`\n${text}\n`);
      else if (this.logger) this.logger.log(`\n${text}`);
      else process.stdout.write(`\n${text}\n`);
    }
    if (run.violations.some((v) => v.enforced)) process.exitCode = 1;
  }

  private warn(text: string): void {
    if (this.options.write) this.options.write(`${text}\n`);
    else if (this.logger) this.logger.warn(text);
    else process.stderr.write(`${text}\n`);
  }
}

export default HeapstateReporter;
