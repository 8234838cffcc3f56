/**
 * An in-process, table-driven HTTP server on 127.0.0.1 (regclient `reqresp` style) for what a
 * real registry cannot do: dropped connections mid-blob, wrong bytes, 429 with Retry-After, 5xx,
 * slow and endless bodies, 200 in reply to Range, a wrong Content-Range start, redirects (to
 * http, to another host, with signed query strings), oversized manifests, token challenges and
 * the OCI referrers API.
 *
 * @module
 */

/** What a handler learns about its request. */
export interface FaultContext {
  /** How many times this route has matched, including this time (1-based). */
  count: number;
  /** The parsed request URL. */
  url: URL;
  /** The server's own origin, e.g. `http://127.0.0.1:1234`. */
  origin: string;
}

/** Produces the response of one route. */
export type FaultHandler = (req: Request, ctx: FaultContext) => Response | Promise<Response>;

/** One row of the table: the first row whose method and path match answers. */
export interface FaultRoute {
  /** HTTP method (default: any). */
  method?: string;
  /** Exact path (without query) or a pattern over it. */
  path: string | RegExp;
  /** The response. */
  handler: FaultHandler;
}

/** A request as the server saw it. */
export interface RecordedRequest {
  /** Method. */
  method: string;
  /** Full URL including the query. */
  url: string;
  /** Lowercased header map. */
  headers: Record<string, string>;
}

/** A running fault server. */
export interface FaultServer {
  /** `127.0.0.1:<port>`, usable as a registry host. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** The port. */
  port: number;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Stops the server and waits for open responses to finish. */
  close(): Promise<void>;
  /** Same as close. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a fault server with `routes`; unmatched requests get 404 with a distribution error body. */
export function startFaultServer(routes: FaultRoute[]): FaultServer {
  const counts = new Map<FaultRoute, number>();
  const requests: RecordedRequest[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let origin = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => (headers[k] = v));
    requests.push({ method: req.method, url: req.url, headers });
    for (const route of routes) {
      if (route.method !== undefined && route.method !== req.method) continue;
      const match = typeof route.path === "string"
        ? route.path === url.pathname
        : route.path.test(url.pathname);
      if (!match) continue;
      const count = (counts.get(route) ?? 0) + 1;
      counts.set(route, count);
      return await route.handler(req, { count, url, origin });
    }
    await req.body?.cancel();
    return Response.json({ errors: [{ code: "NOT_FOUND", message: "no route" }] }, { status: 404 });
  });
  origin = `http://127.0.0.1:${server.addr.port}`;
  const close = async () => {
    for (const t of timers) clearTimeout(t);
    await server.shutdown();
  };
  return {
    host: `127.0.0.1:${server.addr.port}`,
    origin,
    port: server.addr.port,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** How {@linkcode blobResponse} misbehaves. */
export type BlobFault =
  | { kind: "none" }
  /** Send this many bytes (counted from the start of the response), then cut the connection. */
  | { kind: "drop"; after: number }
  /** Ignore `Range` and answer 200 with the whole blob. */
  | { kind: "ignoreRange" }
  /** Answer a Range request with 206 but a `Content-Range` starting at `start`. */
  | { kind: "wrongRangeStart"; start: number }
  /** Send `chunk` bytes every `delayMs`. */
  | { kind: "slow"; chunk: number; delayMs: number }
  /** Send the blob and then bytes forever. */
  | { kind: "endless" }
  /** Send a body of the right size whose first byte is flipped. */
  | { kind: "wrongBytes" }
  /** Stall forever after `after` bytes without closing. */
  | { kind: "stall"; after: number };

/**
 * A blob response that honours `Range: bytes=N-` (206 with `Content-Range`) unless `fault`
 * says otherwise.
 */
export function blobResponse(
  req: Request,
  bytes: Uint8Array<ArrayBuffer>,
  fault: BlobFault = { kind: "none" },
): Response {
  const range = /^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "");
  let start = range && fault.kind !== "ignoreRange" ? Number(range[1]) : 0;
  const headers = new Headers({ "Content-Type": "application/octet-stream" });
  let status = 200;
  if (range && fault.kind !== "ignoreRange") {
    status = 206;
    const shownStart = fault.kind === "wrongRangeStart" ? fault.start : start;
    if (fault.kind === "wrongRangeStart") start = fault.start;
    headers.set("Content-Range", `bytes ${shownStart}-${bytes.length - 1}/${bytes.length}`);
  }
  let body = bytes.subarray(start);
  if (fault.kind === "wrongBytes") {
    body = body.slice();
    if (body.length > 0) body[0] = (body[0] ?? 0) ^ 0xff;
  }
  if (
    fault.kind === "none" || fault.kind === "ignoreRange" || fault.kind === "wrongRangeStart" ||
    fault.kind === "wrongBytes"
  ) {
    headers.set("Content-Length", String(body.length));
    return new Response(body, { status, headers });
  }
  if (fault.kind === "endless") {
    let sent = false;
    const filler = new Uint8Array(64 * 1024).fill(0x41);
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (!sent) {
            sent = true;
            c.enqueue(body);
          } else c.enqueue(filler);
        },
      }),
      { status, headers },
    );
  }
  if (fault.kind === "drop" || fault.kind === "stall") {
    headers.set("Content-Length", String(body.length));
    const first = body.subarray(0, Math.min(fault.after, body.length));
    const stall = fault.kind === "stall";
    let step = 0;
    let wake: (() => void) | undefined;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          if (step++ === 0) {
            c.enqueue(first);
            return;
          }
          if (stall) {
            await new Promise<void>((resolve) => (wake = resolve));
            c.close();
            return;
          }
          c.error(new Error("fault server: dropped connection"));
        },
        cancel() {
          wake?.();
        },
      }),
      { status, headers },
    );
  }
  // slow
  headers.set("Content-Length", String(body.length));
  let off = 0;
  const { chunk, delayMs } = fault;
  return new Response(
    new ReadableStream<Uint8Array>({
      async pull(c) {
        if (off >= body.length) {
          c.close();
          return;
        }
        if (off > 0) await new Promise((r) => setTimeout(r, delayMs));
        c.enqueue(body.subarray(off, off + chunk));
        off += chunk;
      },
    }),
    { status, headers },
  );
}

