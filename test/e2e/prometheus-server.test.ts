/**
 * A real Prometheus server (Debian's 2.42) scrapes /debug/memory with its own Accept header and no
 * `params`, with heapstate's alerting rules loaded: the target is up, the series exist with the
 * right types, the breakdown adds up in PromQL, the rules evaluate, and every query of the
 * Grafana dashboard runs. promtool checks the rules file.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { childEnv, dist, fixtures, root, scaled } from "../helpers";

const rules = join(root, "monitoring", "heapstate.rules.yml");
const dashboard = join(root, "monitoring", "heapstate-dashboard.json");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function started(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.stdout?.once("data", (d: Buffer) => resolve((JSON.parse(String(d).trim()) as { port: number }).port));
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the server exited (${code})`)));
  });
}

let dir: string;
let app: ChildProcess;
let prometheus: ChildProcess;
let api: string;
let target: string;
const logs: string[] = [];

async function query<T = unknown>(path: string): Promise<T> {
  const r = await fetch(`${api}${path}`);
  const body = (await r.json()) as { status: string; data: T; error?: string };
  if (body.status !== "success") throw new Error(`${path}: ${body.error}`);
  return body.data;
}

async function instant(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  return (
    await query<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
      `/api/v1/query?query=${encodeURIComponent(expr)}`,
    )
  ).result;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "heapstate-prometheus-"));
  app = spawn(process.execPath, [join(fixtures, "children", "handler-server.cjs")], {
    env: childEnv({ HEAPSTATE_TEST_DIST: dist }),
    stdio: ["ignore", "pipe", "inherit"],
  });
  target = `127.0.0.1:${await started(app)}`;
  writeFileSync(
    join(dir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "rule_files:",
      `  - ${rules}`,
      "scrape_configs:",
      "  - job_name: heapstate",
      "    metrics_path: /debug/memory",
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prometheus.stderr?.on("data", (d: Buffer) => logs.push(String(d)));
  // Up once a scrape has succeeded and its samples can be queried.
  await vi.waitFor(
    async () => {
      const targets = await query<{ activeTargets: Array<{ health: string; lastError: string }> }>("/api/v1/targets");
      expect(targets.activeTargets[0]?.health, targets.activeTargets[0]?.lastError).toBe("up");
      expect((await instant("heapstate_memory_rss_bytes")).length).toBe(1);
    },
    { timeout: scaled(60_000), interval: 250 },
  );
}, 90_000);

afterAll(() => {
  prometheus?.kill();
  app?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a Prometheus server scraping /debug/memory with no params", () => {
  it("negotiates OpenMetrics with it: the target is up with no error, and the scrape came back as OpenMetrics", async () => {
    const targets = await query<{ activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }>(
      "/api/v1/targets",
    );
    expect(targets.activeTargets).toHaveLength(1);
    expect(targets.activeTargets[0]?.scrapeUrl).toBe(`http://${target}/debug/memory`);
    expect(targets.activeTargets[0]?.lastError).toBe("");
    // What Prometheus asked for is what a scrape of this handler answers with OpenMetrics.
    const r = await fetch(`http://${target}/debug/memory`, {
      headers: {
        accept:
          "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      },
    });
    expect(r.headers.get("content-type")).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
  });

  it("the series exist with the types heapstate gives them", async () => {
    const metadata = await query<Record<string, Array<{ type: string; unit: string }>>>("/api/v1/metadata");
    expect(metadata.heapstate_memory_rss_bytes?.[0]?.type).toBe("gauge");
    expect(metadata.heapstate_memory_breakdown_bytes?.[0]?.type).toBe("gauge");
    expect(metadata.heapstate_finding?.[0]?.type).toBe("gauge");
    expect(metadata.heapstate_memory_rss_bytes?.[0]?.unit).toBe("bytes");
    const oom = metadata.heapstate_cgroup_oom_kills ?? metadata.heapstate_cgroup_oom_kills_total;
    if (oom) expect(oom[0]?.type).toBe("counter");
    expect((await instant("heapstate_finding")).length).toBeGreaterThanOrEqual(10);
  });

  it("in PromQL the parts add up to RSS, and the native heap's children to their part", async () => {
    const diff = await instant("sum(heapstate_memory_breakdown_bytes) - sum(heapstate_memory_rss_bytes)");
    expect(Number(diff[0]?.value[1])).toBe(0);
    const children = await instant(
      'sum(heapstate_memory_breakdown_children_bytes{heapstate_memory_parent="native_in_use"}) - sum(heapstate_memory_breakdown_bytes{heapstate_memory_type="native_in_use"})',
    );
    expect(Number(children[0]?.value[1])).toBe(0);
  });

  it("the alerting rules load and evaluate without error; promtool checks them", async () => {
    const r = spawnSync("promtool", ["check", "rules", rules], { encoding: "utf8", maxBuffer: 256 << 20 });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    await vi.waitFor(
      async () => {
        const data = await query<{
          groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }>;
        }>("/api/v1/rules");
        const all = data.groups.flatMap((g) => g.rules);
        expect(all.length).toBe(7);
        for (const rule of all) expect(rule.health, `${rule.name}: ${rule.lastError}`).toBe("ok");
      },
      { timeout: 20_000, interval: 250 },
    );
  });

  it("every query of the Grafana dashboard runs, and the core panels have data", async () => {
    const d = JSON.parse(readFileSync(dashboard, "utf8")) as {
      uid: string;
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    expect(d.uid).toBe("heapstate");
    for (const panel of d.panels) {
      for (const t of panel.targets) {
        const expr = t.expr
          .replace(/\$job/g, ".*")
          .replace(/\$instance/g, ".*")
          .replace(/\$__rate_interval/g, "1m");
        const result = await instant(expr);
        if (/RSS|native heap|Allocator/.test(panel.title))
          expect(result.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
      }
    }
  });
});
