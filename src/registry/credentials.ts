/**
 * Registry credentials from the files podman, skopeo and docker use: `$REGISTRY_AUTH_FILE`,
 * containers `auth.json` (`$XDG_RUNTIME_DIR/containers/auth.json`,
 * `~/.config/containers/auth.json`) and `~/.docker/config.json` (`auths`, `credHelpers`,
 * `credsStore` through `docker-credential-<name> get`). Entries match the registry host exactly,
 * never by substring; Docker Hub's historical names count as `docker.io`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { DOCKER_HUB, normalizeRegistry } from "../oci/reference.ts";
import { readEnv } from "./_env.ts";

/** Credentials for one registry. */
export type Credential =
  | { kind: "basic"; username: string; password: string }
  | { kind: "identityToken"; token: string };

/** Looks up credentials for a registry host (`host[:port]`, normalised like a reference's). */
export interface CredentialResolver {
  /** Credentials for `registry`, or `undefined` for anonymous access. */
  lookup(registry: string): Promise<Credential | undefined>;
}

/** Runs a credential helper: `docker-credential-<name> get` with `serverUrl` on stdin. */
export type HelperRunner = (helper: string, serverUrl: string) => Promise<
  { code: number; stdout: string; stderr: string }
>;

/** Options of {@linkcode createCredentialResolver}. */
export interface CredentialResolverOptions {
  /** Environment to read `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `HOME`, `DOCKER_CONFIG` from. */
  env?: Record<string, string | undefined>;
  /** Runs credential helpers (default: `Deno.Command`). */
  runHelper?: HelperRunner;
}

const MAX_FILE = 4 * 1024 * 1024;

/**
 * A resolver over the standard credential files. The first file that names the registry wins;
 * a malformed file is `CREDENTIALS_INVALID`, never silently skipped.
 *
 * @example
 * ```ts
 * import { createCredentialResolver } from "./credentials.ts";
 * const creds = createCredentialResolver({ env: { HOME: "/tmp/nohome" } });
 * console.log(await creds.lookup("ghcr.io"));
 * ```
 */
export function createCredentialResolver(options: CredentialResolverOptions = {}): CredentialResolver {
  const env = options.env ?? safeEnv();
  const runHelper = options.runHelper ?? runHelperCommand;
  return {
    async lookup(registry: string): Promise<Credential | undefined> {
      const host = normalizeRegistry(registry);
      for (const path of credentialFiles(env)) {
        const found = await lookupInFile(path, host, runHelper);
        if (found !== undefined) return found;
      }
      return undefined;
    },
  };
}

/** The credential files in lookup order for `env`. */
export function credentialFiles(env: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  const home = env.HOME;
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  else if (env.XDG_RUNTIME_DIR) out.push(`${env.XDG_RUNTIME_DIR}/containers/auth.json`);
  if (env.XDG_CONFIG_HOME) out.push(`${env.XDG_CONFIG_HOME}/containers/auth.json`);
  else if (home) out.push(`${home}/.config/containers/auth.json`);
  if (env.DOCKER_CONFIG) out.push(`${env.DOCKER_CONFIG}/config.json`);
  else if (home) out.push(`${home}/.docker/config.json`);
  return [...new Set(out)];
}

/** The host a credential-file key names: scheme and path stripped, Docker Hub aliases folded. */
export function credentialKeyHost(key: string): string {
  let k = key.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(k);
  if (scheme) k = k.slice(scheme[0].length);
  const slash = k.indexOf("/");
  if (slash !== -1) k = k.slice(0, slash);
  return normalizeRegistry(k);
}

