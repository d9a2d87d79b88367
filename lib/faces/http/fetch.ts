/**
 * createFetchHandler(): the /debug/memory handler for fetch-style runtimes, by running the Node
 * handler on what it reads of a Request and turning its answer into a Response.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { errorText } from "../../core";
import { createHandler, type HandlerOptions } from "./handler";
import { redactText } from "./redact";

/** What a fetch-style runtime can say of the connection a Request came on. */
export interface FetchInfo {
  /**
   * The client's address (Bun: `server.requestIP(req)?.address`; Deno: `info.remoteAddr.hostname`;
   * Hono on node: `c.env.incoming.socket.remoteAddress`). Unknown means remote: refused unless
   * `allowRemote`.
   */
  remoteAddress?: string;
}

/**
 * The same handler for fetch-style runtimes (Hono, Bun, Deno, Next.js route handlers, workers):
 * `Request → Response`, under the same rules (loopback clients only, the Host check against DNS
 * rebinding, trim only from the same origin). A request for another path gets 404.
 * @example
 * const handle = createFetchHandler();
 * app.all("/debug/memory/*", (c) => handle(c.req.raw, { remoteAddress: c.env.incoming.socket.remoteAddress }));
 */
export function createFetchHandler(
  options?: HandlerOptions,
): (request: Request, info?: FetchInfo) => Promise<Response> {
  const node = createHandler(options);
  return async (request, info) => {
    // A Request is the caller's object: its getters (url, method, headers) and the info's may
    // throw. Whatever they do, the promise resolves to a Response: 400 for a request that cannot
    // be read, 500 for anything else.
    let req: IncomingMessage;
    let method: string;
    try {
      const read = fetchRequest(request, info);
      if (typeof read === "string") return new Response(`heapstate: ${read}\n`, { status: 400 });
      ({ req, method } = read);
    } catch (error) {
      return new Response(`heapstate: the request could not be read (${redactText(errorText(error, 200))})\n`, {
        status: 400,
      });
    }
    try {
      return answerFetch(node, req, method);
    } catch (error) {
      return new Response(`heapstate: internal error: ${redactText(errorText(error, 200))}\n`, { status: 500 });
    }
  };
}

/** The parts of a fetch Request the Node handler reads, or why it cannot be read (a 400). */
function fetchRequest(
  request: Request,
  info: FetchInfo | undefined,
): { req: IncomingMessage; method: string } | string {
  if (request === null || typeof request !== "object") return "the request is not a Request";
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return "the request URL is not a URL";
  }
  const method = request.method;
  if (typeof method !== "string") return "the request has no method";
  const headers: Record<string, string> = {};
  const distinct: Record<string, string[]> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
    // fetch joins repeated headers with ", ": one value each (the proxy headers are split on commas anyway).
    distinct[name] = [value];
  });
  // Host is the URL's own where the runtime does not pass the header through.
  headers.host ??= url.host;
  distinct.host ??= [url.host];
  const remote = info?.remoteAddress;
  const req = {
    method,
    url: `${url.pathname}${url.search}`,
    headers,
    headersDistinct: distinct,
    socket: { remoteAddress: typeof remote === "string" ? remote : "" },
  } as unknown as IncomingMessage;
  return { req, method };
}

/** Runs the Node handler on a request read from a fetch Request, and turns its answer into a Response. */
function answerFetch(
  node: (req: IncomingMessage, res: ServerResponse, next?: () => void) => void,
  req: IncomingMessage,
  method: string,
): Response {
  const answer = {
    status: 404,
    headers: { "content-type": "text/plain; charset=utf-8" } as Record<string, string>,
    body: "heapstate: not found\n" as string | undefined,
    sent: false,
  };
  const res = {
    get headersSent() {
      return answer.sent;
    },
    get writableEnded() {
      return answer.sent;
    },
    destroyed: false,
    writeHead(code: number, h: Record<string, string>) {
      answer.status = code;
      answer.headers = h;
    },
    end(text?: string) {
      answer.body = text;
      answer.sent = true;
    },
    destroy() {
      answer.status = 500;
      answer.body = "heapstate: internal error\n";
      answer.sent = true;
    },
  } as unknown as ServerResponse;
  node(req, res, () => {
    // Not this handler's path: the fetch-style caller has no next(); 404.
  });
  const headersOut = new Headers();
  for (const [k, v] of Object.entries(answer.headers)) if (k !== "content-length") headersOut.set(k, v);
  return new Response(method === "HEAD" ? null : (answer.body ?? null), {
    status: answer.status,
    headers: headersOut,
  });
}
