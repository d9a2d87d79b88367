/** The printed summary of a run. */
import { append, formatBytes, rows, visibleCopy } from "../../core";
import type { FileRecord, Growth, SidecarRun } from "./types";

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
  given: SidecarRun,
  options: { top?: number | undefined; path?: string | undefined } = {},
): string {
  // File names and the baseline's records come from the file system and a saved file: escaped.
  const run = visibleCopy(given);
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