async function lookupInFile(
  path: string,
  host: string,
  runHelper: HelperRunner,
): Promise<Credential | undefined> {
  let text: string;
  try {
    const stat = await Deno.stat(path);
    if (!stat.isFile || stat.size > MAX_FILE) {
      throw new DangerzoneError(
        "CREDENTIALS_INVALID",
        `credential file ${path} is not a regular file under 4 MiB`,
      );
    }
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    if (err instanceof DangerzoneError) throw err;
    throw new DangerzoneError("CREDENTIALS_INVALID", `cannot read credential file ${path}`, { cause: err });
  }
  let untrusted: unknown;
  try {
    untrusted = JSON.parse(text);
  } catch (cause) {
    throw new DangerzoneError("CREDENTIALS_INVALID", `credential file ${path} is not valid JSON`, {
      cause,
      hint: "fix or remove the file",
    });
  }
  if (!isObject(untrusted)) throw invalidFile(path, "top level must be an object");
  const helpers = untrusted.credHelpers;
  if (helpers !== undefined) {
    if (!isObject(helpers)) throw invalidFile(path, "credHelpers must be an object");
    for (const [key, name] of Object.entries(helpers)) {
      if (credentialKeyHost(key) !== host) continue;
      if (typeof name !== "string") throw invalidFile(path, `credHelpers.${key} must be a string`);
      return await fromHelper(name, host, runHelper);
    }
  }
  const auths = untrusted.auths;
  if (auths !== undefined) {
    if (!isObject(auths)) throw invalidFile(path, "auths must be an object");
    for (const [key, entry] of Object.entries(auths)) {
      if (credentialKeyHost(key) !== host) continue;
      const cred = parseAuthEntry(path, key, entry);
      if (cred !== undefined) return cred;
    }
  }
  const store = untrusted.credsStore;
  if (store !== undefined) {
    if (typeof store !== "string") throw invalidFile(path, "credsStore must be a string");
    return await fromHelper(store, host, runHelper);
  }
  return undefined;
}

function parseAuthEntry(path: string, key: string, entry: unknown): Credential | undefined {
  if (!isObject(entry)) throw invalidFile(path, `auths.${key} must be an object`);
  if (typeof entry.identitytoken === "string" && entry.identitytoken !== "") {
    return { kind: "identityToken", token: entry.identitytoken };
  }
  if (typeof entry.auth === "string" && entry.auth !== "") {
    let decoded: string;
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)),
      );
    } catch (cause) {
      throw new DangerzoneError("CREDENTIALS_INVALID", `auths.${key}.auth in ${path} is not valid base64`, {
        cause,
      });
    }
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw invalidFile(path, `auths.${key}.auth must encode username:password`);
    return { kind: "basic", username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === "string" && typeof entry.password === "string" && entry.username !== "") {
    return { kind: "basic", username: entry.username, password: entry.password };
  }
  return undefined;
}

async function fromHelper(
  name: string,
  host: string,
  runHelper: HelperRunner,
): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new DangerzoneError(
      "CREDENTIALS_INVALID",
      `credential helper name '${name.slice(0, 60)}' is invalid`,
    );
  }
  const serverUrl = host === DOCKER_HUB ? "https://index.docker.io/v1/" : host;
  let result: { code: number; stdout: string; stderr: string };
  try {
    result = await runHelper(name, serverUrl);
  } catch (cause) {
    throw new DangerzoneError("CREDENTIALS_INVALID", `cannot run docker-credential-${name}`, {
      cause,
      hint: `install docker-credential-${name} or remove it from your credential configuration`,
    });
  }
  if (result.code !== 0) {
    if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
    throw new DangerzoneError(
      "CREDENTIALS_INVALID",
      `docker-credential-${name} get failed (exit ${result.code})`,
    );
  }
  let untrusted: unknown;
  try {
    untrusted = JSON.parse(result.stdout);
  } catch (cause) {
    throw new DangerzoneError("CREDENTIALS_INVALID", `docker-credential-${name} printed invalid JSON`, {
      cause,
    });
  }
  if (
    !isObject(untrusted) || typeof untrusted.Username !== "string" || typeof untrusted.Secret !== "string"
  ) {
    throw new DangerzoneError("CREDENTIALS_INVALID", `docker-credential-${name} printed no Username/Secret`);
  }
  if (untrusted.Username === "<token>") return { kind: "identityToken", token: untrusted.Secret };
  return { kind: "basic", username: untrusted.Username, password: untrusted.Secret };
}

async function runHelperCommand(
  helper: string,
  serverUrl: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(`docker-credential-${helper}`, {
    args: ["get"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(serverUrl));
  await writer.close();
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** The variables read from the process environment (each on its own: a narrow `--allow-env` works). */
const CREDENTIAL_ENV: readonly string[] = [
  "REGISTRY_AUTH_FILE",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
  "DOCKER_CONFIG",
  "HOME",
];

function safeEnv(): Record<string, string | undefined> {
  return readEnv(CREDENTIAL_ENV);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function invalidFile(path: string, why: string): DangerzoneError {
  return new DangerzoneError("CREDENTIALS_INVALID", `credential file ${path}: ${why}`, {
    hint: "fix or remove the file",
  });
}
