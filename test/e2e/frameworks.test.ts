/**
 * The handler in the frameworks users mount it in, as real dependencies: node:http, Express 5
 * (under a prefix), Fastify 5 (reply.hijack()), Koa, and Hono on node through the fetch-style
 * handler. In each: the text and the scrape formats, a remote client refused, a foreign Host
 * refused (DNS rebinding), trim refused cross-site and done from the same origin, and other paths
 * left to the framework.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import Koa from "koa";
import { afterAll, describe, expect, it } from "vitest";
import { createFetchHandler, createHandler } from "../../lib/index";

const closers: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const close of closers) await close();
});

function listen(server: Server): Promise<string> {
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

/** A GET with headers fetch refuses to set (Host). */
function status(url: string, headers: Record<string, string>): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", reject);
    req.end();
  });
}

type Mount = (options: { trim: boolean }) => Promise<{ base: string; prefix: string }>;

const mounts: Array<[string, Mount]> = [
  [
    "node:http",
    async (options) => {
      const handler = createHandler({ sampler: false, ...options });
      const server = createServer((req, res) => handler(req, res, () => res.writeHead(418).end("app\n")));
      return { base: await listen(server), prefix: "" };
    },
  ],
  [
    "Express 5, mounted under /admin",
    async (options) => {
      const app = express();
      app.use("/admin", createHandler({ sampler: false, ...options }));
      app.use((_req, res) => {
        res.status(418).send("app\n");
      });
      return { base: await listen(createServer(app)), prefix: "/admin" };
    },
  ],
  [
    "Fastify 5, reply.hijack()",
    async (options) => {
      const fastify = Fastify();
      const handler = createHandler({ sampler: false, ...options });
      fastify.all("/debug/memory*", (request, reply) => {
        reply.hijack();
        handler(request.raw, reply.raw, () => reply.raw.writeHead(404).end());
      });
      fastify.setNotFoundHandler((_request, reply) => {
        reply.code(418).send("app\n");
      });
      await fastify.listen({ port: 0, host: "127.0.0.1" });
      closers.push(() => fastify.close());
      return { base: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`, prefix: "" };
    },
  ],
  [
    "Koa",
    async (options) => {
      const app = new Koa();
      const handler = createHandler({ sampler: false, ...options });
      app.use(async (ctx, next) => {
        if (!ctx.path.startsWith("/debug/memory")) return next();
        ctx.respond = false;
        handler(ctx.req, ctx.res, () => ctx.res.writeHead(404).end());
      });
      app.use((ctx) => {
        ctx.status = 418;
        ctx.body = "app\n";
      });
      return { base: await listen(createServer(app.callback())), prefix: "" };
    },
  ],
  [
    "Hono on node, createFetchHandler",
    async (options) => {
      const app = new Hono<{ Bindings: { incoming: { socket: { remoteAddress?: string } } } }>();
      const handle = createFetchHandler({ sampler: false, ...options });
      const route = (c: { req: { raw: Request }; env: { incoming: { socket: { remoteAddress?: string } } } }) =>
        handle(c.req.raw, { remoteAddress: c.env.incoming.socket.remoteAddress ?? "" });
      app.all("/debug/memory", route);
      app.all("/debug/memory/*", route);
      app.notFound((c) => c.text("app\n", 418));
      return new Promise((resolve) => {
        const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
          resolve({ base: `http://127.0.0.1:${info.port}`, prefix: "" });
        });
        closers.push(() => new Promise<void>((done) => server.close(() => done())));
      });
    },
  ],
];

const PROMETHEUS_ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

describe.each(mounts)("%s", (_name, mount) => {
  it("answers text and the scrape formats, refuses remote clients and foreign hosts, and leaves other paths", async () => {
    const { base, prefix } = await mount({ trim: false });
    const at = `${base}${prefix}/debug/memory`;
    const text = await fetch(at);
    expect(text.status).toBe(200);
    expect(await text.text()).toMatch(/^heapstate {2}pid \d+/);
    const scrape = await fetch(at, { headers: { accept: PROMETHEUS_ACCEPT } });
    expect(scrape.headers.get("content-type")).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
    expect(await scrape.text()).toMatch(/^heapstate_memory_rss_bytes \d+$[\s\S]*# EOF\n$/m);
    expect(scrape.headers.get("vary")).toBe("Accept");
    expect((await fetch(at, { headers: { "x-forwarded-for": "203.0.113.9" } })).status).toBe(403);
    // fetch will not send another Host: node:http will.
    expect(await status(at, { host: "rebound.example:8080" })).toBe(421);
    expect((await fetch(`${base}${prefix}/other`)).status).toBe(418);
  });

  it("trims from the same origin only", async () => {
    const { base, prefix } = await mount({ trim: true });
    const at = `${base}${prefix}/debug/memory/trim`;
    const crossSite = await fetch(at, {
      method: "POST",
      headers: { "content-type": "text/plain", "sec-fetch-site": "cross-site", origin: "https://evil.example" },
    });
    expect(crossSite.status).toBe(403);
    const own = await fetch(at, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(own.status).toBe(200);
    expect(((await own.json()) as { actions: unknown[] }).actions.length).toBeGreaterThan(0);
  });
});
