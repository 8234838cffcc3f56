/**
 * All HTTP policy of the registry client (regclient `reghttp`), composed from one file per
 * concern: scheme choice (plain HTTP only for loopback or named insecure registries), HTTP
 * clients with custom CAs and proxies (`_http_client.ts`), auth challenges and a token cache per
 * scope (`_auth.ts`), one retry policy (`_retry.ts`), manual redirects (`_redirect.ts`),
 * resumable blob streams (`_blob_reader.ts`), and redaction of every URL that reaches an error or
 * a log line. {@linkcode Transport} is the only caller of `fetch`.
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "../errors.ts";
import { normalizeRegistry } from "../oci/reference.ts";
import { RegistryAuth } from "./_auth.ts";
import { openBlobReader } from "./_blob_reader.ts";
import type { TransportRequest, TransportResponse } from "./_request.ts";
import type { BlobReader, OpenBlobOptions } from "./_blob_reader.ts";
import { discard, errorCode } from "./_body.ts";
import { apiHost, isLoopback } from "./_hosts.ts";
import {
  type Deadlines,
  DEFAULT_DEADLINES,
  HeadersTimeout,
  setDocumentDeadline,
  withHeadersDeadline,
} from "./_deadlines.ts";
import { HttpClients } from "./_http_client.ts";
import { followRedirects, type Hop, type Outgoing } from "./_redirect.ts";
import { redactedCause, redactText, redactUrl } from "./_redact.ts";
import {
  backoff,
  isAbort,
  isRetryableStatus,
  parseRetryAfter,
  type RetryOptions,
  type RetryPolicy,
  retryPolicy,
  sleep,
} from "./_retry.ts";
import { classifyTlsFailure } from "./_tls_failure.ts";
import type { CredentialResolver } from "./credentials.ts";

export type { BlobRead, BlobReader, OpenBlobOptions } from "./_blob_reader.ts";
export type { TransportRequest, TransportResponse } from "./_request.ts";
export { readLimited } from "./_body.ts";
export { apiHost, isLoopback } from "./_hosts.ts";
export { parseRetryAfter, type RetryOptions } from "./_retry.ts";

/** Options of {@linkcode Transport}. */
export interface TransportOptions {
  /** Registries (`host[:port]`) that may be reached over plain HTTP. Loopback hosts always may. */
  insecureRegistries?: readonly string[];
  /** Extra CA certificates (PEM text) trusted for registry TLS. */
  caCerts?: readonly string[];
  /** Proxy for all registry traffic: `http://`, `https://`, `socks5://`, `socks5h://` (user info allowed). */
  proxy?: string;
  /** Environment for `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` (default: the process environment). */
  env?: Record<string, string | undefined>;
  /** Credentials per registry (default: none, anonymous). */
  credentials?: CredentialResolver;
  /** Retry policy. */
  retry?: RetryOptions;
  /** `User-Agent` header. */
  userAgent?: string;
  /** Path of os-release, to detect Tails (default `/etc/os-release`). */
  osReleasePath?: string;
  /** Tor SOCKS port used on Tails (default 9050). */
  torSocksPort?: number;
  /** Connect, TLS and response headers of each HTTP exchange, else `REGISTRY_TIMEOUT` after retries (default 60 s). */
  headersTimeoutMs?: number;
  /** A whole document (manifest, token, signature, referrers, bundle) from request to last byte (default 120 s). */
  documentTimeoutMs?: number;
  /** Abort a blob body after this long without bytes, then resume (default 60 s). */
  idleTimeoutMs?: number;
  /** A blob body slower than this on average over `blobRateWindowMs` is a stall, resumed (default 1024; 0: off). */
  minBlobBytesPerSecond?: number;
  /** The window of `minBlobBytesPerSecond` (default 60 s). */
  blobRateWindowMs?: number;
  /** Most bytes discarded when a server answers a `Range` request with 200 (default 32 MiB). */
  maxRangeDiscard?: number;
  /** Receives one redacted line per HTTP exchange (for `--debug`). */
  onLog?: (line: string) => void;
  /**
   * One Tor circuit per connection: requests with a numbered `connection` go through a SOCKS5 proxy
   * with a random username of their own (default: on with the Tails proxy).
   */
  torIsolation?: boolean;
}

const DEFAULT_USER_AGENT = "dangerzone-image";

