/** The exported metrics: Prometheus text (with and without prom-client), OpenTelemetry, memoryField, the sampler. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import client from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { FINDING_IDS } from "../../lib/core/judge/findings";
import { registerOtel } from "../../lib/faces/metrics/otel";
import { prometheusText, registerPrometheus } from "../../lib/faces/metrics/prometheus";
import { METRICS, prometheusName } from "../../lib/faces/metrics/table";
import { collect, memoryField, snapshot, startSampler } from "../../lib/index";
import { childEnv, dist, inBeforeAll, root } from "../helpers";
import { type Family, promtoolCheck, pythonParse } from "../oracles";

function family(fs: Family[], name: string): Family {
  const f = fs.find((x) => x.name === name);
  expect(f, `${name} in ${fs.map((x) => x.name).join(", ")}`).toBeDefined();
  return f as Family;
}

function expectPartsAddUp(fs: Family[]) {
  const rss = family(fs, "heapstate_memory_rss_bytes").samples[0]?.value as number;
  const parts = family(fs, "heapstate_memory_breakdown_bytes").samples;
  expect(rss).toBeGreaterThan(0);
  expect(parts.map((p) => p.labels.heapstate_memory_type)).toContain("unattributed");
  expect(parts.reduce((sum, p) => sum + p.value, 0)).toBe(rss);
}

describe("prometheusText", () => {
  const text = inBeforeAll(() => prometheusText(collect()));
  const fs = () => pythonParse(text());

  it("promtool finds nothing to say, and Python's prometheus_client parses it", () => {
    expect(promtoolCheck(text())).toEqual({ status: 0, problems: "" });
    expect(fs().length).toBeGreaterThanOrEqual(15);
    for (const f of fs()) {
      expect(f.help, f.name).toBeTruthy();
      expect(f.name.startsWith("heapstate_")).toBe(true);
    }
    // The oracles can fail: a counter without _total and a repeated series are refused.
    expect(promtoolCheck("# HELP a_bytes b\n# TYPE a_bytes counter\na_bytes 1\n").status).not.toBe(0);
    expect(() => pythonParse('# HELP a b\n# TYPE a gauge\na{x="1} 2\n')).toThrow(/refused/);
  });

  it("counters are counters: the OOM kills, and the auto-trim's totals", () => {
    expect(family(fs(), "heapstate_cgroup_oom_kills").type).toBe("counter");
    expect(text()).toMatch(/^# TYPE heapstate_cgroup_oom_kills_total counter$/m);
    for (const f of fs())
      if (f.type === "counter") expect(f.samples.every((x) => x.name.endsWith("_total"))).toBe(true);
  });

  it("the breakdown parts add up to the RSS gauge of the same reading", () => expectPartsAddUp(fs()));

  it("the children of a part add up to it", () => {
    const parts = family(fs(), "heapstate_memory_breakdown_bytes").samples;
    const children = family(fs(), "heapstate_memory_breakdown_children_bytes").samples;
    const inUse = parts.find((p) => p.labels.heapstate_memory_type === "native_in_use")?.value;
    const under = children.filter((c) => c.labels.heapstate_memory_parent === "native_in_use");
    expect(under.map((c) => c.labels.heapstate_memory_type)).toContain("native_unclassified");
    expect(under.reduce((sum, c) => sum + c.value, 0)).toBe(inUse);
  });

  it("labels in one style: the allocator's, and one finding series per id, in snake_case", () => {
    expect(family(fs(), "heapstate_allocator_allocated_bytes").samples[0]?.labels).toEqual({
      heapstate_allocator_name: "glibc",
      heapstate_allocator_serves_malloc: "true",
    });
    const ids = family(fs(), "heapstate_finding").samples.map((s) => s.labels.heapstate_finding_id);
    expect(ids.sort()).toEqual(FINDING_IDS.map((id) => id.replace(/-/g, "_")).sort());
    for (const f of fs()) {
      for (const s of f.samples) {
        for (const [k, v] of Object.entries(s.labels)) {
          expect(k).toMatch(/^heapstate_[a-z0-9_]+$/);
          if (/_(type|parent|state|id|reason)$/.test(k)) expect(v, k).toMatch(/^[a-z0-9_]+$/);
        }
      }
    }
  });

  it("page states never overlap: no top_releasable, no jemalloc active or retained among them", () => {
    const states = family(fs(), "heapstate_allocator_pages_bytes").samples.map(
      (s) => s.labels.heapstate_allocator_page_state,
    );
    expect(states.length).toBeGreaterThan(0);
    for (const s of states) expect(["dirty", "muzzy", "released", "cached", "free"]).toContain(s);
    // glibc: dirty and released where they were measured, else free; never both.
    expect(states.includes("free") && states.includes("dirty")).toBe(false);
  });

  it("the answer names the one reading it comes from: its tier and where its RSS was read", () => {
    const fast = pythonParse(prometheusText(collect({ tier: "fast" })));
    expect(family(fast, "heapstate_reading").samples).toEqual([
      expect.objectContaining({
        labels: { heapstate_reading_tier: "fast", heapstate_memory_rss_source: "status" },
        value: 1,
      }),
    ]);
    // The standard reading above: smaps_rollup's Rss, the RSS the breakdown partitions.
    expect(family(fs(), "heapstate_reading").samples[0]?.labels).toEqual({
      heapstate_reading_tier: "standard",
      heapstate_memory_rss_source: "smaps_rollup",
    });
  });

  it("V8's external and ArrayBuffer bytes are exported", () => {
    expect(family(fs(), "heapstate_v8_external_bytes").samples[0]?.value).toBeGreaterThan(0);
    expect(family(fs(), "heapstate_v8_array_buffers_bytes").samples[0]?.value).toBeGreaterThanOrEqual(0);
  });

  it("OpenMetrics 1.0: Python's OpenMetrics parser takes it (# EOF, counters' families, units)", () => {
    const om = prometheusText(collect(), { format: "openmetrics" });
    expect(om.endsWith("# EOF\n")).toBe(true);
    const parsed = pythonParse(om, "openmetrics");
    expect(family(parsed, "heapstate_memory_rss_bytes").unit).toBe("bytes");
    expect(family(parsed, "heapstate_autotrim_trims").type).toBe("counter");
    expect(() => pythonParse(om.replace("# EOF\n", ""), "openmetrics")).toThrow(/refused/);
  });

  it("static labels are added to every sample; bad ones are INVALID_OPTION", () => {
    const labelled = pythonParse(prometheusText(collect(), { labels: { service: "api" } }));
    for (const f of labelled) for (const s of f.samples) expect(s.labels.service).toBe("api");
    for (const bad of [{ heapstate_x: "1" }, { "bad-name": "1" }, { ok: 1 }, []]) {
      expect(() => prometheusText(collect(), { labels: bad as never })).toThrow(
        expect.objectContaining({ code: "INVALID_OPTION" }),
      );
    }
  });

  it("docs/production.md lists every family by its Prometheus name", () => {
    const doc = readFileSync(join(root, "docs", "production.md"), "utf8");
    // `a_{b,c}_d` in a table cell stands for a_b_d and a_c_d.
    const expanded = doc.replace(/(\w*)\{([\w,]+)\}(\w*)/g, (_, pre: string, list: string, post: string) =>
      list
        .split(",")
        .map((x) => `${pre}${x}${post}`)
        .join(" "),
    );
    for (const spec of METRICS) expect(expanded, prometheusName(spec)).toContain(prometheusName(spec));
  });

  it("every finding id findings.ts can emit is in FINDING_IDS", () => {
    const source = readFileSync(join(root, "lib", "core", "judge", "findings.ts"), "utf8");
    const emitted = [...source.matchAll(/id: "([a-z0-9-]+)"/g)].map((m) => m[1]);
    expect(emitted.length).toBeGreaterThanOrEqual(9);
    for (const id of emitted) expect(FINDING_IDS).toContain(id);
  });
});

describe("registerPrometheus on a prom-client registry", () => {
  it("one scrape passes promtool, adds up, and no name repeats prom-client's defaults", async () => {
    const registry = new client.Registry();
    registerPrometheus({ registry });
    const text = await registry.metrics();
    expect(promtoolCheck(text)).toEqual({ status: 0, problems: "" });
    const fs = pythonParse(text);
    expectPartsAddUp(fs);
    // Not measured, not printed: without a limit there is no limit sample (not 0).
    const limit = collect().cgroup?.limitBytes;
    expect(family(fs, "heapstate_cgroup_limit_bytes").samples.map((x) => x.value)).toEqual(
      limit === undefined ? [] : [limit],
    );
    expect(fs.map((f) => f.name).sort()).toEqual(
      pythonParse(prometheusText(collect()))
        .map((f) => f.name)
        .sort(),
    );
    const defaults = new client.Registry();
    client.collectDefaultMetrics({ register: defaults });
    const defaultNames = [...(await defaults.metrics()).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    for (const f of fs) expect(defaultNames).not.toContain(f.name);
    expect(defaultNames).toContain("process_resident_memory_bytes");
  });

  it("a cluster's AggregatorRegistry sums per-process figures and keeps one cgroup-wide figure", async () => {
    const registry = new client.Registry();
    const metrics = registerPrometheus({ registry });
    const usage = metrics.find((m) => m.name === "heapstate_cgroup_usage_bytes");
    const rss = metrics.find((m) => m.name === "heapstate_memory_rss_bytes");
    expect(usage?.aggregator).toBe("max");
    expect(rss?.aggregator).toBe("sum");
    const worker = await registry.getMetricsAsJSON();
    const merged = client.AggregatorRegistry.aggregate([worker, worker]);
    const one = (name: string) => worker.find((m) => m.name === name)?.values[0]?.value as number;
    const both = async (name: string) =>
      (await merged.getMetricsAsJSON()).find((m) => m.name === name)?.values[0]?.value as number;
    if (collect().cgroup) expect(await both("heapstate_cgroup_usage_bytes")).toBe(one("heapstate_cgroup_usage_bytes"));
    expect(await both("heapstate_memory_rss_bytes")).toBe(2 * one("heapstate_memory_rss_bytes"));
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
  it("instruments as the semantic conventions shape them; the breakdown adds up to the RSS", async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const unregister = registerOtel(provider);
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === "heapstate");
    expect(scope?.scope.version).toBe(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version);
    const all = scope?.metrics ?? [];
    const byName = (n: string) => all.find((m) => m.descriptor.name === n);
    const rss = byName("heapstate.memory.rss");
    expect(rss?.descriptor.unit).toBe("By");
    // Amounts that add up: up-down counters (a non-monotonic sum), as process.memory.usage; counts
    // that only grow: counters (a monotonic sum); 0/1 and costs: gauges.
    const kind = (n: string) => {
      const m = byName(n) as { dataPointType?: DataPointType; isMonotonic?: boolean } | undefined;
      return m === undefined
        ? "absent"
        : m.dataPointType === DataPointType.GAUGE
          ? "gauge"
          : m.isMonotonic
            ? "counter"
            : "updowncounter";
    };
    expect(kind("heapstate.memory.rss")).toBe("updowncounter");
    expect(kind("heapstate.memory.breakdown")).toBe("updowncounter");
    expect(kind("heapstate.finding")).toBe("gauge");
    expect(kind("heapstate.snapshot.cost")).toBe("gauge");
    expect(byName("heapstate.finding")?.descriptor.unit).toBe("{finding}");
    const parts = byName("heapstate.memory.breakdown")?.dataPoints ?? [];
    expect(parts.map((p) => p.attributes["heapstate.memory.type"])).toContain("v8_heap");
    expect(parts.reduce((sum, p) => sum + (p.value as number), 0)).toBe(rss?.dataPoints[0]?.value);
    const allocated = byName("heapstate.allocator.allocated")?.dataPoints[0];
    expect(allocated?.attributes).toEqual({
      "heapstate.allocator.name": "glibc",
      "heapstate.allocator.serves_malloc": true,
    });
    unregister();
    await provider.shutdown();
  });

  it("through the OpenTelemetry Prometheus exporter, the names and labels are the native Prometheus ones", async () => {
    const exporter = new PrometheusExporter({
      preventServerStart: true,
      withoutScopeInfo: true,
      withoutTargetInfo: true,
    });
    const provider = new MeterProvider({ readers: [exporter] });
    const unregister = registerOtel(provider);
    const server = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const text = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).text();
      // The exporter writes the unit on a # UNIT line and leaves the suffix to the reader; the
      // standard translation appends it (By → _bytes, s → _seconds, before a counter's _total).
      const exported = new Map<string, Set<string>>();
      const units = new Map([...text.matchAll(/^# UNIT (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
      for (const m of text.matchAll(/^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? /gm)) {
        const raw = m[1] as string;
        const unit = units.get(raw);
        const suffix = unit === "By" ? "_bytes" : unit === "s" ? "_seconds" : "";
        const name = raw.endsWith("_total") ? `${raw.slice(0, -6)}${suffix}_total` : `${raw}${suffix}`;
        const labels = exported.get(name) ?? new Set<string>();
        for (const l of (m[2] ?? "").matchAll(/(\w+)="/g)) labels.add(l[1] as string);
        exported.set(name, labels);
      }
      const native = new Map<string, Set<string>>();
      // The same kind of reading as the exporter's (snapshot(), the fast tier).
      for (const f of pythonParse(prometheusText(snapshot({ maxAgeMs: 1000 })))) {
        for (const sample of f.samples) {
          const labels = native.get(sample.name) ?? new Set<string>();
          for (const l of Object.keys(sample.labels)) labels.add(l);
          native.set(sample.name, labels);
        }
      }
      expect([...exported.keys()].sort()).toEqual([...native.keys()].sort());
      for (const [name, labels] of native)
        expect([...(exported.get(name) ?? [])].sort(), name).toEqual([...labels].sort());
    } finally {
      server.close();
      unregister();
      await provider.shutdown();
    }
  });

  it("without a provider it uses the global one; a bad one is INVALID_OPTION", () => {
    const stop = registerOtel();
    stop();
    expect(() => registerOtel(42 as never)).toThrow(expect.objectContaining({ code: "INVALID_OPTION" }));
  });

  it("takes the options form { meterProvider, maxAgeMs } (the README's), and says which mix it refuses", async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const unregister = registerOtel({ meterProvider: provider, maxAgeMs: 500 });
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);
    const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === "heapstate");
    expect(scope?.metrics.map((m) => m.descriptor.name)).toContain("heapstate.memory.rss");
    unregister();
    await provider.shutdown();
    const both = () => registerOtel({ meterProvider: provider, meter: provider.getMeter("x") });
    expect(both).toThrow(expect.objectContaining({ code: "INVALID_OPTION" }));
    expect(() => registerOtel({ meterProvider: provider } as never, { maxAgeMs: 1 })).toThrow(
      expect.objectContaining({ code: "INVALID_OPTION" }),
    );
    expect(() => registerOtel({ maxAgeMs: -1 })).toThrow(expect.objectContaining({ code: "INVALID_OPTION" }));
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
        maxBuffer: 256 << 20,
        timeout: 10_000,
      },
    );
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("started\n");
  });

  it("a tier that costs more than 1% of the interval is read again after 2, 4, 8 … intervals of the fast tier, not every other one", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
    try {
      // 100 ms: a 1 ms budget, which a deep reading (smaps, glibc's walk) always passes.
      const sampler = startSampler({ intervalMs: 100, size: 100, tier: "deep" });
      vi.advanceTimersByTime(100 * 39);
      const tiers = sampler.samples().map((s) => s.tier);
      sampler.stop();
      const deep = sampler.samples().filter((s) => s.tier === "deep");
      for (const s of deep)
        expect(s.costMicros, "the precondition: each deep reading over budget").toBeGreaterThan(1000);
      expect(tiers).toHaveLength(40);
      const at = tiers.flatMap((t, i) => (t === "deep" ? [i] : []));
      expect(at).toEqual([0, 3, 8, 17, 34]);
      expect(tiers.filter((t) => t !== "deep" && t !== "fast")).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("rejects bad options", () => {
    expect(() => startSampler({ intervalMs: 5 })).toThrow(/intervalMs must be a number from 100 to 2147483647/);
    expect(() => startSampler({ size: 0 })).toThrow(/size must be an integer from 1 to/);
  });
});
