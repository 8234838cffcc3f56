/**
 * All HTTP policy of the registry client, in one place (regclient `reghttp`). This file is the
 * only caller of `fetch`. It handles: scheme choice (plain HTTP only for loopback or named
 * insecure registries), custom CAs and proxies (explicit, Tails/Tor, environment), auth
 * challenges and a token cache per scope, one retry `switch`, manual redirects (max 5, never
 * https -> http, `Authorization` dropped across origins), resumable blob streams with `Range`,
 * and redaction of every URL that reaches an error or a log line.
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "../errors.ts";
import { normalizeRegistry } from "../oci/reference.ts";
import { type Challenge, parseChallenges } from "./_challenge.ts";
import {
  CircuitNames,
  isTailsOsRelease,
  parseProxyUrl,
  type ProxyChoice,
  proxyFromEnv,
  torProxy,
} from "./_proxy.ts";
import { redactedCause, redactText, redactUrl } from "./_redact.ts";
import { classifyTlsFailure } from "./_tls_failure.ts";
import type { Credential, CredentialResolver } from "./credentials.ts";
import { readEnv } from "./_env.ts";

/** Retry policy for 408, 429, 5xx and dropped connections. */
export interface RetryOptions {
  /** Total tries per request, including the first (default 4). */
  attempts?: number;
  /** First backoff delay (default 500 ms), doubled per retry. */
  baseDelayMs?: number;
  /** Backoff ceiling (default 8000 ms). */
  maxDelayMs?: number;
  /** Longest `Retry-After` honoured; longer waits fail with `REGISTRY_RATE_LIMITED` (default 30 s). */
  retryAfterCapMs?: number;
}

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
  /** Abort a blob body after this long without bytes, then resume (default 60 s). */
  idleTimeoutMs?: number;
  /** Most bytes discarded when a server answers a `Range` request with 200 (default 32 MiB). */
  maxRangeDiscard?: number;
  /** Receives one redacted line per HTTP exchange (for `--debug`). */
  onLog?: (line: string) => void;
  // ranges: begin (parallel Range downloads, see parallel_download.ts)
  /**
   * One Tor circuit per connection: requests with a {@linkcode TransportRequest.connection} go
   * through a SOCKS5 proxy with a random username of their own (default: on with the Tails proxy).
   */
  torIsolation?: boolean;
  // ranges: end
}

/** One request to a registry. */
export interface TransportRequest {
  /** Registry `host[:port]` as in a reference (`docker.io` is mapped to its API host). */
  registry: string;
  /** Path starting with `/v2/`, with query; or an absolute URL (e.g. an upload `Location`). */
  path: string;
  /** HTTP method (default GET). */
  method?: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Request body (bytes, so that retries can resend it). */
  body?: Uint8Array;
  /** Token scope, e.g. `repository:foo/bar:pull`. */
  scope?: string;
  /** Non-2xx statuses returned to the caller instead of thrown (e.g. 404 for a fallback). */
  acceptStatus?: readonly number[];
  /** Aborts the request. */
  signal?: AbortSignal;
  // ranges: begin
  /** Send on this numbered connection: its own HTTP/1.1 client (own TCP connection, own Tor circuit). */
  connection?: number;
  /** Told each redirect target, unredacted and already checked (to ask a CDN again directly). */
  onRedirect?: (url: URL) => void;
  // ranges: end
}

/** A successful response and the final (post-redirect) URL, redacted. */
export interface TransportResponse {
  /** The response; the caller must consume or cancel its body. */
  response: Response;
  /** The redacted final URL, for messages. */
  url: string;
}

/** Options of {@linkcode Transport.openBlob}. */
export interface OpenBlobOptions {
  /** Expected total size: a short body is resumed until this many bytes arrived. */
  size: number;
  /** Start at this byte (a `.partial` file already holds the bytes before it). */
  offset?: number;
}

