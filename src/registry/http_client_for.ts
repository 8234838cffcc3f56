/**
 * A `Deno.HttpClient` for one URL outside the registry API (Sigstore's TUF repository), routed the
 * way registry traffic is: an explicit `--proxy`, else Tor on Tails (isolated stream), else
 * `HTTPS_PROXY` / `HTTP_PROXY` honouring `NO_PROXY`; extra CAs from `--ca-cert`. The proxy rules
 * themselves live in `_proxy.ts` (shared with the registry transport).
 *
 * @module
 */
import { HttpClients, type HttpClientsOptions } from "./_http_client.ts";
import type { ProxyChoice } from "./_proxy.ts";

/** Options of {@linkcode httpClientFor}: the registry transport's route options. */
export interface HttpClientForOptions extends HttpClientsOptions {}

/** An HTTP client and the route it takes, for display. Close it when done. */
export interface RoutedHttpClient extends Disposable {
  /** Pass as `fetch(url, { client })`. */
  readonly client: Deno.HttpClient;
  /** `direct`, or the proxy without credentials. */
  readonly route: string;
}

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
  const clients = new HttpClients(options);
  try {
    return await clients.proxyFor(url);
  } finally {
    clients.close();
  }
}

/**
 * Creates the HTTP client for `url` (dispose it: `using http = await httpClientFor(...)`), through the
 * same route choice and client set-up as registry traffic (`_http_client.ts`).
 *
 * @example
 * ```ts
 * import { httpClientFor } from "./http_client_for.ts";
 * using http = await httpClientFor(new URL("https://tuf-repo-cdn.sigstore.dev/"), { env: {} });
 * ```
 */
export async function httpClientFor(url: URL, options: HttpClientForOptions = {}): Promise<RoutedHttpClient> {
  const clients = new HttpClients(options);
  try {
    const proxy = await clients.proxyFor(url);
    const client = await clients.client(url);
    return {
      client,
      route: proxy === undefined ? "direct" : proxy.display,
      [Symbol.dispose](): void {
        clients.close();
      },
    };
  } catch (err) {
    clients.close();
    throw err;
  }
}
