#!/usr/bin/env node
// Takes the README's screenshot of /debug/memory (docs/debug-memory.png): a process that keeps
// freed memory in glibc's arenas, watched for a few seconds in Debian's headless Chromium.
//   node --expose-gc scripts/page-screenshot.mjs
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const { createHandler, startSampler } = require(join(root, "dist", "index.js"));
const { chromium } = require("playwright-core");

const sampler = startSampler({ intervalMs: 2000, size: 200, tier: "deep" });
let bufs = [];
let step = 0;
const timer = setInterval(() => {
  step++;
  if (step <= 6) for (let i = 0; i < 2500; i++) bufs.push(Buffer.allocUnsafeSlow(8192).fill(1));
  if (step === 7) {
    bufs = bufs.filter((_, i) => i % 100 === 0); // keep every hundredth: the rest stays in glibc's arenas
    global.gc?.();
  }
}, 1000);
const server = createServer(createHandler({ sampler })).listen(0, "127.0.0.1", async () => {
  const url = `http://127.0.0.1:${server.address().port}/debug/memory?format=html`;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const page = await browser.newPage({ viewport: { width: 1024, height: 720 } });
  await page.goto(url);
  await new Promise((r) => setTimeout(r, 21000));
  // Two moments compared (before the allocations, after the release), then the pointer on the peak.
  const box = await page.locator("#chart").boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.click(box.x + box.width * 0.09, y);
  await page.mouse.click(box.x + box.width * 0.97, y);
  await page.waitForSelector("#compare[data-to]");
  await page.mouse.move(box.x + box.width * 0.5, y);
  await page.waitForSelector("#tip:not([hidden])");
  await page.screenshot({ path: join(root, "docs", "debug-memory.png"), fullPage: true });
  await browser.close();
  clearInterval(timer);
  sampler.stop();
  server.close();
  console.log(`docs/debug-memory.png (${bufs.length} buffers kept)`);
});
