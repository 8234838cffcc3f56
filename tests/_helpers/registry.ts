/**
 * The real CNCF distribution registry (`docker-registry serve`, 2.8) on a free loopback port, in one of four
 * modes: plain HTTP, TLS with a test CA, htpasswd basic auth, or token auth through {@linkcode startTokenServer}.
 *
 * Storage is the filesystem driver in a temp dir, with deletes enabled. Everything is stopped by PID and
 * removed on `stop()` / `await using`.
 *
 * @module
 */
import { join } from "node:path";
import { freePort } from "./ports.ts";
import { makeTempDir, type ManagedProcess, runCommand, spawnProcess, waitForHttp } from "./process.ts";
import { createTestCertificates } from "./tls.ts";
import { type GrantFunction, startTokenServer, type TokenServer } from "./token_server.ts";

/** How the registry is reached and authenticated. */
export type RegistryMode = "plain" | "tls" | "htpasswd" | "token";

/** Options of {@linkcode startRegistry}. */
export interface StartRegistryOptions {
  /** The mode. */
  mode: RegistryMode;
  /** Serve HTTPS with a test CA in `htpasswd` and `token` modes too (always on in `tls` mode). */
  tls?: boolean;
  /** User name for `htpasswd` and `token` modes (default `tester`). */
  username?: string;
  /** Password for `htpasswd` and `token` modes (default: random). */
  password?: string;
  /** Token mode: anonymous requests get `pull` (default false: they get 401 from the token server). */
  anonymousPull?: boolean;
  /** Token mode: custom grant policy. */
  grant?: GrantFunction;
  /** Token mode: token lifetime in seconds. */
  tokenExpiresInSeconds?: number;
  /**
   * Token mode: advertise this realm in challenges instead of the token server's own URL (to test that a
   * client refuses, e.g., a plain-HTTP realm on a non-loopback host without contacting it).
   */
  realm?: string;
}

