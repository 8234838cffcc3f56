/**
 * A `Deno.HttpClient` for one URL outside the registry API (Sigstore's TUF repository), routed the
 * way registry traffic is: an explicit `--proxy`, else Tor on Tails (isolated stream), else
 * `HTTPS_PROXY` / `HTTP_PROXY` honouring `NO_PROXY`; extra CAs from `--ca-cert`. The proxy rules
 * themselves live in `_proxy.ts` (shared with the registry transport).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { readEnv } from "./_env.ts";
import { isTailsOsRelease, parseProxyUrl, type ProxyChoice, proxyFromEnv, torProxy } from "./_proxy.ts";
import { redactedCause } from "./_redact.ts";

/** Options of {@linkcode httpClientFor}. */
export interface HttpClientForOptions {
  /** `--proxy`: `http://`, `https://`, `socks5://`, `socks5h://` (user info allowed). */
  proxy?: string | undefined;
  /** Extra CA certificates (PEM text). */
  caCerts?: readonly string[] | undefined;
  /** Environment for the proxy variables (default: the process environment). */
  env?: Record<string, string | undefined> | undefined;
  /** Path of os-release, to detect Tails (default `/etc/os-release`). */
  osReleasePath?: string | undefined;
  /** Tor SOCKS port used on Tails (default 9050). */
  torSocksPort?: number | undefined;
}

/** An HTTP client and the route it takes, for display. Close it when done. */
export interface RoutedHttpClient extends Disposable {
  /** Pass as `fetch(url, { client })`. */
  readonly client: Deno.HttpClient;
  /** `direct`, or the proxy without credentials. */
  readonly route: string;
}

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

/**
 * The proxy the registry rules choose for `url`, or `undefined` for a direct connection.
 *
 * @example
 * ```ts
 * import { proxyForUrl } from "./http_client_for.ts";
 * const proxy = await proxyForUrl(new URL("https://tuf-repo-cdn.sigstore.dev/"), { env: {} });
 * ```
 */
export async function proxyForUrl(
  url: URL,
  options: HttpClientForOptions = {},
): Promise<ProxyChoice | undefined> {
  if (options.proxy !== undefined) return parseProxyUrl(options.proxy);
  let osRelease = "";
  try {
    osRelease = await Deno.readTextFile(options.osReleasePath ?? "/etc/os-release");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new DangerzoneError("IO", "cannot read /etc/os-release to detect Tails", { cause: err });
    }
  }
  if (isTailsOsRelease(osRelease)) return torProxy(options.torSocksPort ?? 9050);
  return proxyFromEnv(options.env ?? readEnv(PROXY_ENV), url);
}

/**
 * Creates the HTTP client for `url` (dispose it: `using http = await httpClientFor(...)`).
 *
 * @example
 * ```ts
 * import { httpClientFor } from "./http_client_for.ts";
 * using http = await httpClientFor(new URL("https://tuf-repo-cdn.sigstore.dev/"), { env: {} });
 * ```
 */
export async function httpClientFor(url: URL, options: HttpClientForOptions = {}): Promise<RoutedHttpClient> {
  const proxy = await proxyForUrl(url, options);
  const clientOptions: Deno.CreateHttpClientOptions = {};
  if (options.caCerts !== undefined && options.caCerts.length > 0) {
    clientOptions.caCerts = [...options.caCerts];
  }
  if (proxy !== undefined) {
    clientOptions.proxy = proxy.basicAuth === undefined
      ? { url: proxy.url }
      : { url: proxy.url, basicAuth: proxy.basicAuth };
  }
  let client: Deno.HttpClient;
  try {
    client = Deno.createHttpClient(clientOptions);
  } catch (cause) {
    throw new DangerzoneError("CONFIG_INVALID", "cannot set up the HTTP client (CA certificates or proxy)", {
      cause: redactedCause(cause),
      hint: "check --ca-cert files (PEM) and the proxy URL",
    });
  }
  return {
    client,
    route: proxy === undefined ? "direct" : proxy.display,
    [Symbol.dispose](): void {
      client.close();
    },
  };
}