/** A manifest response with its media type as Content-Type. */
export function manifestResponse(
  raw: Uint8Array<ArrayBuffer>,
  mediaType: string,
  extra: HeadersInit = {},
): Response {
  const headers = new Headers(extra);
  headers.set("Content-Type", mediaType);
  headers.set("Content-Length", String(raw.length));
  return new Response(raw, { status: 200, headers });
}

/** A distribution-style error response. */
export function errorResponse(status: number, code: string, extra: HeadersInit = {}): Response {
  const headers = new Headers(extra);
  headers.set("Content-Type", "application/json");
  return new Response(JSON.stringify({ errors: [{ code, message: code.toLowerCase() }] }), {
    status,
    headers,
  });
}

/** A redirect response. */
export function redirectResponse(location: string, status = 307): Response {
  return new Response(null, { status, headers: { Location: location } });
}

// ---- credential scope: a registry front that redirects, and a CDN that asks for credentials ----

/**
 * A handler that forwards the request as received (method, every header including
 * `Authorization`, body) to a real server through `send`, and returns its answer unchanged
 * (redirects included), so a fault server can sit in front of the real registry.
 */
export function forwardHandler(send: (path: string, init: RequestInit) => Promise<Response>): FaultHandler {
  return async (req, ctx) => {
    const headers = new Headers(req.headers);
    headers.delete("host");
    const body = req.body === null ? undefined : new Uint8Array(await req.arrayBuffer());
    const res = await send(`${ctx.url.pathname}${ctx.url.search}`, {
      method: req.method,
      headers,
      redirect: "manual",
      ...(body === undefined ? {} : { body }),
    });
    return new Response(res.body, { status: res.status, headers: res.headers });
  };
}