/**
 * The HTTP transport. Create one per run and {@linkcode Transport.close} it (it owns HTTP
 * clients, which are resources).
 *
 * @example
 * ```ts
 * import { Transport } from "./transport.ts";
 * using t = new Transport({ env: {} });
 * const { response } = await t.request({ registry: "127.0.0.1:5000", path: "/v2/" });
 * await response.body?.cancel();
 * ```
 */
export class Transport {
  readonly #options: TransportOptions;
  readonly #insecure: Set<string>;
  readonly #clients: HttpClients;
  readonly #auth: RegistryAuth;
  readonly #retry: RetryPolicy;
  readonly #userAgent: string;
  readonly #schemes = new Map<string, "https" | "http">();
  readonly #deadlines: Deadlines;

  /** Creates a transport; no I/O happens until the first request. */
  constructor(options: TransportOptions = {}) {
    this.#options = options;
    this.#insecure = new Set((options.insecureRegistries ?? []).map((h) => normalizeRegistry(h)));
    this.#clients = new HttpClients(options);
    this.#retry = retryPolicy(options.retry);
    this.#userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.#deadlines = {
      headersMs: options.headersTimeoutMs ?? DEFAULT_DEADLINES.headersMs,
      documentMs: options.documentTimeoutMs ?? DEFAULT_DEADLINES.documentMs,
      blobIdleMs: options.idleTimeoutMs ?? DEFAULT_DEADLINES.blobIdleMs,
      blobMinBytesPerSecond: options.minBlobBytesPerSecond ?? DEFAULT_DEADLINES.blobMinBytesPerSecond,
      blobRateWindowMs: options.blobRateWindowMs ?? DEFAULT_DEADLINES.blobRateWindowMs,
    };
    this.#auth = new RegistryAuth({
      credentials: options.credentials,
      userAgent: this.#userAgent,
      plainAllowed: (host) => this.#plainAllowed(host),
      send: (url, out, authorization, registry) => this.#fetchFollowing(url, out, authorization, registry),
      unreachable: (err, realm) =>
        err instanceof HeadersTimeout
          ? err.toError(1)
          : new DangerzoneError("REGISTRY_UNREACHABLE", `cannot reach the token server ${redactUrl(realm)}`, {
            cause: redactedCause(err),
          }),
      log: (line) => this.#log(line),
    });
  }

  /** Closes every HTTP client. */
  close(): void {
    this.#clients.close();
  }

  /** Same as {@linkcode Transport.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A description of the proxy used for `registry`, or `direct` (for `--debug` and tests). */
  async describeRoute(registry: string): Promise<string> {
    const url = new URL(`${this.#scheme(registry)}://${apiHost(registry)}/v2/`);
    const proxy = await this.#clients.proxyFor(url);
    return proxy === undefined ? "direct" : proxy.display;
  }

  /**
   * Sends a request with auth, retries and redirects. Returns 2xx responses and statuses in
   * `acceptStatus`; everything else throws a `REGISTRY_*` error with a redacted URL.
   */
  async request(req: TransportRequest): Promise<TransportResponse> {
    const retry = this.#retry;
    let attempt = 0;
    let refreshedAuth = false;
    for (;;) {
      const url = this.#url(req);
      // credentials go only to the registry's own origin (never to an absolute URL elsewhere);
      // a redirect elsewhere drops them, and a challenge from elsewhere is refused below
      const ownOrigin = url.host === apiHost(req.registry);
      const authorization = ownOrigin
        ? await this.#auth.authorization(req.registry, req.scope, req.signal)
        : undefined;
      let result: Hop;
      try {
        result = await this.#fetchFollowing(url, this.#outgoing(req), authorization, req.registry);
      } catch (err) {
        if (err instanceof DangerzoneError || isAbort(err, req.signal)) throw err;
        // a dropped connection or a response-headers timeout: retried alike (a stream body is gone)
        if (attempt + 1 < retry.attempts && !(req.body instanceof ReadableStream)) {
          attempt++;
          this.#log(`${req.method ?? "GET"} ${redactUrl(url)} failed (${redactText(String(err))}); retrying`);
          await sleep(backoff(retry, attempt), req.signal);
          continue;
        }
        if (err instanceof HeadersTimeout) throw err.toError(retry.attempts);
        throw new DangerzoneError("REGISTRY_UNREACHABLE", `cannot reach ${redactUrl(url)}`, {
          cause: redactedCause(err),
          hint: "check the network, proxy settings and the registry address",
        });
      }
      const { response } = result;
      const shown = redactUrl(result.url);
      this.#log(`${req.method ?? "GET"} ${shown} -> ${response.status}`);
      const status = response.status;
      if ((status >= 200 && status < 300) || (req.acceptStatus ?? []).includes(status)) {
        return { response, url: shown };
      }
      switch (status) {
        case 401: {
          const header = response.headers.get("www-authenticate");
          await discard(response);
          if (result.url.host !== apiHost(req.registry)) {
            // a challenge from where a redirect (or an absolute URL) took us is never the
            // registry's: answering it would hand the registry's credentials to that host
            throw new DangerzoneError(
              "REGISTRY_UNAUTHORIZED",
              `${result.url.host}, reached from ${req.registry}, asks for authentication; ` +
                `the credentials of ${req.registry} are sent only to ${req.registry} itself`,
              {
                hint:
                  "the registry sent us to storage that refuses anonymous access; report it to the registry",
              },
            );
          }
          if (refreshedAuth || header === null || req.body instanceof ReadableStream) {
            throw new DangerzoneError(
              "REGISTRY_UNAUTHORIZED",
              `the registry refused our credentials for ${shown}`,
              {
                hint: "log in (podman login / docker login) or check the credentials for this registry",
              },
            );
          }
          refreshedAuth = true;
          this.#auth.onChallenge(req.registry, header, req.scope);
          continue;
        }
        case 403: {
          const code = await errorCode(response);
          throw new DangerzoneError("REGISTRY_DENIED", `access denied to ${shown}${code}`, {
            hint: "check that the image exists and that your credentials may read it",
          });
        }
        case 404: {
          const code = await errorCode(response);
          throw new DangerzoneError("REGISTRY_NOT_FOUND", `not found: ${shown}${code}`, {
            hint: "check the image name, tag or digest",
          });
        }
        case 408:
        case 429:
        case 500:
        case 502:
        case 503:
        case 504:
        default: {
          if (!isRetryableStatus(status)) {
            const code = await errorCode(response);
            throw new DangerzoneError("REGISTRY_HTTP", `unexpected HTTP ${status} from ${shown}${code}`, {
              hint: "the registry rejected the request; try again later or report it",
            });
          }
          const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
          await discard(response);
          const cap = retry.retryAfterCapMs;
          if (retryAfter !== undefined && retryAfter > cap) {
            throw new DangerzoneError(
              "REGISTRY_RATE_LIMITED",
              `the registry asks to wait ${Math.ceil(retryAfter / 1000)} s before retrying ${shown}`,
              { hint: "try again later" },
            );
          }
          if (attempt + 1 >= retry.attempts || req.body instanceof ReadableStream) {
            const code: ErrorCode = status === 429 ? "REGISTRY_RATE_LIMITED" : "REGISTRY_RETRY_EXHAUSTED";
            throw new DangerzoneError(code, `HTTP ${status} from ${shown} after ${attempt + 1} attempt(s)`, {
              hint: "the registry is overloaded or failing; try again later",
            });
          }
          attempt++;
          await sleep(retryAfter ?? backoff(retry, attempt), req.signal);
          continue;
        }
      }
    }
  }

  /**
   * A reader of a blob body that resumes after a dropped connection with `Range: bytes=N-` from
   * where it stopped. A resumed response must be 206 with a `Content-Range` starting at exactly N;
   * a 200 is accepted only if its first N bytes can be discarded within a fixed limit. It reads
   * into the caller's buffers (no allocation per chunk), never repeats bytes and does not verify
   * them: feed them to a verifier.
   */
  async openBlobReader(req: TransportRequest, options: OpenBlobOptions): Promise<BlobReader> {
    return await openBlobReader(
      {
        request: (r) => this.request(r),
        retry: this.#retry,
        deadlines: this.#deadlines,
        maxRangeDiscard: this.#options.maxRangeDiscard ?? 32 * 1024 * 1024,
        log: (line) => this.#log(line),
      },
      req,
      options,
    );
  }

  // ---- internals -------------------------------------------------------------------------

  #log(line: string): void {
    this.#options.onLog?.(redactText(line));
  }

  #plainAllowed(host: string): boolean {
    const h = normalizeRegistry(host);
    return isLoopback(h) || this.#insecure.has(h) || this.#insecure.has(h.replace(/:\d+$/, ""));
  }

  #scheme(registry: string): "https" | "http" {
    const known = this.#schemes.get(registry);
    if (known !== undefined) return known;
    const h = normalizeRegistry(registry);
    if (this.#insecure.has(h)) return "http";
    return "https";
  }

  #url(req: TransportRequest): URL {
    if (/^https?:\/\//i.test(req.path)) {
      const u = new URL(req.path);
      if (u.protocol === "http:" && !this.#plainAllowed(u.host)) {
        throw new DangerzoneError("REGISTRY_INSECURE", `refusing plain HTTP to ${redactUrl(u)}`, {
          hint: "use --insecure-registry HOST only for registries you trust on a trusted network",
        });
      }
      return u;
    }
    if (!req.path.startsWith("/v2/")) {
      throw new DangerzoneError("INTERNAL", "registry path must start with /v2/");
    }
    return new URL(`${this.#scheme(req.registry)}://${apiHost(req.registry)}${req.path}`);
  }

  /** Sends `out` to `start` following redirects; `registry` is whose TLS fallback may apply. */
  async #fetchFollowing(
    start: URL,
    out: Outgoing,
    authorization: string | undefined,
    registry: string,
  ): Promise<Hop> {
    return await followRedirects(start, out, authorization, {
      send: (url, init) => this.#fetchWithFallback(url, registry, out, init),
      plainAllowed: (host) => this.#plainAllowed(host),
      log: (line) => this.#log(line),
    });
  }

  #outgoing(req: TransportRequest): Outgoing {
    return {
      method: req.method ?? "GET",
      headers: req.headers,
      body: req.body,
      bodyLength: req.body instanceof ReadableStream ? req.bodyLength : req.body?.byteLength,
      signal: req.signal,
      userAgent: this.#userAgent,
      connection: req.connection,
      onRedirect: req.onRedirect,
    };
  }

  /**
   * One fetch. A loopback registry tried over https falls back to plain http once, and only when
   * the server demonstrably does not speak TLS (it answered the handshake with non-TLS bytes).
   * A certificate that does not verify is never a reason to downgrade: it fails at once with
   * `REGISTRY_UNREACHABLE` (not retried, for any host).
   */
  async #fetchWithFallback(
    url: URL,
    registry: string,
    out: Outgoing,
    init: RequestInit,
  ): Promise<Hop> {
    const signal = out.signal;
    const client = await this.#clients.client(url, out.connection);
    const firstContact = url.protocol === "https:" && url.host === apiHost(registry) &&
      !this.#schemes.has(registry) && isLoopback(normalizeRegistry(registry));
    let response: Response;
    try {
      response = await this.#fetchOnce(url, client, out, init);
    } catch (err) {
      if (isAbort(err, signal) || url.protocol !== "https:") throw err;
      const tls = classifyTlsFailure(err);
      if (tls?.kind === "certificate") {
        throw new DangerzoneError(
          "REGISTRY_UNREACHABLE",
          `TLS certificate of ${url.host} is not trusted (${tls.reason})`,
          {
            cause: redactedCause(err),
            hint: "if the registry uses a private CA, pass it with --ca-cert FILE; " +
              "otherwise the connection may be intercepted",
          },
        );
      }
      if (!firstContact || tls?.kind !== "not-tls") throw err;
      const plain = new URL(url);
      plain.protocol = "http:";
      response = await this.#fetchOnce(plain, await this.#clients.client(plain, out.connection), out, init);
      this.#schemes.set(registry, "http");
      this.#log(`${registry} does not speak TLS; using plain HTTP (loopback)`);
      return { response, url: plain };
    }
    if (firstContact) this.#schemes.set(registry, "https");
    return { response, url };
  }

  /**
   * The one `fetch`: its response headers must arrive within the headers deadline (plus the
   * time a request body takes at the minimum rate: an upload is not a silent server), and the
   * response carries the document deadline of this exchange (enforced by `readLimited`).
   */
  async #fetchOnce(
    url: URL,
    client: Deno.HttpClient,
    out: Outgoing,
    init: RequestInit,
  ): Promise<Response> {
    const started = Date.now();
    const { headersMs, documentMs, blobMinBytesPerSecond } = this.#deadlines;
    const length = out.bodyLength ?? 0;
    const sending = blobMinBytesPerSecond > 0 ? Math.ceil(length / blobMinBytesPerSecond * 1000) : 0;
    const response = await withHeadersDeadline(
      url.host,
      headersMs + sending,
      out.signal,
      (s) => fetch(url, { ...init, signal: s, client }),
    );
    setDocumentDeadline(response, { host: url.host, at: started + documentMs, ms: documentMs });
    return response;
  }
}
