/**
 * Private: the HTTP clients of a transport, one per route. A route is direct or a proxy: an
 * explicit `--proxy`, Tor on Tails (checked once per run), or `HTTPS_PROXY`/`HTTP_PROXY`
 * honouring `NO_PROXY`. Every client trusts the extra CA certificates.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { readEnv } from "./_env.ts";
import {
  CircuitNames,
  isTailsOsRelease,
  parseProxyUrl,
  type ProxyChoice,
  proxyFromEnv,
  torProxy,
} from "./_proxy.ts";
import { redactedCause } from "./_redact.ts";

/** How {@linkcode HttpClients} chooses and sets up routes. */
export interface HttpClientsOptions {
  /** Extra CA certificates (PEM text) trusted for registry TLS. */
  caCerts?: readonly string[] | undefined;
  /** An explicit proxy URL for all traffic. */
  proxy?: string | undefined;
  /** Environment for the proxy variables (default: the process environment). */
  env?: Record<string, string | undefined> | undefined;
  /** Path of os-release, to detect Tails (default `/etc/os-release`). */
  osReleasePath?: string | undefined;
  /** Tor SOCKS port used on Tails (default 9050). */
  torSocksPort?: number | undefined;
  /**
   * One Tor circuit per numbered connection: its SOCKS5 proxy gets a random username of its own,
   * new for each run (default: on with the Tails proxy, off otherwise).
   */
  torIsolation?: boolean | undefined;
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

/** A cache of `Deno.HttpClient`s by route; close it to release them. */
export class HttpClients {
  readonly #options: HttpClientsOptions;
  readonly #env: Record<string, string | undefined>;
  readonly #clients = new Map<string, Deno.HttpClient>();
  #tailsProxy: ProxyChoice | undefined | null = null;
  readonly #circuits = new CircuitNames();
  #closed = false;

  /** Validates the proxy URL; no I/O happens until the first client. */
  constructor(options: HttpClientsOptions) {
    this.#options = options;
    this.#env = options.env ?? readEnv(PROXY_ENV);
    if (options.proxy !== undefined) parseProxyUrl(options.proxy); // validate early
  }

  /** Closes every client. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  /** The proxy for `url`, or `undefined` for a direct connection. */
  async proxyFor(url: URL): Promise<ProxyChoice | undefined> {
    if (this.#options.proxy !== undefined) return parseProxyUrl(this.#options.proxy);
    const tails = await this.#tails();
    if (tails !== undefined) return tails;
    return proxyFromEnv(this.#env, url);
  }

  /**
   * The client for `url`'s route, created on first use. A numbered `connection` (parallel ranges)
   * gets a client of its own: HTTP/1.1, so its own TCP connection, and through SOCKS with isolation
   * on, its own Tor circuit.
   */
  async client(url: URL, connection?: number): Promise<Deno.HttpClient> {
    if (this.#closed) throw new DangerzoneError("INTERNAL", "transport used after close()");
    let proxy = await this.proxyFor(url);
    if (proxy !== undefined && connection !== undefined) {
      const isolate = this.#options.torIsolation ?? (proxy === this.#tailsProxy);
      if (isolate) proxy = this.#circuits.isolate(proxy, connection);
    }
    const key =
      (proxy === undefined
        ? "direct"
        : `${proxy.url}|${proxy.basicAuth?.username ?? ""}|${proxy.basicAuth?.password ?? ""}`) +
      (connection === undefined ? "" : `#${connection}`);
    const existing = this.#clients.get(key);
    if (existing !== undefined) return existing;
    const options: Deno.CreateHttpClientOptions = connection === undefined ? {} : { http2: false };
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
}
