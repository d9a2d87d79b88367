/**
 * One set of key figures per reading: every face shows the core's `keyFigures` of the same reading
 * (the sampler's row, which the page draws; the sidecar's record; the watch line; the log field;
 * the agent's row; the metrics), under glibc, jemalloc and mimalloc (whose native heap is its
 * committed bytes, labelled so everywhere).
 */
import { describe, expect, it } from "vitest";
import type { KeyFigures } from "../../lib/core/model/figures";
import { inBeforeAll, type PreloadName, printerAddon, requireLib, runChild } from "../helpers";

interface Out {
  key: KeyFigures;
  sample: Record<string, unknown>;
  sidecar: Record<string, unknown>;
  watch: Array<[string, number | null]>;
  log: Record<string, unknown>;
  agent: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

const cases: Array<[string, PreloadName | undefined]> = [
  ["glibc", undefined],
  ["jemalloc", "jemalloc"],
  ["mimalloc", "mimalloc"],
];

describe.each(cases)("key figures under %s", (name, preload) => {
  const out = inBeforeAll(() =>
    runChild<Out>("key-figures.cjs", ["standard"], {
      HEAPSTATE_TEST_PRINTER: printerAddon,
      ...(preload ? { LD_PRELOAD: requireLib(preload) } : {}),
    }),
  );

  it("the reading measured every key figure, and the native heap is named by its counter", () => {
    const k = out().key;
    expect(k.nativeHeap?.allocator).toBe(name);
    expect(k.nativeHeap?.counter).toBe(name === "mimalloc" ? "committed" : "allocated");
    for (const key of [
      "rssBytes",
      "unattributedBytes",
      "v8HeapUsedBytes",
      "v8ExternalBytes",
      "arrayBuffersBytes",
      "peakRssBytes",
    ] as const)
      expect(k[key], key).toEqual(expect.any(Number));
    expect(k.peakSince).toEqual(expect.any(String));
  });

  it("the sampler's row (the page's data) and the sidecar's record are the key figures", () => {
    const { key: k, sample, sidecar } = out();
    expect(sample).toMatchObject({
      time: k.time,
      tier: k.tier,
      rssBytes: k.rssBytes,
      unattributedBytes: k.unattributedBytes,
      peakRssBytes: k.peakRssBytes,
      [k.nativeHeap?.counter === "committed" ? "committedBytes" : "allocatedBytes"]: k.nativeHeap?.bytes,
    });
    expect(sample.nativeUnclassifiedBytes).toBe(k.nativeUnclassifiedBytes);
    expect(sidecar).toEqual({
      time: k.time,
      allocator: name,
      rssBytes: k.rssBytes,
      nativeHeapBytes: k.nativeHeap?.bytes,
      nativeHeapSource: `${name} ${k.nativeHeap?.counter}`,
      v8HeapUsedBytes: k.v8HeapUsedBytes,
      v8ExternalBytes: k.v8ExternalBytes,
      arrayBuffersBytes: k.arrayBuffersBytes,
      unattributedBytes: k.unattributedBytes,
      peakRssBytes: k.peakRssBytes,
    });
  });

  it("the watch line, the log field and the agent's row are the key figures", () => {
    const { key: k, watch, log, agent } = out();
    expect(watch).toEqual([
      ["rss", k.rssBytes],
      [`heap ${k.nativeHeap?.counter}`, k.nativeHeap?.bytes],
      ["v8 used", k.v8HeapUsedBytes],
      ["unattributed", k.unattributedBytes],
    ]);
    expect(log).toMatchObject({ time: k.time, rssBytes: k.rssBytes, unattributed: k.unattributedBytes });
    expect(agent).toMatchObject({
      allocator: name,
      nativeHeapBytes: k.nativeHeap?.bytes,
      nativeHeapCounter: k.nativeHeap?.counter,
    });
  });

  it("the metrics are the key figures", () => {
    const { key: k, metrics } = out();
    expect(metrics).toEqual({
      rss: [{ attributes: {}, value: k.rssBytes }],
      nativeHeap: [
        {
          attributes: { "heapstate.allocator.name": name, "heapstate.native_heap.counter": k.nativeHeap?.counter },
          value: k.nativeHeap?.bytes,
        },
      ],
      peak: [{ attributes: {}, value: k.peakRssBytes }],
      external: [{ attributes: {}, value: k.v8ExternalBytes }],
      arrayBuffers: [{ attributes: {}, value: k.arrayBuffersBytes }],
      unattributed: { attributes: { "heapstate.memory.type": "unattributed" }, value: k.unattributedBytes },
    });
  });
});