/** One read of a {@linkcode BlobReader}. */
export interface BlobRead {
  /**
   * The bytes read, at the start of the view passed in. When that view covered its whole buffer,
   * the buffer was moved (or, after a dropped connection, replaced by one of the same length):
   * continue with `bytes.buffer`. Empty when `done`.
   */
  bytes: Uint8Array<ArrayBuffer>;
  /** The blob ended (all `size` bytes were delivered, or the server sent more than promised). */
  done: boolean;
}

/** A resumable reader of a blob body that reads into the caller's buffers. */
export interface BlobReader {
  /** Reads at least one byte into `view` (its buffer is moved; use the returned one). */
  read(view: Uint8Array<ArrayBuffer>): Promise<BlobRead>;
  /** Stops reading and releases the connection. */
  cancel(reason?: unknown): Promise<void>;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

interface RegistryAuthState {
  challenge?: Challenge;
  tokens: Map<string, CachedToken>;
}

const MAX_REDIRECTS = 5;
const MAX_TOKEN_RESPONSE = 1024 * 1024;
const MAX_ERROR_BODY = 16 * 1024;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const DEFAULT_USER_AGENT = "dangerzone-image";
const SCRATCH_SIZE = 1024 * 1024;

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
  readonly #env: Record<string, string | undefined>;
  readonly #insecure: Set<string>;
  readonly #clients = new Map<string, Deno.HttpClient>();
  readonly #auth = new Map<string, RegistryAuthState>();
  readonly #schemes = new Map<string, "https" | "http">();
  #tailsProxy: ProxyChoice | undefined | null = null;
  readonly #circuits = new CircuitNames(); // ranges
  #closed = false;

  /** Creates a transport; no I/O happens until the first request. */
  constructor(options: TransportOptions = {}) {
    this.#options = options;
    this.#env = options.env ?? processEnv();
    this.#insecure = new Set((options.insecureRegistries ?? []).map((h) => normalizeRegistry(h)));
    if (options.proxy !== undefined) parseProxyUrl(options.proxy); // validate early
  }

  /** Closes every HTTP client. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  /** Same as {@linkcode Transport.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A description of the proxy used for `registry`, or `direct` (for `--debug` and tests). */
  async describeRoute(registry: string): Promise<string> {
    const url = new URL(`${this.#scheme(registry)}://${apiHost(registry)}/v2/`);
    const proxy = await this.#proxyFor(url);
    return proxy === undefined ? "direct" : proxy.display;
  }

