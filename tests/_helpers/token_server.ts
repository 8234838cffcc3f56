/**
 * A small in-process token server for the registry's token auth mode (the Docker token protocol).
 *
 * It issues ES256 JWTs signed with Web Crypto. The registry (CNCF distribution 2.8) finds the verification key
 * by the JWT header `kid`, which it derives from each certificate of its `rootcertbundle` as the libtrust key
 * ID: sha256 of the public key's SubjectPublicKeyInfo DER, first 30 bytes, base32 (RFC 4648, no padding),
 * in 12 groups of 4 joined by `:`. {@linkcode libtrustKeyId} reproduces that exactly.
 *
 * @module
 */
import { join } from "node:path";
import { runCommand } from "./process.ts";

/** One `access` claim entry of a registry token. */
export interface TokenAccess {
  /** `repository` or `registry`. */
  type: string;
  /** Repository name, or `catalog`. */
  name: string;
  /** Granted actions (`pull`, `push`, `delete`, `*`). */
  actions: string[];
}

/** A request the token server answered, for assertions (never holds passwords). */
export interface TokenRequest {
  /** `GET` or `POST`. */
  method: string;
  /** The user name from Basic auth or the password grant; undefined for anonymous requests. */
  account: string | undefined;
  /** The `service` parameter. */
  service: string | null;
  /** The raw `scope` parameters. */
  scopes: string[];
  /** What the issued token grants (empty when refused). */
  granted: TokenAccess[];
  /** HTTP status returned. */
  status: number;
}

/** Decides what a subject gets for one requested scope. */
export type GrantFunction = (account: string | undefined, requested: TokenAccess) => string[];

/** Options of {@linkcode startTokenServer}. */
export interface TokenServerOptions {
  /** Directory for the signing key and the certificate bundle. */
  dir: string;
  /** User names and passwords accepted with Basic auth. */
  users?: Record<string, string>;
  /** Grant `pull` to requests without credentials (default false: they get 401). */
  anonymousPull?: boolean;
  /** The `service` (JWT audience) expected and issued (default `dangerzone-test-registry`). */
  service?: string;
  /** The JWT issuer (default `dangerzone-test-issuer`). */
  issuer?: string;
  /** Token lifetime in seconds (default 300). */
  expiresInSeconds?: number;
  /**
   * Custom grant policy. Default: an authenticated user gets every requested action among pull, push, delete
   * and `*`; an anonymous one gets `pull` when `anonymousPull` is set, else nothing.
   */
  grant?: GrantFunction;
}

