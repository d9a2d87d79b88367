import { expect } from "vitest";

/**
 * Every number in a snapshot is finite; every byte figure is non-negative except the signed
 * remainder and the chain's ratios. (A made-up 0 cannot be told from a real one here; the
 * fixture tests check that absent sources stay absent.)
 */
export function expectHonestNumbers(value: unknown, path = "snapshot"): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      expectHonestNumbers(v, `${path}[${i}]`);
    });
    return;
  }
  if (value === null || typeof value !== "object") {
    if (typeof value === "number") expect(Number.isFinite(value), path).toBe(true);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const p = `${path}.${k}`;
    if (typeof v === "number") {
      expect(Number.isFinite(v), p).toBe(true);
      if (k.endsWith("Bytes") && k !== "unattributedBytes") expect(v, p).toBeGreaterThanOrEqual(0);
    } else {
      expectHonestNumbers(v, p);
    }
  }
}