  /**
   * Sends a request with auth, retries and redirects. Returns 2xx responses and statuses in
   * `acceptStatus`; everything else throws a `REGISTRY_*` error with a redacted URL.
   */
  async request(req: TransportRequest): Promise<TransportResponse> {
    const retry = this.#retry();
    let attempt = 0;
    let refreshedAuth = false;
    for (;;) {
      const url = this.#url(req);
      // credentials go only to the registry's own origin, never to an absolute URL elsewhere
      const ownOrigin = url.host === apiHost(req.registry);
      const authorization = ownOrigin
        ? await this.#authorization(req.registry, req.scope, req.signal)
        : undefined;
      let result: { response: Response; url: URL };
      try {
        result = await this.#fetchFollowing(url, req, authorization);
      } catch (err) {
        if (err instanceof DangerzoneError || isAbort(err, req.signal)) throw err;
        if (attempt + 1 < retry.attempts) {
          attempt++;
          this.#log(`${req.method ?? "GET"} ${redactUrl(url)} failed (${redactText(String(err))}); retrying`);
          await sleep(backoff(retry, attempt), req.signal);
          continue;
        }
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
          if (refreshedAuth || header === null) {
            throw new DangerzoneError(
              "REGISTRY_UNAUTHORIZED",
              `the registry refused our credentials for ${shown}`,
              {
                hint: "log in (podman login / docker login) or check the credentials for this registry",
              },
            );
          }
          refreshedAuth = true;
          this.#onChallenge(req.registry, header, req.scope);
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
          const retryable = status === 408 || status === 429 || status >= 500;
          if (!retryable) {
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
          if (attempt + 1 >= retry.attempts) {
            const code: ErrorCode = status === 429 ? "REGISTRY_RATE_LIMITED" : "REGISTRY_RETRY_EXHAUSTED";
            throw new DangerzoneError(code, `HTTP ${status} from ${shown} after ${retry.attempts} attempts`, {
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
    const size = options.size;
    let pos = options.offset ?? 0;
    const idleMs = this.#options.idleTimeoutMs ?? 60_000;
    const maxDiscard = this.#options.maxRangeDiscard ?? 32 * 1024 * 1024;
    const maxStalls = this.#retry().attempts;
    let stalls = 0;
    let totalResumes = 0;
    let reader: ReadableStreamBYOBReader | undefined;
    let skip = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controllerAbort: AbortController | undefined;
    const userSignal = req.signal;

    const arm = () => {
      if (timer !== undefined) clearTimeout(timer);
      const ac = controllerAbort;
      timer = setTimeout(() => ac?.abort(new DOMException("idle timeout", "TimeoutError")), idleMs);
    };
    const disarm = () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };

    const open = async (): Promise<void> => {
      controllerAbort = new AbortController();
      const signal = userSignal === undefined
        ? controllerAbort.signal
        : AbortSignal.any([userSignal, controllerAbort.signal]);
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      if (pos > 0) headers.Range = `bytes=${pos}-`;
      arm();
      let result: TransportResponse;
      try {
        result = await this.request({ ...req, headers, signal, acceptStatus: [206] });
      } finally {
        disarm();
      }
      const { response, url } = result;
      if (response.body === null) {
        throw new DangerzoneError("REGISTRY_PROTOCOL", `empty body from ${url}`);
      }
      skip = 0;
      if (pos > 0 && response.status === 206) {
        const start = contentRangeStart(response.headers.get("content-range"));
        if (start !== pos) {
          await discard(response);
          throw new DangerzoneError(
            "REGISTRY_PROTOCOL",
            `resumed download of ${url} starts at byte ${start ?? "?"} instead of ${pos}`,
            { hint: "the registry or proxy mishandles Range requests; try again" },
          );
        }
      } else if (pos > 0) {
        if (pos > maxDiscard) {
          await discard(response);
          throw new DangerzoneError(
            "REGISTRY_PROTOCOL",
            `the server ignored the Range request for ${url} and ${pos} bytes are too many to skip`,
            { hint: "try again; the download restarts from the beginning" },
          );
        }
        skip = pos;
      } else if (response.status !== 200) {
        await discard(response);
        throw new DangerzoneError("REGISTRY_PROTOCOL", `unexpected HTTP ${response.status} for ${url}`);
      }
      reader = response.body.getReader({ mode: "byob" });
    };

    // A read from the body moves (detaches) the buffer it reads into, and a failed read loses it.
    // Reads go straight into the caller's buffer only when the view covers all of it (nothing
    // of the caller's can be lost); otherwise into a scratch buffer, copied into the view.
    let scratch: ArrayBuffer | undefined;
    const read = async (into: Uint8Array<ArrayBuffer>): Promise<BlobRead> => {
      if (into.byteLength === 0) throw new DangerzoneError("INTERNAL", "blob read into an empty view");
      const direct = into.byteOffset === 0 && into.byteLength === into.buffer.byteLength;
      const length = direct ? into.byteLength : Math.min(into.byteLength, SCRATCH_SIZE);
      const fresh = (): Uint8Array<ArrayBuffer> => {
        if (direct) return new Uint8Array(new ArrayBuffer(length));
        if (scratch === undefined || scratch.byteLength < length) scratch = new ArrayBuffer(SCRATCH_SIZE);
        return new Uint8Array(scratch, 0, length);
      };
      let target = direct ? into : fresh();
      for (;;) {
        if (reader === undefined) await open();
        const r = reader;
        if (r === undefined) throw new DangerzoneError("INTERNAL", "no blob reader");
        let chunk: ReadableStreamReadResult<Uint8Array<ArrayBuffer>>;
        arm();
        try {
          chunk = await r.read(target);
        } catch (err) {
          disarm();
          reader = undefined;
          scratch = undefined;
          target = fresh();
          if (isAbort(err, userSignal)) throw err;
          stalls++;
          totalResumes++;
          if (stalls > maxStalls || totalResumes > 100) {
            throw new DangerzoneError("SHORT_READ", `the connection dropped ${totalResumes} times`, {
              cause: redactedCause(err),
              hint: "check the network and try again; the download resumes where it stopped",
            });
          }
          this.#log(`blob connection dropped at byte ${pos}; resuming`);
          await sleep(backoff(this.#retry(), stalls), userSignal);
          continue;
        }
        disarm();
        const got = chunk.value;
        if (got !== undefined) {
          target = new Uint8Array(got.buffer, 0, length);
          if (!direct) scratch = got.buffer;
        }
        if (chunk.done) {
          reader = undefined;
          if (pos < size && skip === 0) {
            stalls++;
            totalResumes++;
            if (stalls > maxStalls || totalResumes > 100) {
              throw new DangerzoneError("SHORT_READ", `the blob ended at byte ${pos} of ${size}`, {
                hint: "try again; the download resumes where it stopped",
              });
            }
            this.#log(`blob body ended early at byte ${pos}; resuming`);
            continue;
          }
          return { bytes: direct ? target.subarray(0, 0) : into.subarray(0, 0), done: true };
        }
        let n = got?.byteLength ?? 0;
        if (skip > 0) {
          if (n <= skip) {
            skip -= n;
            continue;
          }
          target.copyWithin(0, skip, n);
          n -= skip;
          skip = 0;
        }
        if (n === 0) continue;
        pos += n;
        stalls = 0;
        if (direct) return { bytes: target.subarray(0, n), done: false };
        into.set(target.subarray(0, n));
        return { bytes: into.subarray(0, n), done: false };
      }
    };

    await open();
    return {
      read,
      cancel: async (reason?: unknown) => {
        disarm();
        await reader?.cancel(reason).catch(() => {});
        reader = undefined;
      },
    };
  }

  // ---- internals -------------------------------------------------------------------------

  #retry(): Required<RetryOptions> {
    const r = this.#options.retry ?? {};
    return {
      attempts: Math.max(1, r.attempts ?? 4),
      baseDelayMs: r.baseDelayMs ?? 500,
      maxDelayMs: r.maxDelayMs ?? 8000,
      retryAfterCapMs: r.retryAfterCapMs ?? 30_000,
    };
  }

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

  async #fetchFollowing(
    start: URL,
    req: TransportRequest,
    authorization: string | undefined,
  ): Promise<{ response: Response; url: URL }> {
    let url = start;
    let method: string = req.method ?? "GET";
    let body: Uint8Array | undefined = req.body;
    let auth = authorization;
    for (let hop = 0;; hop++) {
      const headers = new Headers(req.headers ?? {});
      headers.set("User-Agent", this.#options.userAgent ?? DEFAULT_USER_AGENT);
      if (auth !== undefined) headers.set("Authorization", auth);
      const sent = await this.#fetchWithFallback(url, req, {
        method,
        headers,
        ...(body === undefined ? {} : { body: body as Uint8Array<ArrayBuffer> }),
        redirect: "manual",
        ...(req.signal === undefined ? {} : { signal: req.signal }),
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
      if (next.protocol === "http:" && !this.#plainAllowed(next.host)) {
        throw new DangerzoneError("REGISTRY_INSECURE", `refusing redirect to plain HTTP ${redactUrl(next)}`);
      }
      if (next.origin !== url.origin) auth = undefined;
      if (
        response.status === 303 || ((response.status === 301 || response.status === 302) && method === "POST")
      ) {
        method = method === "HEAD" ? "HEAD" : "GET";
        body = undefined;
      }
      this.#log(`redirect ${response.status} -> ${redactUrl(next)}`);
      req.onRedirect?.(next); // ranges
      url = next;
    }
  }

  /**
   * One fetch. A loopback registry tried over https falls back to plain http once, and only when
   * the server demonstrably does not speak TLS (it answered the handshake with non-TLS bytes).
   * A certificate that does not verify is never a reason to downgrade: it fails at once with
   * `REGISTRY_UNREACHABLE` (not retried, for any host).
   */
  async #fetchWithFallback(
    url: URL,
    req: TransportRequest,
    init: RequestInit,
  ): Promise<{ response: Response; url: URL }> {
    const client = await this.#client(url, req.connection); // ranges: one client per connection
    const firstContact = url.protocol === "https:" && url.host === apiHost(req.registry) &&
      !this.#schemes.has(req.registry) && isLoopback(normalizeRegistry(req.registry));
    let response: Response;
    try {
      response = await fetch(url, { ...init, client });
    } catch (err) {
      if (isAbort(err, req.signal) || url.protocol !== "https:") throw err;
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
      response = await fetch(plain, { ...init, client: await this.#client(plain, req.connection) });
      this.#schemes.set(req.registry, "http");
      this.#log(`${req.registry} does not speak TLS; using plain HTTP (loopback)`);
      return { response, url: plain };
    }
    if (firstContact) this.#schemes.set(req.registry, "https");
    return { response, url };
  }

  async #proxyFor(url: URL): Promise<ProxyChoice | undefined> {
    if (this.#options.proxy !== undefined) return parseProxyUrl(this.#options.proxy);
    const tails = await this.#tails();
    if (tails !== undefined) return tails;
    return proxyFromEnv(this.#env, url);
  }

  async #tails(): Promise<ProxyChoice | undefined> {
    if (this.#tailsProxy !== null) return this.#tailsProxy;
    let text = "";
    try {
      text = await Deno.readTextFile(this.#options.osReleasePath ?? "/etc/os-release");
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw new DangerzoneError("IO", "cannot read /etc/os-release to detect Tails", { cause: err });
      }
    }
    this.#tailsProxy = isTailsOsRelease(text) ? torProxy(this.#options.torSocksPort ?? 9050) : undefined;
    return this.#tailsProxy;
  }

  async #client(url: URL, connection?: number): Promise<Deno.HttpClient> {
    if (this.#closed) throw new DangerzoneError("INTERNAL", "transport used after close()");
    let proxy = await this.#proxyFor(url);
    // ranges: begin (a numbered connection gets its own client, so its own TCP connection and circuit)
    if (proxy !== undefined && connection !== undefined) {
      const isolate = this.#options.torIsolation ?? (proxy === this.#tailsProxy);
      if (isolate) proxy = this.#circuits.isolate(proxy, connection);
    }
    const key =
      (proxy === undefined
        ? "direct"
        : `${proxy.url}|${proxy.basicAuth?.username ?? ""}|${proxy.basicAuth?.password ?? ""}`) +
      (connection === undefined ? "" : `#${connection}`);
    // ranges: end
    const existing = this.#clients.get(key);
    if (existing !== undefined) return existing;
    const options: Deno.CreateHttpClientOptions = connection === undefined ? {} : { http2: false }; // ranges
    if (this.#options.caCerts !== undefined && this.#options.caCerts.length > 0) {
      options.caCerts = [...this.#options.caCerts];
    }
    if (proxy !== undefined) {
      options.proxy = proxy.basicAuth === undefined
        ? { url: proxy.url }
        : { url: proxy.url, basicAuth: proxy.basicAuth };
    }
    let client: Deno.HttpClient;
    try {
      client = Deno.createHttpClient(options);
    } catch (cause) {
      throw new DangerzoneError(
        "CONFIG_INVALID",
        "cannot set up the HTTP client (CA certificates or proxy)",
        {
          cause: redactedCause(cause),
          hint: "check --ca-cert files (PEM) and the proxy URL",
        },
      );
    }
    this.#clients.set(key, client);
    return client;
  }

  #state(registry: string): RegistryAuthState {
    let s = this.#auth.get(registry);
    if (s === undefined) {
      s = { tokens: new Map() };
      this.#auth.set(registry, s);
    }
    return s;
  }

  #onChallenge(registry: string, header: string, scope: string | undefined): void {
    const challenges = parseChallenges(header);
    const chosen = challenges.find((c) => c.scheme === "bearer") ??
      challenges.find((c) => c.scheme === "basic");
    if (chosen === undefined) {
      throw new DangerzoneError("REGISTRY_UNAUTHORIZED", `unsupported auth challenge from ${registry}`, {
        hint: "this registry needs an authentication scheme we do not support",
      });
    }
    const state = this.#state(registry);
    state.challenge = chosen;
    state.tokens.delete(tokenKey(chosen, scope));
  }

  async #authorization(
    registry: string,
    scope: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const state = this.#auth.get(registry);
    const challenge = state?.challenge;
    if (state === undefined || challenge === undefined) return undefined;
    if (challenge.scheme === "basic") {
      const cred = await this.#credential(registry);
      if (cred === undefined || cred.kind !== "basic") {
        throw new DangerzoneError("REGISTRY_UNAUTHORIZED", `${registry} requires a login`, {
          hint: "log in with podman login or docker login",
        });
      }
      return `Basic ${btoa(`${cred.username}:${cred.password}`)}`;
    }
    const key = tokenKey(challenge, scope);
    const cached = state.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.#fetchToken(registry, challenge, scope, signal);
    state.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  async #credential(registry: string): Promise<Credential | undefined> {
    return await this.#options.credentials?.lookup(normalizeRegistry(registry));
  }

  async #fetchToken(
    registry: string,
    challenge: Challenge,
    scope: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const realmText = challenge.params.realm;
    if (realmText === undefined) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `auth challenge from ${registry} has no realm`);
    }
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch (cause) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `auth realm from ${registry} is not a URL`, { cause });
    }
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && this.#plainAllowed(realm.host))) {
      throw new DangerzoneError("REGISTRY_INSECURE", `refusing token realm ${redactUrl(realm)}`, {
        hint: "token servers must use https unless they are on loopback or named with --insecure-registry",
      });
    }
    const service = challenge.params.service;
    const wantScope = scope ?? challenge.params.scope;
    const cred = await this.#credential(registry);
    const headers: Record<string, string> = {};
    let method: "GET" | "POST" = "GET";
    let body: Uint8Array | undefined;
    if (cred?.kind === "identityToken") {
      method = "POST";
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: cred.token });
      form.set("client_id", this.#options.userAgent ?? DEFAULT_USER_AGENT);
      if (service !== undefined) form.set("service", service);
      if (wantScope !== undefined) form.set("scope", wantScope);
      body = new TextEncoder().encode(form.toString());
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    } else {
      if (service !== undefined) realm.searchParams.set("service", service);
      if (wantScope !== undefined) realm.searchParams.set("scope", wantScope);
      if (cred?.kind === "basic") {
        headers.Authorization = `Basic ${btoa(`${cred.username}:${cred.password}`)}`;
      }
    }
    const req: TransportRequest = {
      registry,
      path: realm.toString(),
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      ...(signal === undefined ? {} : { signal }),
    };
    let response: Response;
    try {
      const auth = headers.Authorization;
      delete headers.Authorization;
      ({ response } = await this.#fetchFollowing(realm, req, auth));
    } catch (err) {
      if (err instanceof DangerzoneError || isAbort(err, signal)) throw err;
      throw new DangerzoneError("REGISTRY_UNREACHABLE", `cannot reach the token server ${redactUrl(realm)}`, {
        cause: redactedCause(err),
      });
    }
    this.#log(`${method} ${redactUrl(realm)} -> ${response.status}`);
    if (response.status === 401 || response.status === 403) {
      await discard(response);
      throw new DangerzoneError(
        "REGISTRY_UNAUTHORIZED",
        `the token server for ${registry} refused the request`,
        {
          hint: "check your login for this registry",
        },
      );
    }
    if (response.status !== 200) {
      await discard(response);
      throw new DangerzoneError(
        "REGISTRY_HTTP",
        `token server for ${registry} answered HTTP ${response.status}`,
      );
    }
    const bytes = await readLimited(response, MAX_TOKEN_RESPONSE, "token response");
    let untrusted: unknown;
    try {
      untrusted = JSON.parse(new TextDecoder().decode(bytes));
    } catch (cause) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `token server for ${registry} sent invalid JSON`, {
        cause,
      });
    }
    if (!isJsonObject(untrusted)) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `token server for ${registry} sent no token`);
    }
    const fields = untrusted;
    const token = typeof fields.token === "string" && fields.token !== ""
      ? fields.token
      : typeof fields.access_token === "string" && fields.access_token !== ""
      ? fields.access_token
      : undefined;
    if (token === undefined || /[\s]/.test(token)) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `token server for ${registry} sent no usable token`);
    }
    const expiresIn = typeof fields.expires_in === "number" && fields.expires_in > 0 ? fields.expires_in : 60;
    return { token, expiresAt: Date.now() + Math.max(1, expiresIn - 10) * 1000 };
  }
}

