/**
 * The /debug/memory page in a real headless Chromium (Debian's, driven by playwright-core): the
 * chart fills with samples on a time axis, the values under the pointer are the sample's, two
 * clicked moments are compared, a finding raised and cleared while the page watches is shown with
 * its times, nothing is logged as an error, and no request leaves the loopback address. The
 * figures are checked against the history the handler serves. A screenshot is kept in .artifacts/.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { clearBaseline, createHandler, type Sample, setBaseline, startSampler } from "../../lib/index";
import { announced, childEnv, dist, fixtures, requireLib, root } from "../helpers";

const executablePath = "/usr/bin/chromium";

/** Bytes as the page should print them, written here from the sample's raw figure. */
function human(n: number): string {
  const names = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < names.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${names[i]}`;
}

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
let server: Server | undefined;
afterAll(() => server?.close());

describe("the HTML page in headless Chromium", () => {
  it("draws the breakdown over time from at least two samples, with no console error and no outside request", async () => {
    expect(existsSync(executablePath), `${executablePath}: apt-get install chromium`).toBe(true);
    // One tier throughout: a finding's episode is then cleared by the first sample without it (a
    // sampler that falls back between tiers clears only with a reading of the tier that raised it).
    const sampler = startSampler({ intervalMs: 300, size: 100, tier: "fast" });
    // Something to see: memory that grows while the page watches.
    const keep: Buffer[] = [];
    const grow = setInterval(() => keep.push(Buffer.allocUnsafe(4 << 20).fill(1)), 200);
    server = createServer(createHandler({ sampler }));
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await chromium.launch({
      executablePath,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1024, height: 760 } });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("request", (r) => requests.push(r.url()));
      // A finding raised and cleared while the page watches: a baseline whose RSS budget the
      // growth exceeds, then removed.
      const raised = (x: Sample) => (x.findings ?? []).some((f) => f.id === "baseline-budget-exceeded");
      setBaseline({ budgets: { rssBytes: "8 MiB" } });
      await page.goto(`${origin}/debug/memory?format=html`);
      await until("the budget finding", () => sampler.samples().some(raised));
      clearBaseline();
      await until("the finding to clear", () => {
        const all = sampler.samples();
        return (
          all.length > 0 && raised(all[all.length - 2] ?? (all[0] as Sample)) && !raised(all[all.length - 1] as Sample)
        );
      });
      await page.waitForFunction(() => Number(document.getElementById("chart")?.dataset.samples) >= 4, undefined, {
        timeout: 20_000,
      });
      const samples = Number(await page.locator("#chart").getAttribute("data-samples"));
      expect(samples).toBeGreaterThanOrEqual(2);
      expect(await page.locator("#legend").textContent()).toMatch(/V8 heap .*native in use .*unattributed .*RSS/);
      expect(await page.locator("#chain").textContent()).toMatch(/^allocated [\d.]+ \w+ → rss/);
      expect(await page.locator("#summary").textContent()).toMatch(/glibc 2\.\d+ · RSS [\d.]+ \w+ · \d+ samples/);
      expect(await page.locator("#error").textContent()).toBe("");
      // The tree of the breakdown: each part's children indented under it. V8's spaces are always
      // under v8-heap; who owns the native heap is under native-in-use when glibc's figures are
      // fresh (a repeated reader inside the walk's back-off reuses them, and then has no children).
      const rows = await page
        .locator("#parts tr")
        .evaluateAll((trs) => trs.map((tr) => [tr.className, tr.querySelector("td")?.textContent ?? ""]));
      const childrenOf = (name: string) => {
        const at = rows.findIndex(([, n]) => n === name);
        expect(at, JSON.stringify(rows)).toBeGreaterThanOrEqual(0);
        const end = rows.slice(at + 1).findIndex(([cls]) => cls !== "child");
        return rows.slice(at + 1, end < 0 ? undefined : at + 1 + end).map(([, n]) => n);
      };
      const spaces = childrenOf("v8-heap");
      expect(spaces.length, JSON.stringify(rows)).toBeGreaterThanOrEqual(3);
      for (const n of spaces) expect(n).toMatch(/^v8-space \w+/);
      const owners = childrenOf("native-in-use");
      if (rows.some(([, n]) => n === "native-unclassified")) expect(owners).toContain("native-unclassified");
      for (const n of owners) expect(n).toMatch(/^native-(v8|array-buffers|reported|unclassified)/);
      // No child row stands at the top: every "child" row follows its part or a sibling.
      expect(rows[0]?.[0]).not.toBe("child");
      // The findings' history: the episode's times are those of the samples where it began and ended.
      await page.waitForSelector('#fhist tr[data-id="baseline-budget-exceeded"][data-until]', { timeout: 20_000 });
      const episode = await page
        .locator('#fhist tr[data-id="baseline-budget-exceeded"][data-until]')
        .first()
        .evaluate((tr: HTMLElement) => ({
          since: tr.dataset.since ?? "",
          until: tr.dataset.until ?? "",
          text: tr.textContent ?? "",
        }));
      const held = sampler.samples();
      const start = held.findIndex((x) => x.time === episode.since);
      const end = held.findIndex((x) => x.time === episode.until);
      expect(start, JSON.stringify(episode)).toBeGreaterThan(0);
      expect(end).toBeGreaterThan(start);
      expect(raised(held[start - 1] as Sample)).toBe(false);
      for (const x of held.slice(start, end)) expect(raised(x)).toBe(true);
      expect(raised(held[end] as Sample)).toBe(false);
      expect(episode.text).toMatch(/warn.*from \d\d:\d\d:\d\d\.\d.*cleared \d\d:\d\d:\d\d\.\d/);

      // The values under the pointer are those of the sample nearest to it.
      const chart = page.locator("#chart");
      const bounds = await chart.boundingBox();
      if (!bounds) throw new Error("the chart has no box");
      const at = (f: number) => ({ x: bounds.x + bounds.width * f, y: bounds.y + bounds.height / 2 });
      const hoverAt = async (f: number) => {
        await page.mouse.move(at(f).x, at(f).y);
        await page.waitForSelector("#tip:not([hidden])");
        return page.locator("#tip").evaluate((t: HTMLElement) => ({ time: t.dataset.time ?? "", text: t.innerText }));
      };
      const left = await hoverAt(0.1);
      const right = await hoverAt(0.97);
      expect(Date.parse(right.time)).toBeGreaterThan(Date.parse(left.time));
      for (const tip of [left, right]) {
        const sample = sampler.samples().find((x) => x.time === tip.time);
        expect(sample, tip.time).toBeDefined();
        expect(tip.text).toMatch(new RegExp(`RSS\\s+${human(sample?.rssBytes ?? -1).replace(".", "\\.")}`));
        expect(tip.text).toContain(`native in use`);
        expect(tip.text).toMatch(/findings: /);
      }

      // Two moments picked by clicking: their difference, as the core computes it.
      await page.mouse.click(at(0.1).x, at(0.1).y);
      await page.mouse.click(at(0.97).x, at(0.97).y);
      await page.waitForSelector("#compare[data-to]");
      const compared = await page.locator("#compare").evaluate((c: HTMLElement) => ({ ...c.dataset }));
      const [a, b] = [compared.from, compared.to].map((t) => sampler.samples().find((x) => x.time === t));
      if (!a || !b) throw new Error(`picked samples not in the history: ${JSON.stringify(compared)}`);
      expect(Date.parse(b.time)).toBeGreaterThan(Date.parse(a.time));
      const rssRow = await page.locator('#diff tr[data-path="rssBytes"] td').allTextContents();
      const grew = (b.rssBytes ?? 0) - (a.rssBytes ?? 0);
      expect(rssRow).toEqual([
        "rssBytes",
        human(a.rssBytes ?? -1),
        human(b.rssBytes ?? -1),
        `${grew > 0 ? "+" : grew < 0 ? "−" : "±"}${human(Math.abs(grew))}`,
      ]);
      // Both read in the same tier: every part is compared (readings of different tiers compare
      // only their totals, and say so: test/unit/history.test.ts).
      expect(b.tier).toBe(a.tier);
      expect(await page.locator("#diff tr[data-path^='parts.']").count()).toBeGreaterThan(2);
      expect(await page.locator("#compare-notes").textContent()).not.toMatch(/different tiers/);

      // Pixels were drawn: the chart's centre column is not blank.
      const painted = await page.evaluate(() => {
        const c = document.getElementById("chart") as HTMLCanvasElement;
        const data = c.getContext("2d")?.getImageData(c.width - 20, 0, 1, c.height).data ?? [];
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) n++;
        return n;
      });
      expect(painted).toBeGreaterThan(20);
      mkdirSync(join(root, ".artifacts"), { recursive: true });
      await page.screenshot({ path: join(root, ".artifacts", "debug-memory.png"), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests.length).toBeGreaterThanOrEqual(3);
      for (const url of requests) expect(url.startsWith(`${origin}/`), url).toBe(true);
    } finally {
      await browser.close();
      clearInterval(grow);
      sampler.stop();
    }
  }, 60_000);

  it("reads a service's native allocation sites on request, and says why where there are none", async () => {
    // A service under jemalloc with its sampled profile on.
    const child = spawn(process.execPath, [join(fixtures, "children", "handler-server.cjs")], {
      env: childEnv({
        HEAPSTATE_TEST_DIST: dist,
        LD_PRELOAD: requireLib("jemalloc"),
        MALLOC_CONF: "prof:true,lg_prof_sample:19",
      }),
      stdio: ["ignore", "pipe", "inherit"],
    });
    // And the same service under glibc (a child too: a deep reading of this test process, which
    // has run many test files, is not what is tested here).
    const plain = spawn(process.execPath, [join(fixtures, "children", "handler-server.cjs")], {
      env: childEnv({ HEAPSTATE_TEST_DIST: dist }),
      stdio: ["ignore", "pipe", "inherit"],
    });
    const browser = await chromium.launch({
      executablePath,
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
      const { port } = await announced<{ port: number }>(child, "port");
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${port}/debug/memory?format=html`);
      await page.click("#sites-read");
      await page.waitForSelector("#sites tr[data-symbol]", { timeout: 30_000 });
      expect(await page.locator("#sites-note").textContent()).toMatch(
        /^jemalloc prof\.dump, a sample per 512\.0 KiB on average: [\d.]+ \w+ live in \d+ samples, at /,
      );
      const rows = await page
        .locator("#sites tr[data-symbol]")
        .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td"), (td) => td.textContent ?? "")));
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThanOrEqual(10);
      for (const r of rows) {
        expect(r).toHaveLength(5);
        expect(r[0]).toMatch(/^[\d.]+ (B|KiB|MiB|GiB)$/);
        expect(r[3]).toMatch(/^(native-v8|native-array-buffers|addon|unclassified)/);
      }
      // Under glibc: the warning's words, no table.
      const { port: other } = await announced<{ port: number }>(plain, "port");
      await page.goto(`http://127.0.0.1:${other}/debug/memory?format=html`);
      await page.click("#sites-read");
      await page.waitForFunction(
        () => /MALLOC_CONF=prof:true/.test(document.getElementById("sites-note")?.textContent ?? ""),
        undefined,
        { timeout: 30_000 },
      );
      expect(await page.locator("#sites tr").count()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      child.kill();
      plain.kill();
    }
  }, 90_000);
});
