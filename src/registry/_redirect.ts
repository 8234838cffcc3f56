/**
 * Private: manual redirect following (at most 5 hops, never https -> http, plain http only where
 * allowed, `Authorization` dropped for good once a hop leaves the origin it was meant for).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { discard } from "./_body.ts";
import { redactedCause, redactUrl } from "./_redact.ts";

/** A response and the URL it came from. */
export interface Hop {
  /** The response. */
  response: Response;
  /** The URL that answered (after a loopback TLS fallback, the plain-HTTP one). */
  url: URL;
}

/** What one request is, before redirects change its method or drop its body. */
export interface Outgoing {
  /** HTTP method. */
  method: string;
  /** Request headers (no `Authorization`: pass it separately). */
  headers: Record<string, string> | undefined;
  /** Request body (a stream is sent once: a redirect that keeps the body is refused). */
  body: Uint8Array | ReadableStream<Uint8Array> | undefined;
  /** Bytes of the body, when known (for the headers deadline). */
  bodyLength?: number | undefined;
  /** Aborts the request. */
  signal: AbortSignal | undefined;
  /** `User-Agent` header. */
  userAgent: string;
  /** The numbered connection to send on (parallel ranges), else the route's shared client. */
  connection?: number | undefined;
  /** Told each redirect target, unredacted and already checked. */
  onRedirect?: ((url: URL) => void) | undefined;
}

/** The transport's side of redirect following. */
export interface RedirectPolicy {
  /** Sends one request (one hop) with redirects left to the caller. */
  send(url: URL, init: RequestInit): Promise<Hop>;
  /** True when plain HTTP may be used to `host`. */
  plainAllowed(host: string): boolean;
  /** Logs one redacted line. */
  log(line: string): void;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Sends `out` to `start` and follows redirects. `authorization` goes only to hops on `start`'s
 * origin, and never again after a hop left it. Returns the first non-redirect response.
 */
export async function followRedirects(
  start: URL,
  out: Outgoing,
  authorization: string | undefined,
  policy: RedirectPolicy,
): Promise<Hop> {
  let url = start;
  let method = out.method;
  let body = out.body;
  let auth = authorization;
  for (let hop = 0;; hop++) {
    const headers = new Headers(out.headers ?? {});
    headers.set("User-Agent", out.userAgent);
    if (auth !== undefined) headers.set("Authorization", auth);
    const sent = await policy.send(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> }),
      redirect: "manual",
      ...(out.signal === undefined ? {} : { signal: out.signal }),
    });
    const response = sent.response;
    url = sent.url;
    if (!REDIRECT_STATUSES.has(response.status)) return { response, url };
    const location = response.headers.get("location");
    await discard(response);
    if (hop >= MAX_REDIRECTS) {
      throw new DangerzoneError(
        "REGISTRY_REDIRECT",
        `more than ${MAX_REDIRECTS} redirects from ${redactUrl(start)}`,
      );
    }
    if (location === null) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `redirect without Location from ${redactUrl(url)}`);
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch (cause) {
      throw new DangerzoneError("REGISTRY_REDIRECT", `invalid redirect Location from ${redactUrl(url)}`, {
        cause: redactedCause(cause),
      });
    }
    if (next.protocol !== "https:" && next.protocol !== "http:") {
      throw new DangerzoneError("REGISTRY_REDIRECT", `refusing redirect to a ${next.protocol} URL`);
    }
    if (url.protocol === "https:" && next.protocol === "http:") {
      throw new DangerzoneError(
        "REGISTRY_REDIRECT",
        `refusing redirect from https to plain http (${redactUrl(next)})`,
        { hint: "the registry or a proxy tried to downgrade the connection" },
      );
    }
    if (next.protocol === "http:" && !policy.plainAllowed(next.host)) {
      throw new DangerzoneError("REGISTRY_INSECURE", `refusing redirect to plain HTTP ${redactUrl(next)}`);
    }
    if (next.origin !== url.origin) auth = undefined;
    if (
      response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")
    ) {
      method = method === "HEAD" ? "HEAD" : "GET";
      body = undefined;
    }
    if (body instanceof ReadableStream) {
      throw new DangerzoneError(
        "REGISTRY_REDIRECT",
        `${redactUrl(url)} redirected an upload; its body cannot be sent again`,
      );
    }
    policy.log(`redirect ${response.status} -> ${redactUrl(next)}`);
    out.onRedirect?.(next);
    url = next;
  }
}
