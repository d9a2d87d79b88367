/** Budgets: bytes as users write them, and the files whose growth passed them. */
import { formatBytes, is } from "../../core";
import type { Budgets, BudgetViolation, FileRecord, Growth } from "./types";

/** 52428800, "50MiB", "50 MB" → bytes. */
export function parseBytes(value: unknown, what: string): number {
  return is.byteSize(what, value);
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
