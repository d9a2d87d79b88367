/**
 * The /debug/memory page in a real headless Chromium (Debian's, driven by playwright-core): the
 * chart fills with samples, nothing is logged as an error, and no request leaves the loopback
 * address. A screenshot is kept in .artifacts/.
 */
import { existsSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { createHandler, startSampler } from "../../lib/index";
import { root } from "../helpers";

const executablePath = "/usr/bin/chromium";
let server: Server | undefined;
afterAll(() => server?.close());

describe("the HTML page in headless Chromium", () => {
  it("draws the breakdown over time from at least two samples, with no console error and no outside request", async () => {
    expect(existsSync(executablePath), `${executablePath}: apt-get install chromium`).toBe(true);
    const sampler = startSampler({ intervalMs: 300, size: 100 });
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
      await page.goto(`${origin}/debug/memory?format=html`);
      await page.waitForFunction(() => Number(document.getElementById("chart")?.dataset.samples) >= 4, undefined, {
        timeout: 20_000,
      });
      const samples = Number(await page.locator("#chart").getAttribute("data-samples"));
      expect(samples).toBeGreaterThanOrEqual(2);
      expect(await page.locator("#legend").textContent()).toMatch(/V8 heap .*native in use .*unattributed .*RSS/);
      expect(await page.locator("#chain").textContent()).toMatch(/^allocated [\d.]+ \w+ → rss/);
      expect(await page.locator("#summary").textContent()).toMatch(/glibc 2\.\d+ · RSS [\d.]+ \w+ · \d+ samples/);
      expect(await page.locator("#error").textContent()).toBe("");
      // The tree of the breakdown: native-in-use, then its children indented under it.
      const rows = await page
        .locator("#parts tr")
        .evaluateAll((trs) => trs.map((tr) => [tr.className, tr.querySelector("td")?.textContent ?? ""]));
      const parent = rows.findIndex(([, name]) => name === "native-in-use");
      expect(parent, JSON.stringify(rows)).toBeGreaterThanOrEqual(0);
      expect(rows.slice(parent + 1).findIndex(([cls]) => cls !== "child")).toBeGreaterThanOrEqual(3);
      expect(rows.map(([, name]) => name)).toContain("native-unclassified");
      expect(rows.find(([, name]) => name === "native-unclassified")?.[0]).toBe("child");
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
});
