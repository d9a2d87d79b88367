/**
 * Reporters registered inside worker threads reach the main thread's readings (any Node version:
 * a BroadcastChannel inside the process): each reading asks, and the next one shows the answers
 * with their time; an exited worker drops out. A worker's ArrayBuffers are not the main isolate's,
 * so they are malloc memory in the main thread's reading.
 */
import { describe, expect, it } from "vitest";
import { inBeforeAll, MiB, runChild } from "../helpers";

interface Picked {
  reported: Array<{ label: string; bytes: number; source: string }>;
  unattributedBytes: number;
  rssBytes: number;
  warnings: string[];
  childrenAddUp: boolean;
}

describe("a reporter registered in a worker thread", () => {
  const out = inBeforeAll(() => runChild<{ first: Picked; second: Picked; after: Picked }>("worker-reporters.cjs", []));

  it("is in the main thread's next reading, named with its worker, with its time, as malloc memory", () => {
    const { first, second } = out();
    // The first reading asks; the answer arrives after it.
    expect(first.reported).toEqual([]);
    expect(second.reported).toHaveLength(1);
    const r = second.reported[0] as Picked["reported"][number];
    expect(r.label).toMatch(/^image-cache \(worker \d+\)$/);
    expect(r.bytes).toBe(32 * MiB);
    expect(r.source).toMatch(/^reporter "image-cache \(worker \d+\)": what it holds \(as of \d{4}-\d\d-\d\dT/);
    // Not a share of the main isolate's ArrayBuffers: no CHILDREN_EXCEED_PART, and the children add up.
    expect(second.warnings).not.toContain("CHILDREN_EXCEED_PART");
    expect(second.childrenAddUp).toBe(true);
  });

  it("drops out once its worker has exited", () => {
    expect(out().after.reported).toEqual([]);
  });
});
