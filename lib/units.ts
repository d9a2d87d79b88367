/** Text helpers of every face: human units and aligned rows. */

/** Human units: 1536 → "1.5 KiB". Undefined → "(unknown)", never 0. */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "(unknown)";
  const sign = n < 0 ? "-" : "";
  let v = Math.abs(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${sign}${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Aligned "label  value" rows. A loop, not Math.max(...): a million rows must not overflow the stack. */
export function rows(pairs: Array<[string, string]>, indent: string): string[] {
  let width = 0;
  for (const [k] of pairs) if (k.length > width) width = k.length;
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`.trimEnd());
}

/** lines.push(...more) without spreading: a call's arguments live on the stack. */
export function append(lines: string[], more: readonly string[]): void {
  for (const l of more) lines.push(l);
}
