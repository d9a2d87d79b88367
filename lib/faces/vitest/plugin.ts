/**
 * heapstate(): the Vitest plugin (Vitest 3.1 and later, through its configureVitest hook) that sets
 * up the heap-state sidecars in one line of config: it adds the setup file to each project, the
 * reporter to the run (once), and --expose-gc to the forks pool's execArgv, so the full
 * collections before each reading need no V8 flag flipped at run time.
 * @example
 * // vitest.config.mjs
 * import { heapstate } from "heapstate/vitest";
 * export default { plugins: [heapstate({ budgets: { nativeHeapBytes: "50MiB" } })] };
 */
import { join } from "node:path";
import { is, TIERS, type Tier } from "../../core";
import { HeapstateReporter, type HeapstateReporterOptions } from "./reporter";

export interface HeapstatePluginOptions extends HeapstateReporterOptions {
  /** What each reading reads (default "standard"). */
  tier?: Tier;
  /** A full GC before each reading (default true). */
  gc?: boolean;
}

/** The parts of Vitest's configureVitest context used here (3.1 to 5). */
interface Context {
  vitest: {
    config: {
      reporters: unknown[];
      pool?: string;
      poolOptions?: Record<string, { execArgv?: string[] } | undefined>;
    };
  };
  project: {
    config: {
      setupFiles: string[];
      pool?: string;
      execArgv?: string[];
      env?: Record<string, string | undefined>;
    };
  };
}

const FORKS = new Set(["forks", "vmForks"]);

export function heapstate(options?: HeapstatePluginOptions): { name: string; configureVitest(context: Context): void } {
  const where = "heapstate() Vitest plugin options";
  const {
    tier: tierOption,
    gc: gcOption,
    ...reporterOptions
  } = is.optionsObject(where, options, ["tier", "gc", "outputFile", "budgets", "baseline", "top", "print", "write"]);
  const tier = is.oneOf(where, "tier", tierOption, "standard", TIERS);
  const gc = is.bool(where, "gc", gcOption, true);
  // Checked now: a misspelt option fails the config, not the run's end.
  const reporter = new HeapstateReporter(reporterOptions as HeapstateReporterOptions);
  // The setup file next to this one, by its absolute path: it loads wherever heapstate lives
  // (a copy in node_modules, a link, a workspace).
  const setup = join(__dirname, "setup.mjs");
  return {
    name: "heapstate",
    configureVitest({ vitest, project }) {
      const files = project.config.setupFiles;
      if (!files.includes(setup)) files.push(setup);
      project.config.env = { ...project.config.env, HEAPSTATE_VITEST_TIER: tier, HEAPSTATE_VITEST_GC: gc ? "1" : "0" };
      if (!vitest.config.reporters.includes(reporter)) vitest.config.reporters.push(reporter);
      const pool = project.config.pool ?? vitest.config.pool ?? "forks";
      if (gc && FORKS.has(pool)) {
        if (Array.isArray(project.config.execArgv)) {
          // Vitest 4 and later: one execArgv for the project's workers.
          if (!project.config.execArgv.includes("--expose-gc")) project.config.execArgv.push("--expose-gc");
        } else {
          // Vitest 3: per pool.
          vitest.config.poolOptions ??= {};
          const p = vitest.config.poolOptions[pool] ?? {};
          p.execArgv = [...(p.execArgv ?? []).filter((a) => a !== "--expose-gc"), "--expose-gc"];
          vitest.config.poolOptions[pool] = p;
        }
      }
    },
  };
}
