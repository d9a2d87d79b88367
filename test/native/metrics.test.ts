/** The exported metrics: Prometheus text (with and without prom-client), OpenTelemetry, memoryField, the sampler. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AggregationTemporality, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import client from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { FINDING_IDS } from "../../lib/findings";
import { collect, memoryField, startSampler } from "../../lib/index";
import { registerOtel } from "../../lib/otel";
import { prometheusText, registerPrometheus } from "../../lib/prometheus";
import { childEnv, dist, inBeforeAll, root } from "../helpers";
import { type ParsedFamily, parseExposition } from "../prometheus-parser";

function family(fs: ParsedFamily[], name: string): ParsedFamily {
  const f = fs.find((x) => x.name === name);
  expect(f, name).toBeDefined();
  return f as ParsedFamily;
}

function expectPartsAddUp(fs: ParsedFamily[]) {
  const rss = family(fs, "heapstate_rss_bytes").samples[0]?.value as number;
  const parts = family(fs, "heapstate_rss_breakdown_bytes").samples;
  expect(rss).toBeGreaterThan(0);
  expect(parts.map((p) => p.labels.part)).toContain("unattributed");
  expect(parts.reduce((sum, p) => sum + p.value, 0)).toBe(rss);
}

describe("prometheusText", () => {
  const text = inBeforeAll(() => prometheusText(collect()));
  const fs = () => parseExposition(text());

  it("passes a strict exposition parser; every family has HELP, and TYPE gauge (counter for the totals)", () => {
    expect(fs().length).toBeGreaterThanOrEqual(10);
    for (const f of fs()) {
      expect(f.help, f.name).toBeTruthy();
      expect(f.type, f.name).toBe(f.name.endsWith("_total") ? "counter" : "gauge");
      expect(f.name.startsWith("heapstate_")).toBe(true);
    }
  });

  it("the breakdown parts add up to the RSS gauge of the same reading", () => expectPartsAddUp(fs()));

  it("labels the allocator gauges and keeps one finding series per id", () => {
    expect(family(fs(), "heapstate_allocator_allocated_bytes").samples[0]?.labels).toEqual({
      allocator: "glibc",
      serves_malloc: "true",
    });
    expect(
      family(fs(), "heapstate_finding")
        .samples.map((s) => s.labels.id)
        .sort(),
    ).toEqual([...FINDING_IDS].sort());
  });

  it("every finding id findings.ts can emit is in FINDING_IDS", () => {
    const source = readFileSync(join(root, "lib", "findings.ts"), "utf8");
    const emitted = [...source.matchAll(/id: "([a-z0-9-]+)"/g)].map((m) => m[1]);
    expect(emitted.length).toBeGreaterThanOrEqual(9);
    for (const id of emitted) expect(FINDING_IDS).toContain(id);
  });

  it("the strict parser rejects broken text() (it can fail)", () => {
    expect(() => parseExposition("heapstate_x 1\n")).toThrow(/without HELP\/TYPE/);
    expect(() => parseExposition('# HELP a b\n# TYPE a gauge\na{x="1} 2\n')).toThrow();
    expect(() => parseExposition("# HELP a b\n# TYPE a gauge\na 1\na 2\n")).toThrow(/repeated/);
    expect(() => parseExposition("# HELP a b\n# TYPE a gauge\na one\n")).toThrow(/bad value/);
  });
});

describe("registerPrometheus on a prom-client registry", () => {
  it("one scrape parses strictly, adds up, and no name repeats prom-client's defaults", async () => {
    const registry = new client.Registry();
    registerPrometheus({ registry });
    const fs = parseExposition(await registry.metrics());
    expectPartsAddUp(fs);
    // Not measured, not printed: without a limit there is no limit sample (not 0).
    const limit = collect().cgroup?.limitBytes;
    expect(family(fs, "heapstate_cgroup_limit_bytes").samples.map((x) => x.value)).toEqual(
      limit === undefined ? [] : [limit],
    );
    expect(fs.map((f) => f.name).sort()).toEqual(
      parseExposition(prometheusText(collect()))
        .map((f) => f.name)
        .sort(),
    );
    const defaults = new client.Registry();
    client.collectDefaultMetrics({ register: defaults });
    // prom-client's own default output prints NaN as "Nan", which a strict parser refuses: only
    // its names are needed here.
    const defaultNames = [...(await defaults.metrics()).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    for (const f of fs) expect(defaultNames).not.toContain(f.name);
    expect(defaultNames).toContain("process_resident_memory_bytes");
  });
});

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

describe("registerOtel", () => {
  it("an in-memory reader collects the gauges; the breakdown adds up to the RSS gauge", async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const unregister = registerOtel(provider.getMeter("heapstate-test"));
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const byName = (n: string) => all.find((m) => m.descriptor.name === n);
    const rss = byName("heapstate.memory.rss")?.dataPoints[0]?.value as number;
    const parts = byName("heapstate.memory.breakdown")?.dataPoints ?? [];
    expect(byName("heapstate.memory.rss")?.descriptor.unit).toBe("By");
    expect(rss).toBeGreaterThan(0);
    expect(parts.map((p) => p.attributes["heapstate.part"])).toContain("v8-heap");
    expect(parts.reduce((sum, p) => sum + (p.value as number), 0)).toBe(rss);
    const allocated = byName("heapstate.allocator.allocated")?.dataPoints[0];
    expect(allocated?.attributes).toEqual({ "heapstate.allocator": "glibc", "heapstate.serves_malloc": "true" });
    expect(allocated?.value).toBeGreaterThan(0);
    unregister();
    await provider.shutdown();
  });
});

describe("memoryField", () => {
  it("prints one line that adds up, and is rate-limited", () => {
    const field = memoryField({ maxAgeMs: 60_000 });
    const line = String(field);
    expect(line).toMatch(/^rss [\d.]+ \w+ = v8 [\d.]+ \w+ \+ native [\d.]+ \w+ .*\+ unattributed -?[\d.]+ \w+/);
    expect(line).not.toContain("\n");
    const a = field.toJSON();
    const b = field.toJSON();
    expect(a.time).toBe(b.time);
    const parts = Object.entries(a).filter(([k]) => k !== "time" && k !== "rssBytes");
    expect(parts.reduce((sum, [, v]) => sum + (v as number), 0)).toBe(a.rssBytes);
  });
});

describe("startSampler", () => {
  it("keeps a ring of the last `size` samples and stops cleanly", () => {
    // A fake clock drives the timer: each tick is one reading, and nothing sleeps.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
    try {
      const sampler = startSampler({ intervalMs: 100, size: 3, tier: "fast" });
      expect(sampler.samples()).toHaveLength(1);
      vi.advanceTimersByTime(100);
      expect(sampler.samples()).toHaveLength(2);
      vi.advanceTimersByTime(400);
      const samples = sampler.samples();
      expect(samples).toHaveLength(3);
      expect(samples.map((s) => Date.parse(s.time))).toEqual([Date.now() - 200, Date.now() - 100, Date.now()]);
      for (const s of samples) {
        const sum = Object.values(s.parts).reduce((x, y) => x + y, 0) + (s.unattributedBytes ?? 0);
        expect(sum).toBe(s.rssBytes);
      }
      sampler.stop();
      expect(sampler.running).toBe(false);
      const last = sampler.samples().at(-1)?.time;
      vi.advanceTimersByTime(1000);
      expect(sampler.samples()).toHaveLength(3);
      expect(sampler.samples().at(-1)?.time).toBe(last);
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not keep a process alive", () => {
    const r = spawnSync(
      process.execPath,
      ["-e", `require(${JSON.stringify(dist)}).startSampler({ intervalMs: 100 }); console.log("started")`],
      {
        env: childEnv(),
        encoding: "utf8",
        timeout: 10_000,
      },
    );
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("started\n");
  });

  it("rejects bad options", () => {
    expect(() => startSampler({ intervalMs: 5 })).toThrow(/intervalMs must be a number from 100 to 2147483647/);
    expect(() => startSampler({ size: 0 })).toThrow(/size must be an integer from 1 to/);
  });
});
