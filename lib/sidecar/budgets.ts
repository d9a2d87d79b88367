/** Budgets: bytes as users write them, and the files whose growth passed them. */
import { formatBytes } from "../units";
import * as is from "../validate";
import type { Budgets, BudgetViolation, FileRecord, Growth } from "./types";

const MiB = 1024 * 1024;
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
