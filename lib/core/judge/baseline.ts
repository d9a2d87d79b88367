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

let stored: Baseline | undefined;

const budgetKeys = ["rssBytes", "nativeHeapBytes", "nativeUnclassifiedBytes", "v8HeapBytes"] as const;

/** Stores the baseline (a reading of this process) with its budgets; used by setBaseline(). */
export function storeBaseline(snapshot: Snapshot, budgets: unknown, where: string): void {
  const o = is.optionsObject(`${where}: budgets`, budgets, budgetKeys);
  const checked: Baseline["budgets"] = {};
  for (const k of budgetKeys) if (o[k] !== undefined) checked[k] = is.byteSize(`${where}: budgets.${k}`, o[k]);
  stored = { snapshot, budgets: checked };
}

/** The baseline set by setBaseline(), or undefined. */
export function baseline(): Snapshot | undefined {
  return stored?.snapshot;
}

/** The baseline and its budgets, for the findings. */
export function currentBaseline(): Baseline | undefined {
  return stored;
}

/** Forgets the baseline. */
export function clearBaseline(): void {
  stored = undefined;
}
