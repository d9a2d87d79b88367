/**
 * A baseline in production, as Java's Native Memory Tracking keeps one: a reading set aside (at
 * start-up, after warm-up) that later readings are compared with, by diff(baseline(), collect()),
 * and optional budgets for growth over it that every later reading of this process checks
 * (finding baseline-budget-exceeded).
 */

import * as is from "../base/validate";
import type { Snapshot } from "../model/types";

/** Growth over the baseline that is allowed, per figure (bytes, or strings such as "100MiB"). */
export interface BaselineBudgets {
  rssBytes?: number | string;
  /** The serving allocator's allocated bytes (mimalloc: committed). */
  nativeHeapBytes?: number | string;
  /** The native heap no one claims (native-unclassified). */
  nativeUnclassifiedBytes?: number | string;
  v8HeapBytes?: number | string;
}

export interface Baseline {
  snapshot: Snapshot;
  budgets: Partial<Record<keyof BaselineBudgets, number>>;
}

const budgetKeys = ["rssBytes", "nativeHeapBytes", "nativeUnclassifiedBytes", "v8HeapBytes"] as const;

/** One process's baseline and its budgets (each {@link HeapProcess} has its own). */
export class BaselineStore {
  private stored: Baseline | undefined;

  /** Stores the baseline (a reading of this process) with its budgets, checked; used by setBaseline(). */
  store(snapshot: Snapshot, budgets: unknown, where: string): void {
    const o = is.optionsObject(`${where}: budgets`, budgets, budgetKeys);
    const checked: Baseline["budgets"] = {};
    for (const k of budgetKeys) if (o[k] !== undefined) checked[k] = is.byteSize(`${where}: budgets.${k}`, o[k]);
    this.stored = { snapshot, budgets: checked };
  }

  /** The baseline and its budgets, for the findings; undefined when none was set. */
  current(): Baseline | undefined {
    return this.stored;
  }

  /** Forgets the baseline. */
  clear(): void {
    this.stored = undefined;
  }
}