/**
 * Reads a response body up to `limit` bytes; more is `SIZE_LIMIT_EXCEEDED` (checked while
 * streaming, so an endless body cannot exhaust memory). A `Content-Length` over the limit fails
 * before reading.
 */
export async function readLimited(response: Response, limit: number, what: string): Promise<Uint8Array> {
  const declared = response.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await discard(response);
    throw new DangerzoneError(
      "SIZE_LIMIT_EXCEEDED",
      `${what} is ${declared} bytes, more than the ${limit} allowed`,
    );
  }
  if (response.body === null) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new DangerzoneError("SIZE_LIMIT_EXCEEDED", `${what} is larger than the ${limit} bytes allowed`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** The host the distribution API of `registry` answers on (`docker.io` -> `registry-1.docker.io`). */
export function apiHost(registry: string): string {
  return normalizeRegistry(registry) === "docker.io" ? "registry-1.docker.io" : registry;
}

/** True for `localhost`, 127.0.0.0/8 and ::1, with or without a port. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/:\d+$/, "");
  return h === "localhost" || h === "[::1]" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

function contentRangeStart(value: string | null): number | undefined {
  if (value === null) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  return m ? Number(m[1]) : undefined;
}

function tokenKey(challenge: Challenge, scope: string | undefined): string {
  return `${challenge.params.realm ?? ""}|${challenge.params.service ?? ""}|${
    scope ?? challenge.params.scope ?? ""
  }`;
}

function backoff(retry: Required<RetryOptions>, attempt: number): number {
  const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp * (0.5 + Math.random() * 0.5));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && (err === signal.reason || (err instanceof DOMException));
}

async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // the body is being thrown away; a failure to cancel it changes nothing
  }
}

async function errorCode(response: Response): Promise<string> {
  try {
    const bytes = await readLimited(response, MAX_ERROR_BODY, "error body");
    const untrusted: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof untrusted === "object" && untrusted !== null && "errors" in untrusted) {
      const errors = untrusted.errors;
      if (Array.isArray(errors)) {
        const first: unknown = errors[0];
        if (typeof first === "object" && first !== null && "code" in first) {
          const code = first.code;
          if (typeof code === "string" && /^[A-Z_]{1,40}$/.test(code)) return ` (${code})`;
        }
      }
    }
  } catch {
    // the error body is informational only
  }
  return "";
}

function isJsonObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The variables read from the process environment (each on its own: a narrow `--allow-env` works). */
const PROXY_ENV: readonly string[] = [
  "HTTPS_PROXY",
  "https_proxy",
  "HTTP_PROXY",
  "http_proxy",
  "ALL_PROXY",
  "all_proxy",
  "NO_PROXY",
  "no_proxy",
];

function processEnv(): Record<string, string | undefined> {
  return readEnv(PROXY_ENV);
}
