/**
 * Private: registry authentication. Remembers the challenge each registry answered with, gets
 * and caches Bearer tokens per realm, service and scope, and builds `Authorization` values from
 * the registry's credentials.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { normalizeRegistry } from "../oci/reference.ts";
import { discard, readLimited } from "./_body.ts";
import { type Challenge, parseChallenges } from "./_challenge.ts";
import type { Hop, Outgoing } from "./_redirect.ts";
import { redactUrl } from "./_redact.ts";
import { isAbort } from "./_retry.ts";
import type { Credential, CredentialResolver } from "./credentials.ts";

/** The transport's side of authentication. */
export interface AuthDeps {
  /** Credentials per registry (none: anonymous). */
  credentials: CredentialResolver | undefined;
  /** `User-Agent`, also the OAuth2 `client_id`. */
  userAgent: string;
  /** True when plain HTTP may be used to `host` (a token realm must be https otherwise). */
  plainAllowed(host: string): boolean;
  /**
   * Sends a token request for `registry`, following redirects (`authorization` only to the
   * realm's origin).
   */
  send(url: URL, out: Outgoing, authorization: string | undefined, registry: string): Promise<Hop>;
  /** Turns a failure to reach the token server into a `DangerzoneError` (a timeout stays one). */
  unreachable(err: unknown, realm: URL): DangerzoneError;
  /** Logs one redacted line. */
  log(line: string): void;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

interface RegistryAuthState {
  challenge?: Challenge;
  tokens: Map<string, CachedToken>;
}

const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** Challenges and tokens of every registry of one transport. */
export class RegistryAuth {
  readonly #deps: AuthDeps;
  readonly #states = new Map<string, RegistryAuthState>();

  /** Creates an empty cache. */
  constructor(deps: AuthDeps) {
    this.#deps = deps;
  }

  /**
   * Records the challenge of a 401 from `registry`'s own origin (and forgets the token it
   * refused). A challenge from anywhere else must never come here.
   */
  onChallenge(registry: string, header: string, scope: string | undefined): void {
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

  /** The `Authorization` value for a request to `registry`'s own origin, if it asked for one. */
  async authorization(
    registry: string,
    scope: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const state = this.#states.get(registry);
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

  #state(registry: string): RegistryAuthState {
    let s = this.#states.get(registry);
    if (s === undefined) {
      s = { tokens: new Map() };
      this.#states.set(registry, s);
    }
    return s;
  }

  async #credential(registry: string): Promise<Credential | undefined> {
    return await this.#deps.credentials?.lookup(normalizeRegistry(registry));
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
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && this.#deps.plainAllowed(realm.host))) {
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
    let authorization: string | undefined;
    if (cred?.kind === "identityToken") {
      method = "POST";
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: cred.token });
      form.set("client_id", this.#deps.userAgent);
      if (service !== undefined) form.set("service", service);
      if (wantScope !== undefined) form.set("scope", wantScope);
      body = new TextEncoder().encode(form.toString());
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    } else {
      if (service !== undefined) realm.searchParams.set("service", service);
      if (wantScope !== undefined) realm.searchParams.set("scope", wantScope);
      if (cred?.kind === "basic") authorization = `Basic ${btoa(`${cred.username}:${cred.password}`)}`;
    }
    let response: Response;
    try {
      ({ response } = await this.#deps.send(
        realm,
        { method, headers, body, signal, userAgent: this.#deps.userAgent },
        authorization,
        registry,
      ));
    } catch (err) {
      if (err instanceof DangerzoneError || isAbort(err, signal)) throw err;
      throw this.#deps.unreachable(err, realm);
    }
    this.#deps.log(`${method} ${redactUrl(realm)} -> ${response.status}`);
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
    return parseTokenResponse(registry, bytes);
  }
}

function parseTokenResponse(registry: string, bytes: Uint8Array): CachedToken {
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

function tokenKey(challenge: Challenge, scope: string | undefined): string {
  return `${challenge.params.realm ?? ""}|${challenge.params.service ?? ""}|${
    scope ?? challenge.params.scope ?? ""
  }`;
}

function isJsonObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