/**
 * A hostile blob CDN: every request gets 401 with the CDN's own
 * `WWW-Authenticate: Bearer realm="<cdn>/token"`, and `/token` hands out a token to anyone. Its
 * `requests` record everything it received, to prove no credential of the registry reached it.
 */
export function startChallengingCdn(): FaultServer {
  return startFaultServer([
    { path: "/token", handler: () => Response.json({ token: "cdn-token", expires_in: 300 }) },
    {
      path: /.*/,
      handler: (_req, ctx) =>
        new Response(null, {
          status: 401,
          headers: { "WWW-Authenticate": `Bearer realm="${ctx.origin}/token",service="cdn"` },
        }),
    },
  ]);
}

// ---- deadlines: servers that hang ------------------------------------------------------------

/** A TCP server that accepts connections and never answers. */
export interface SilentServer extends AsyncDisposable {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** How many connections it accepted. */
  readonly connections: number;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** Starts a {@linkcode SilentServer}: connect works, then nothing (no TLS handshake, no headers). */
export function startSilentServer(): SilentServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // the listener was closed
    }
  })();
  const close = async () => {
    try {
      listener.close();
    } catch {
      // already closed
    }
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // the peer closed it
      }
    }
    await accepting;
  };
  return {
    host: `127.0.0.1:${listener.addr.port}`,
    get connections() {
      return conns.length;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** How {@linkcode forwardRange} misbehaves in front of a real registry (parallel Range downloads). */
export type RangeFault =
  | { kind: "none" }
  /** Forward without the `Range` header: the registry answers 200 with the whole blob. */
  | { kind: "rangesIgnored" }
  /** Answer 206 with the registry's body but a `Content-Range` one byte off. */
  | { kind: "wrongContentRange" }
  /** Answer 200 (instead of 206) with the registry's partial body and its `Content-Range`. */
  | { kind: "okInsteadOfPartial" }
  /** Send `after` bytes of the range, then cut the connection. */
  | { kind: "dropMidRange"; after: number };

/**
 * Forwards a blob request, with its `Range`, to a real registry through `upstream` (e.g.
 * `RunningRegistry.fetch`) and applies `fault` to the answer.
 */
export async function forwardRange(
  req: Request,
  upstream: (path: string, init?: RequestInit) => Promise<Response>,
  fault: RangeFault,
): Promise<Response> {
  const url = new URL(req.url);
  const headers = new Headers();
  const range = req.headers.get("range");
  if (range !== null && fault.kind !== "rangesIgnored") headers.set("Range", range);
  const res = await upstream(url.pathname, { headers, redirect: "manual" });
  const out = new Headers(res.headers);
  if (fault.kind === "wrongContentRange") {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.get("content-range") ?? "");
    if (m) out.set("Content-Range", `bytes ${Number(m[1]) + 1}-${Number(m[2]) + 1}/${m[3]}`);
  }
  const status = fault.kind === "okInsteadOfPartial" && res.status === 206 ? 200 : res.status;
  if (fault.kind !== "dropMidRange" || res.body === null) {
    return new Response(res.body, { status, headers: out });
  }
  const reader = res.body.getReader();
  let sent = 0;
  return new Response(
    new ReadableStream<Uint8Array>({
      async pull(c) {
        const r = await reader.read();
        if (r.done) return c.close();
        const room = fault.after - sent;
        if (room <= 0) {
          await reader.cancel();
          return c.error(new Error("fault server: dropped mid-range"));
        }
        c.enqueue(r.value.subarray(0, room));
        sent += Math.min(room, r.value.byteLength);
      },
      cancel: (reason) => reader.cancel(reason),
    }),
    { status, headers: out },
  );
}