/** A running registry. */
export interface RunningRegistry extends AsyncDisposable {
  /** The mode it was started in. */
  readonly mode: RegistryMode;
  /** `127.0.0.1:PORT`, the registry host part of image references. */
  readonly host: string;
  /** Port. */
  readonly port: number;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** Whether it serves HTTPS. */
  readonly tls: boolean;
  /** The test CA (PEM) when serving HTTPS. */
  readonly caCertPem: string | undefined;
  /** Path of the test CA certificate when serving HTTPS. */
  readonly caCertFile: string | undefined;
  /** A containers/image cert dir with the CA (`skopeo --dest-cert-dir`, `podman --cert-dir`). */
  readonly certDir: string | undefined;
  /** User name in `htpasswd` and `token` modes. */
  readonly username: string | undefined;
  /** Password in `htpasswd` and `token` modes. */
  readonly password: string | undefined;
  /** The token server in `token` mode. */
  readonly tokenServer: TokenServer | undefined;
  /** The registry's storage root. */
  readonly dataDir: string;
  /** The registry's log file (kept only while it runs, or with `DZ_KEEP_TEST_DIRS=1`). */
  readonly logFile: string;
  /** Milliseconds from the call until `/v2/` answered. */
  readonly startupMs: number;
  /** The registry process. */
  readonly process: ManagedProcess;
  /**
   * `fetch` of a path on this registry, trusting the test CA in TLS mode. Adds no credentials.
   * The caller must consume or cancel the body.
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /**
   * Headers that authorize `actions` (default pull) on `repository` without a challenge round trip: Basic in
   * `htpasswd` mode, a freshly minted Bearer token in `token` mode, none otherwise. For test setup only.
   */
  authHeaders(repository: string, actions?: string[]): Promise<Record<string, string>>;
  /** Stops the registry (and token server) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Starts `docker-registry serve` in the given mode and waits until `/v2/` answers.
 *
 * @example
 * ```ts
 * import { startRegistry } from "./registry.ts";
 * await using reg = await startRegistry({ mode: "htpasswd" });
 * const res = await reg.fetch("/v2/");
 * await res.body?.cancel(); // 401
 * ```
 */
export async function startRegistry(options: StartRegistryOptions): Promise<RunningRegistry> {
  const started = performance.now();
  const dir = makeTempDir(`registry-${options.mode}`);
  const cleanups: (() => Promise<void>)[] = [() => dir.remove()];
  async function cleanup(): Promise<void> {
    for (const fn of cleanups.reverse()) await fn();
    cleanups.length = 0;
  }
  try {
    const tls = options.mode === "tls" || (options.tls ?? false);
    const dataDir = join(dir.path, "data");
    await Deno.mkdir(dataDir);
    const certs = tls ? await createTestCertificates(dir.path) : undefined;
    const withUser = options.mode === "htpasswd" || options.mode === "token";
    const username = withUser ? options.username ?? "tester" : undefined;
    const password = withUser ? options.password ?? randomSecret() : undefined;

    let authYaml = "";
    if (options.mode === "htpasswd" && username !== undefined && password !== undefined) {
      const htpasswdFile = join(dir.path, "htpasswd");
      // distribution accepts only bcrypt entries
      const { stdout } = await runCommand("htpasswd", ["-Bbn", username, password]);
      await Deno.writeTextFile(htpasswdFile, stdout);
      authYaml = `auth:\n  htpasswd:\n    realm: dangerzone-test-registry\n    path: ${htpasswdFile}\n`;
    }
    let tokenServer: TokenServer | undefined;
    if (options.mode === "token" && username !== undefined && password !== undefined) {
      const ts = await startTokenServer({
        dir: dir.path,
        users: { [username]: password },
        ...(options.anonymousPull === undefined ? {} : { anonymousPull: options.anonymousPull }),
        ...(options.grant === undefined ? {} : { grant: options.grant }),
        ...(options.tokenExpiresInSeconds === undefined
          ? {}
          : { expiresInSeconds: options.tokenExpiresInSeconds }),
      });
      tokenServer = ts;
      cleanups.push(() => ts.stop());
      authYaml =
        `auth:\n  token:\n    realm: ${
          options.realm ?? ts.realm
        }\n    service: ${ts.service}\n    issuer: ${ts.issuer}\n` +
        `    rootcertbundle: ${ts.rootCertBundleFile}\n`;
    }

    const caClient = certs === undefined ? undefined : Deno.createHttpClient({ caCerts: [certs.caCertPem] });
    if (caClient !== undefined) {
      cleanups.push(() => {
        caClient.close();
        return Promise.resolve();
      });
    }

    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = freePort();
      const configFile = join(dir.path, `config-${attempt}.yml`);
      const tlsYaml = certs === undefined
        ? ""
        : `  tls:\n    certificate: ${certs.certFile}\n    key: ${certs.keyFile}\n`;
      await Deno.writeTextFile(
        configFile,
        `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: ${dataDir}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: ${randomSecret()}
  headers:
    X-Content-Type-Options: [nosniff]
${tlsYaml}${authYaml}`,
      );
      const logFile = join(dir.path, `registry-${attempt}.log`);
      const proc = spawnProcess("docker-registry", { args: ["serve", configFile], logFile });
      const url = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
      try {
        await waitForHttp(`${url}/v2/`, {
          what: `docker-registry (${options.mode}) on port ${port}`,
          process: proc,
          ...(caClient === undefined ? {} : { client: caClient }),
        });
      } catch (e) {
        await proc.stop();
        lastError = e;
        if ((await proc.logTail()).includes("address already in use")) continue;
        throw e;
      }
      cleanups.push(async () => {
        await proc.stop();
      });
      const startupMs = performance.now() - started;
      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopping ??= cleanup();
        return stopping;
      };
      return {
        mode: options.mode,
        host: `127.0.0.1:${port}`,
        port,
        url,
        tls,
        caCertPem: certs?.caCertPem,
        caCertFile: certs?.caCertFile,
        certDir: certs?.certDir,
        username,
        password,
        tokenServer,
        dataDir,
        logFile,
        startupMs,
        process: proc,
        fetch(path: string, init?: RequestInit): Promise<Response> {
          return fetch(`${url}${path}`, caClient === undefined ? init : { ...init, client: caClient });
        },
        async authHeaders(repository: string, actions: string[] = ["pull"]): Promise<Record<string, string>> {
          if (options.mode === "htpasswd") {
            return { authorization: `Basic ${btoa(`${username}:${password}`)}` };
          }
          if (tokenServer === undefined) return {};
          const token = await tokenServer.mint({
            subject: username ?? "",
            access: [{ type: "repository", name: repository, actions }],
          });
          return { authorization: `Bearer ${token}` };
        },
        stop,
        [Symbol.asyncDispose]: stop,
      };
    }
    throw lastError;
  } catch (e) {
    await cleanup();
    throw e;
  }
}
