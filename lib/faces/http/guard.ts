/**
 * Who may ask /debug/memory: the client's addresses from the socket and every proxy header
 * (loopback only unless allowed), the Host a request names (loopback names, or those listed: a
 * page whose DNS name was rebound to 127.0.0.1 cannot read the answers), and whether a trim comes
 * from a page of another site. Decided before anything parses the request's target.
 */
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms, in any spelling. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const kind = isIP(address);
  if (kind === 4) return address.startsWith("127.");
  if (kind !== 6) return false;
  let canonical: string;
  try {
    canonical = new URL(`http://[${address}]/`).hostname;
  } catch {
    return false;
  }
  // The URL parser writes ::1 as [::1] and ::ffff:127.0.0.1 as [::ffff:7f00:1].
  return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/**
 * Headers by which a proxy in front of the service names the client it forwards for. Any of them
 * naming anything but a loopback address makes the request a remote client's.
 */
export const PROXY_HEADERS = [
  "x-forwarded-for",
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "x-client-ip",
  "fastly-client-ip",
] as const;

/** "[2001:db8::1]:4711", "192.0.2.1:80", "\"unknown\"" → the address part. */
function addressOf(token: string): string {
  let t = token.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1).trim();
  if (t.startsWith("[")) {
    const end = t.indexOf("]");
    return end > 0 ? t.slice(1, end) : t;
  }
  const colon = t.indexOf(":");
  if (colon > 0 && colon === t.lastIndexOf(":") && isIP(t.slice(0, colon)) === 4) return t.slice(0, colon);
  return t;
}

/**
 * Every value a header was sent with. Node keeps only the first of a repeated Host or
 * Content-Type in `headers`; `headersDistinct` (Node ≥ 18.3) has them all, so a second Host
 * cannot hide behind a first.
 */
export function headerValues(req: IncomingMessage, name: string): string[] {
  const distinct = (req as { headersDistinct?: Record<string, string[] | undefined> }).headersDistinct?.[name];
  if (Array.isArray(distinct)) return distinct;
  const v = req.headers[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [String(v)];
}

/** Every client address the request names: the socket's, then each proxy header's. */
export function clientAddresses(req: IncomingMessage): string[] {
  const out: string[] = [req.socket?.remoteAddress ?? ""];
  for (const name of PROXY_HEADERS) {
    for (const value of headerValues(req, name)) {
      if (name === "forwarded") {
        // for=… anywhere in any element, with any spacing and quoting; by=, host=, proto= ignored.
        for (const element of value.split(/[,;]/)) {
          const eq = element.indexOf("=");
          if (eq > 0 && element.slice(0, eq).trim().toLowerCase() === "for") out.push(addressOf(element.slice(eq + 1)));
        }
      } else {
        for (const item of value.split(",")) if (item.trim() !== "") out.push(addressOf(item));
      }
    }
  }
  return out;
}

/** Whether a request comes from (or is forwarded for) a client that is not on this machine. */
export function isRemoteClient(req: IncomingMessage): boolean {
  return !clientAddresses(req).every(isLoopback);
}

/** "Host: [::1]:9464" → { name: "::1", port: "9464" }; undefined for a value that is no host. */
function parseHost(value: string): { name: string; port?: string } | undefined {
  const v = value.trim().toLowerCase();
  let name: string;
  let rest: string;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    if (end < 0) return undefined;
    name = v.slice(1, end);
    rest = v.slice(end + 1);
  } else {
    const colon = v.indexOf(":");
    name = colon < 0 ? v : v.slice(0, colon);
    rest = colon < 0 ? "" : v.slice(colon);
  }
  if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "") return undefined;
  return rest ? { name, port: rest.slice(1) } : { name };
}

/**
 * Whether the request's Host is one this handler answers: a loopback name or address, one the
 * operator listed, or (with allowRemote) any IP address. A page on another domain that resolves
 * to 127.0.0.1 sends its own name, so DNS rebinding cannot reach the answers. A request without
 * Host (HTTP/1.0 tools) was not sent by a browser.
 */
export function hostAllowed(req: IncomingMessage, allowed: readonly string[], allowRemote: boolean): boolean {
  const values = headerValues(req, "host");
  if (values.length === 0) return true;
  if (values.length > 1) return false;
  const host = parseHost(values[0] as string);
  if (!host) return false;
  if (host.name === "localhost" || isLoopback(host.name)) return true;
  if (allowRemote && isIP(host.name) !== 0) return true;
  const full = host.port ? `${host.name}:${host.port}` : host.name;
  return allowed.some((a) => a === host.name || a === full);
}

/**
 * Why a POST to the trim action must be refused as possibly sent by a page of another site, or
 * undefined. A browser sends `Content-Type: application/json` to another origin only after a
 * CORS preflight, which this handler never grants; forms and `no-cors` fetches can only send
 * text/plain, urlencoded or multipart bodies. `Sec-Fetch-Site` and `Origin` are checked too.
 */
export function crossSiteReason(req: IncomingMessage): string | undefined {
  for (const site of headerValues(req, "sec-fetch-site")) {
    if (site !== "same-origin" && site !== "none") return `Sec-Fetch-Site is ${site.slice(0, 40)}`;
  }
  const hosts = headerValues(req, "host");
  for (const origin of headerValues(req, "origin")) {
    const host = hosts.length === 1 ? hosts[0] : undefined;
    if (host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`)) {
      return `Origin ${origin.slice(0, 100)} is another site`;
    }
  }
  const types = headerValues(req, "content-type");
  const type = types.length === 1 ? types[0]?.split(";")[0]?.trim().toLowerCase() : undefined;
  if (type !== "application/json") return "the trim action needs Content-Type: application/json";
  return undefined;
}