/** A running token server. */
export interface TokenServer extends AsyncDisposable {
  /** The realm URL to put in the registry config (`http://127.0.0.1:PORT/token`). */
  realm: string;
  /** Service name (JWT `aud`). */
  service: string;
  /** Issuer name (JWT `iss`). */
  issuer: string;
  /** PEM certificate bundle holding the signing key's certificate (registry `rootcertbundle`). */
  rootCertBundleFile: string;
  /** The JWT `kid` (libtrust key ID of the signing key). */
  keyId: string;
  /** Every request answered so far. */
  requests: TokenRequest[];
  /** Signs a token directly (for tests of expired or under-scoped tokens). */
  mint(
    claims: { subject: string; access: TokenAccess[]; expiresInSeconds?: number; audience?: string },
  ): Promise<
    string
  >;
  /** Shuts the server down. Idempotent. */
  stop(): Promise<void>;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The libtrust key ID of a public key given as SubjectPublicKeyInfo DER, as docker/libtrust and CNCF
 * distribution compute it.
 *
 * @example
 * ```ts
 * import { libtrustKeyId } from "./token_server.ts";
 * const id = await libtrustKeyId(new Uint8Array(91));
 * ```
 */
export async function libtrustKeyId(spkiDer: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", spkiDer as Uint8Array<ArrayBuffer>));
  const b32 = base32(hash.slice(0, 30));
  const groups: string[] = [];
  for (let i = 0; i < b32.length; i += 4) groups.push(b32.slice(i, i + 4));
  return groups.join(":");
}

function b64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function pem(label: string, der: Uint8Array): string {
  let bin = "";
  for (const b of der) bin += String.fromCharCode(b);
  const body = btoa(bin).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  const actions = scope.slice(last + 1).split(",").filter((a) => a !== "");
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function parseBasic(header: string | null): { user: string; password: string } | undefined {
  if (header === null || !/^basic /i.test(header)) return undefined;
  let decoded: string;
  try {
    decoded = atob(header.slice(6).trim());
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const GRANTABLE = new Set(["pull", "push", "delete", "*"]);

/**
 * Starts the token server on a free loopback port.
 *
 * @example
 * ```ts
 * import { startTokenServer } from "./token_server.ts";
 * await using ts = await startTokenServer({ dir: await Deno.makeTempDir(), users: { alice: "pw" } });
 * ```
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const service = options.service ?? "dangerzone-test-registry";
  const issuer = options.issuer ?? "dangerzone-test-issuer";
  const users = options.users ?? {};
  const anonymousPull = options.anonymousPull ?? false;
  const lifetime = options.expiresInSeconds ?? 300;

  const keyPair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keyPair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keyPair.privateKey));
  const keyId = await libtrustKeyId(spki);
  const keyFile = join(options.dir, "token-signing.key");
  const rootCertBundleFile = join(options.dir, "token-root-bundle.pem");
  await Deno.writeTextFile(keyFile, pem("PRIVATE KEY", pkcs8), { mode: 0o600 });
  await runCommand("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    keyFile,
    "-out",
    rootCertBundleFile,
    "-days",
    "2",
    "-subj",
    "/CN=dangerzone-image test token signer",
  ]);

  async function mint(claims: {
    subject: string;
    access: TokenAccess[];
    expiresInSeconds?: number;
    audience?: string;
  }): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const enc = new TextEncoder();
    const header = b64url(enc.encode(JSON.stringify({ typ: "JWT", alg: "ES256", kid: keyId })));
    const payload = b64url(enc.encode(JSON.stringify({
      iss: issuer,
      sub: claims.subject,
      aud: claims.audience ?? service,
      exp: now + (claims.expiresInSeconds ?? lifetime),
      nbf: now - 5,
      iat: now,
      jti: crypto.randomUUID(),
      access: claims.access,
    })));
    const signingInput = enc.encode(`${header}.${payload}`);
    // Web Crypto ECDSA signatures are IEEE P1363 (r || s), exactly what JWS ES256 wants.
    const sig = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keyPair.privateKey, signingInput),
    );
    return `${header}.${payload}.${b64url(sig)}`;
  }

  const requests: TokenRequest[] = [];

  function defaultGrant(account: string | undefined, requested: TokenAccess): string[] {
    if (account !== undefined) return requested.actions.filter((a) => GRANTABLE.has(a));
    return anonymousPull && requested.type === "repository"
      ? requested.actions.filter((a) => a === "pull")
      : [];
  }
  const grant = options.grant ?? defaultGrant;

  function json(status: number, body: unknown): Response {
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname !== "/token") {
      return json(404, { errors: [{ code: "NOT_FOUND", message: "no such path" }] });
    }
    let params = url.searchParams;
    let creds = parseBasic(req.headers.get("authorization"));
    if (req.method === "POST") {
      params = new URLSearchParams(await req.text());
      if (params.get("grant_type") !== "password") {
        return json(400, { error: "unsupported_grant_type" });
      }
      creds = { user: params.get("username") ?? "", password: params.get("password") ?? "" };
    } else if (req.method !== "GET") {
      await req.body?.cancel();
      return json(405, { errors: [{ code: "UNSUPPORTED", message: "method not allowed" }] });
    }
    const record: TokenRequest = {
      method: req.method,
      account: creds?.user,
      service: params.get("service"),
      scopes: params.getAll("scope").flatMap((s) => s.split(" ")).filter((s) => s !== ""),
      granted: [],
      status: 0,
    };
    requests.push(record);
    function reply(status: number, body: unknown): Response {
      record.status = status;
      return json(status, body);
    }
    if (record.service !== service) {
      return reply(400, {
        errors: [{ code: "DENIED", message: `unknown service ${record.service ?? "(none)"}` }],
      });
    }
    if (creds !== undefined && users[creds.user] !== creds.password) {
      return reply(401, { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] });
    }
    if (creds === undefined && !anonymousPull) {
      return reply(401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] });
    }
    for (const scope of record.scopes) {
      const requested = parseScope(scope);
      if (requested === undefined) {
        return reply(400, { errors: [{ code: "DENIED", message: `malformed scope ${scope}` }] });
      }
      const actions = grant(creds?.user, requested);
      if (actions.length > 0) record.granted.push({ type: requested.type, name: requested.name, actions });
    }
    const token = await mint({ subject: creds?.user ?? "", access: record.granted });
    return reply(200, {
      token,
      access_token: token,
      expires_in: lifetime,
      issued_at: new Date().toISOString(),
    });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handle);
  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= server.shutdown();
    return stopped;
  }
  return {
    realm: `http://127.0.0.1:${server.addr.port}/token`,
    service,
    issuer,
    rootCertBundleFile,
    keyId,
    requests,
    mint,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
