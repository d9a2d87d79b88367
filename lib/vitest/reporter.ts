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
import { describeType, HeapstateError } from "../errors";
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
}

const optionKeys = ["outputFile", "budgets", "baseline", "top", "print", "write"];

export class HeapstateReporter {
  private readonly options: HeapstateReporterOptions;
  private readonly budgets?: Budgets;
  private root = process.cwd();
  private runner: SidecarRun["runner"] = { name: "vitest" };
  /** The last run, for programmatic use and tests. */
  lastRun?: SidecarRun;
  /** Where the last sidecar was written. */
  lastPath?: string;

  constructor(options: HeapstateReporterOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new HeapstateError(
        "INVALID_OPTION",
        `heapstate/vitest: options must be an object, received ${describeType(options)}`,
      );
    }
    for (const k of Object.keys(options)) {
      if (!optionKeys.includes(k)) {
        throw new HeapstateError(
          "INVALID_OPTION",
          `heapstate/vitest: unknown option "${k}" (known: ${optionKeys.join(", ")})`,
        );
      }
    }
    this.options = options;
    if (options.budgets) {
      const b: Budgets = {};
      for (const [k, v] of Object.entries(options.budgets)) {
        if (!["nativeHeapBytes", "rssBytes", "v8HeapBytes"].includes(k)) {
          throw new HeapstateError(
            "INVALID_OPTION",
            `heapstate/vitest: unknown budget "${k}" (known: nativeHeapBytes, rssBytes, v8HeapBytes)`,
          );
        }
        if (v !== undefined) b[k as keyof Budgets] = parseBytes(v, `heapstate/vitest budgets.${k}`);
      }
      this.budgets = b;
    }
  }

  onInit(vitest: VitestLike): void {
    this.root = vitest.config?.root ?? process.cwd();
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
      if (record && typeof record === "object" && typeof record.pid === "number") {
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
      const out = this.options.write ?? ((t: string) => process.stdout.write(t));
      out(`\n${formatSummary(run, { top: this.options.top, path: relative(process.cwd(), path) || path })}\n`);
    }
    if (run.violations.some((v) => v.enforced)) process.exitCode = 1;
  }
}

export default HeapstateReporter;
