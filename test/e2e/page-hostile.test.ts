/**
 * The attacks a browser can carry out against a /debug/memory on the loopback address, in a real
 * headless Chromium (Debian's, driven by playwright-core):
 * - a page of another site that submits forms (text/plain, urlencoded, multipart) and a `no-cors`
 *   fetch to POST …/trim: none of them may trim;
 * - DNS rebinding: a page whose own name resolves to 127.0.0.1 (Chromium's --host-resolver-rules
 *   plays the attacker's DNS) reads /debug/memory same-origin: it must get 421 and no data.
 * Each has a control that shows the request did reach the server and would have worked.
 */
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA } from "../../lib/core/model/types";
import { createHandler } from "../../lib/index";

const executablePath = "/usr/bin/chromium";
const REBOUND = "rebind.test";

interface Seen {
  method: string;
  url: string;
  host: string;
  status: number;
}

const servers: Server[] = [];
let browser: Browser;
let target: string;
let targetPort: number;
let attacker: string;
const seen: Seen[] = [];

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer(handler);
  servers.push(server);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

/** The attacker's page: three forms and a no-cors fetch, all aimed at the target's trim action. */
function attackPage(trimUrl: string): string {
  const form = (enctype: string, n: number) =>
    `<iframe name="f${n}"></iframe><form id="form${n}" method="POST" action="${trimUrl}" enctype="${enctype}" target="f${n}"><input name="a" value='{"x":1}'></form>`;
  return `<!doctype html><html><body>
${form("text/plain", 1)}${form("application/x-www-form-urlencoded", 2)}${form("multipart/form-data", 3)}
<script>
for (const n of [1, 2, 3]) document.getElementById("form" + n).submit();
fetch(${JSON.stringify(trimUrl)}, { method: "POST", mode: "no-cors", body: '{"x":1}', headers: { "content-type": "application/json" } })
  .then(() => { document.title = "fetched"; }, (e) => { document.title = "fetch failed: " + e; });
</script></body></html>`;
}

/** A page that reads /debug/memory from its own origin and shows what it got. */
const readerPage = `<!doctype html><html><body><pre id="out">…</pre><script>
fetch("/debug/memory?format=json").then(async (r) => {
  document.getElementById("out").textContent = r.status + "\\n" + (await r.text());
}, (e) => { document.getElementById("out").textContent = "error " + e; });
</script></body></html>`;

/** A page of the target's own origin that trims as the operator's own page would. */
const ownPage = `<!doctype html><html><body><pre id="out">…</pre><script>
fetch("/debug/memory/trim", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
  .then((r) => { document.getElementById("out").textContent = String(r.status); });
</script></body></html>`;

beforeAll(async () => {
  expect(existsSync(executablePath), `${executablePath}: apt-get install chromium`).toBe(true);
  const handler = createHandler({ trim: true, sampler: false });
  targetPort = await listen((req, res) => {
    res.on("finish", () =>
      seen.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host ?? "", status: res.statusCode }),
    );
    handler(req, res, () => {
      // Not the handler's path: the rest of the "application", where a rebound attacker page lives.
      const page = req.url === "/own" ? ownPage : readerPage;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page);
    });
  });
  target = `http://127.0.0.1:${targetPort}`;
  const attackerPort = await listen((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(attackPage(`${target}/debug/memory/trim`));
  });
  // localhost and 127.0.0.1 are different sites to the browser.
  attacker = `http://localhost:${attackerPort}`;
  browser = await chromium.launch({
    executablePath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`,
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const s of servers) s.close();
});

async function until(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; seen: ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("a page of another site", () => {
  it("cannot trim with a form (text/plain, urlencoded, multipart) or a no-cors fetch; the own origin can", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(attacker);
      const trims = () => seen.filter((s) => s.method === "POST" && s.url === "/debug/memory/trim");
      // All four requests reached the server (so a refusal is the handler's, not the browser's)…
      await until("four cross-site trim requests", () => trims().length >= 4);
      await page.waitForFunction(() => document.title !== "", undefined, { timeout: 10_000 });
      // …and every one was refused.
      expect(trims().map((s) => s.status)).toEqual([403, 403, 403, 403]);

      // The control: the target's own page trims.
      await page.goto(`${target}/own`);
      await page.waitForFunction(() => document.getElementById("out")?.textContent !== "…", undefined, {
        timeout: 10_000,
      });
      expect(await page.locator("#out").textContent()).toBe("200");
      expect(trims().at(-1)?.status).toBe(200);
    } finally {
      await page.close();
    }
  }, 60_000);
});

describe("DNS rebinding", () => {
  it("a page whose name resolves to 127.0.0.1 reads its own origin's /debug/memory and gets 421, no data", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://${REBOUND}:${targetPort}/attack`);
      await page.waitForFunction(() => document.getElementById("out")?.textContent !== "…", undefined, {
        timeout: 10_000,
      });
      const out = (await page.locator("#out").textContent()) ?? "";
      expect(out.split("\n")[0]).toBe("421");
      expect(out).not.toContain('"schema"');
      expect(seen.some((s) => s.host === `${REBOUND}:${targetPort}` && s.url.startsWith("/debug/memory"))).toBe(true);

      // The control: the same page from 127.0.0.1 reads the snapshot.
      await page.goto(`${target}/attack`);
      await page.waitForFunction(() => document.getElementById("out")?.textContent !== "…", undefined, {
        timeout: 10_000,
      });
      const own = (await page.locator("#out").textContent()) ?? "";
      expect(own.split("\n")[0]).toBe("200");
      expect(own).toContain(`"schema": "${SCHEMA}"`);
    } finally {
      await page.close();
    }
  }, 60_000);
});
