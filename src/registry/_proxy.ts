/**
 * Proxy selection for registry traffic: an explicit `--proxy`, Tails (all traffic through Tor
 * with a random SOCKS username per run, for stream isolation), then `HTTPS_PROXY` / `HTTP_PROXY`
 * honouring `NO_PROXY`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";

/** A proxy as `Deno.createHttpClient` takes it, plus a display form without secrets. */
export interface ProxyChoice {
  /** Proxy URL without user info. */
  url: string;
  /** Credentials sent to the proxy (SOCKS5 username/password or HTTP Basic). */
  basicAuth?: { username: string; password: string };
  /** Display form, user info removed. */
  display: string;
}

/** Parses a proxy URL (`http://`, `https://`, `socks5://`, `socks5h://`, with optional user info). */
export function parseProxyUrl(text: string): ProxyChoice {
  let u: URL;
  try {
    u = new URL(text.includes("://") ? text : `http://${text}`);
  } catch (cause) {
    throw new DangerzoneError("USAGE", "invalid proxy URL", {
      cause,
      hint: "use http://host:port, https://host:port or socks5h://host:port",
    });
  }
  if (!["http:", "https:", "socks5:", "socks5h:"].includes(u.protocol)) {
    throw new DangerzoneError("USAGE", `unsupported proxy scheme '${u.protocol}'`, {
      hint: "use http://, https://, socks5:// or socks5h://",
    });
  }
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = "";
  u.password = "";
  const url = `${u.protocol}//${u.host}`;
  const choice: ProxyChoice = { url, display: url };
  if (username !== "") choice.basicAuth = { username, password };
  return choice;
}

/** True when `host` (no port) is matched by a `NO_PROXY` list. */
export function noProxyMatches(noProxy: string, host: string, port: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  for (const raw of noProxy.split(",")) {
    let entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    let entryPort: string | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !entry.includes("]") && (m[1] ?? "").split(":").length === 1) {
      entry = m[1] ?? "";
      entryPort = m[2];
    }
    entry = entry.replace(/^\[|\]$/g, "");
    if (entryPort !== undefined && entryPort !== port) continue;
    if (entry.startsWith("*.")) entry = entry.slice(1);
    if (entry.startsWith(".")) {
      if (h.endsWith(entry) || h === entry.slice(1)) return true;
    } else if (h === entry || h.endsWith(`.${entry}`)) {
      return true;
    }
  }
  return false;
}

/** The proxy from the environment for a URL, or `undefined` for a direct connection. */
export function proxyFromEnv(env: Record<string, string | undefined>, url: URL): ProxyChoice | undefined {
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? "";
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  if (noProxy !== "" && noProxyMatches(noProxy, url.hostname, port)) return undefined;
  const value = url.protocol === "https:"
    ? env.HTTPS_PROXY ?? env.https_proxy ?? env.ALL_PROXY ?? env.all_proxy
    : env.HTTP_PROXY ?? env.http_proxy ?? env.ALL_PROXY ?? env.all_proxy;
  if (value === undefined || value.trim() === "") return undefined;
  return parseProxyUrl(value.trim());
}

/** True when an os-release file's text names Tails. */
export function isTailsOsRelease(text: string): boolean {
  return /^(NAME="?Tails"?|ID="?tails"?)\s*$/mi.test(text);
}

/** The Tor SOCKS proxy with a fresh random username and password (Tor isolates streams by them). */
export function torProxy(port: number): ProxyChoice {
  const random = randomHex;
  const url = `socks5h://127.0.0.1:${port}`;
  return {
    url,
    display: `${url} (Tor, isolated stream)`,
    basicAuth: { username: random(), password: random() },
  };
}

/** True for a SOCKS5 proxy (`socks5://`, `socks5h://`), the kind that isolates circuits by username. */
export function isSocksProxy(proxy: ProxyChoice): boolean {
  return proxy.url.startsWith("socks5:") || proxy.url.startsWith("socks5h:");
}

/**
 * Random SOCKS credentials per numbered connection, new for each instance (one per run): Tor
 * (`IsolateSOCKSAuth`, on by default) puts streams with different credentials on different
 * circuits, so each parallel connection of a download gets its own circuit and exit.
 */
export class CircuitNames {
  readonly #names = new Map<number, { username: string; password: string }>();

  /** `proxy` with this connection's own random credentials; non-SOCKS proxies are returned as they are. */
  isolate(proxy: ProxyChoice, connection: number): ProxyChoice {
    if (!isSocksProxy(proxy)) return proxy;
    let auth = this.#names.get(connection);
    if (auth === undefined) {
      auth = { username: randomHex(), password: randomHex() };
      this.#names.set(connection, auth);
    }
    return { url: proxy.url, display: `${proxy.url} (isolated circuit ${connection})`, basicAuth: auth };
  }
}

function randomHex(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
