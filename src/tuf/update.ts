/**
 * `trust-root update`: Sigstore's `trusted_root.json` through TUF (The Update Framework), with the
 * maintained `tuf-js` client doing every TUF step (root rotations with both thresholds, timestamp,
 * snapshot and targets with versions, expiry, hashes and lengths: rollback, freeze, mix-and-match
 * and arbitrary-target attacks are refused by it).
 *
 * What this module adds around it: the starting root (the data directory's cache, `--tuf-root`, or
 * the embedded Sigstore root), network access through our proxy/Tor/CA rules with size bounds and
 * timeouts ({@linkcode TufFetcher}), a staging copy of the cache so that a failed update changes
 * nothing, validation of the new trusted root with the project's own parser, atomic writes, and
 * one stable error code per outcome.
 *
 * @module
 */
import { basename, join } from "../fs_path.ts";
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import { toHex } from "../oci/digest.ts";
import { readFileBounded } from "../read_bounded.ts";
import { httpClientFor, type HttpClientForOptions } from "../registry/http_client_for.ts";
import { MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot } from "../sigstore/crypto/trusted_root.ts";
import { writeFileAtomic } from "../store/_atomic_write.ts";
import { ensureOwnDirectory } from "../store/data_dir.ts";
import { withStoreLock } from "../store/lock.ts";
import { TufFetcher } from "./_fetcher.ts";
import { EMBEDDED_TUF_ROOT_JSON } from "./_embedded_root.ts";
import { describeTufRoot, type TufRootInfo } from "./tuf_root.ts";
import {
  DEFAULT_TUF_URL,
  storedOriginPath,
  storedTrustedRootPath,
  type TrustedRootOrigin,
  TUF_METADATA_FILES,
  tufCacheDir,
  tufDir,
} from "./stored_trusted_root.ts";

/** The TUF target this command fetches. */
export const TRUSTED_ROOT_TARGET = "trusted_root.json";

/** Largest `--tuf-root` file read (tuf-js's own bound for a root). */
const MAX_TUF_ROOT_BYTES = 512_000;

/** Options of {@linkcode updateTrustRoot}. */
export interface UpdateTrustRootOptions {
  /** `--tuf-url` (default Sigstore's public repository). */
  tufUrl?: string | undefined;
  /** `--tuf-root FILE`: the initial trusted TUF root instead of the cache or the embedded one. */
  tufRootFile?: string | undefined;
  /** Proxy and CA settings, as for registry traffic. */
  network?: HttpClientForOptions | undefined;
  /** Longest wait for response headers and between body chunks (default 30 s each). */
  timeoutMs?: number | undefined;
  /** Receives progress and protocol lines (for `--debug`). */
  onLog?: ((line: string) => void) | undefined;
}

/** Where the starting TUF root came from. */
export type TufRootSource = "data-dir" | "file" | "embedded";

/** The outcome of a successful update. */
export interface TrustRootUpdate {
  /** The TUF repository. */
  tufUrl: string;
  /** The root the walk started from. */
  startedFrom: TufRootSource;
  /** Version of the starting root. */
  previousTufRootVersion: number;
  /** The trusted TUF root after the update (the walk's end). */
  tufRoot: TufRootInfo;
  /** Where the verified trusted root is stored. */
  trustedRootPath: string;
  /** sha256 (hex) of the stored trusted root. */
  trustedRootSha256: string;
  /** The trusted root differs from the one stored before. */
  changed: boolean;
}

/**
 * Runs a TUF update and stores the verified trusted root in the data directory. On any failure,
 * the cache and the stored trusted root are left as they were.
 *
 * @example
 * ```ts ignore
 * import { updateTrustRoot } from "./update.ts";
 * const result = await updateTrustRoot("/home/u/.local/share/dangerzone");
 * console.log(result.tufRoot.version, result.trustedRootSha256);
 * ```
 */
export async function updateTrustRoot(
  dataDir: string,
  options: UpdateTrustRootOptions = {},
): Promise<TrustRootUpdate> {
  const url = parseTufUrl(options.tufUrl ?? DEFAULT_TUF_URL);
  requireEnvAccess();
  const cacheDir = tufCacheDir(dataDir, url);
  // real directories of the data dir only: a symlinked or special `tuf/` is DATA_DIR_INVALID
  await ensureOwnDirectory(dataDir, ["tuf"]);
  return await withStoreLock(dataDir, async () => {
    const staging = await Deno.makeTempDir({ dir: tufDir(dataDir), prefix: ".staging-" });
    try {
      const start = await stageCache(cacheDir, staging, url, options.tufRootFile);
      const log = options.onLog ?? (() => {});
      log(`TUF ${url.href}: starting from root v${start.info.version} (${start.source})`);
      using http = await httpClientFor(url, options.network ?? {});
      log(`TUF route: ${http.route}`);
      const fetcher = new TufFetcher({
        client: http.client,
        tmpDir: staging,
        headersTimeoutMs: options.timeoutMs,
        idleTimeoutMs: options.timeoutMs,
        onLog: log,
      });
      const targetBytes = await runUpdater(url, staging, storedTrustedRootPath(dataDir), fetcher);
      const tufRoot = describeTufRoot(await Deno.readFile(join(staging, "root.json")), "data-dir");
      // the project's own validation of what TUF delivered, before anything is stored
      parseTrustedRoot(targetBytes.bytes, { source: `${TRUSTED_ROOT_TARGET} from ${url.href}` });
      await ensureOwnDirectory(dataDir, ["tuf", basename(cacheDir)]);
      for (const name of TUF_METADATA_FILES) {
        const bytes = await readIfExists(join(staging, name));
        if (bytes !== undefined) await writeFileAtomic(join(cacheDir, name), bytes);
      }
      const trustedRootPath = storedTrustedRootPath(dataDir);
      const origin: TrustedRootOrigin = {
        tufUrl: url.href,
        tufRootVersion: tufRoot.version,
        updatedAt: new Date().toISOString(),
      };
      if (targetBytes.changed) await writeFileAtomic(trustedRootPath, targetBytes.bytes);
      await writeFileAtomic(
        storedOriginPath(dataDir),
        new TextEncoder().encode(JSON.stringify({ schemaVersion: 1, ...origin }, null, 2) + "\n"),
      );
      return {
        tufUrl: url.href,
        startedFrom: start.source,
        previousTufRootVersion: start.info.version,
        tufRoot,
        trustedRootPath,
        trustedRootSha256: toHex(
          new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(targetBytes.bytes))),
        ),
        changed: targetBytes.changed,
      };
    } finally {
      await Deno.remove(staging, { recursive: true }).catch(() => {});
    }
  });
}

/**
 * `tuf-js` and its dependencies (`debug`, `minimatch`) enumerate the environment when they load;
 * under a narrow `--allow-env` that fails deep inside them. Say so in one line instead.
 */
function requireEnvAccess(): void {
  if (Deno.permissions.querySync({ name: "env" }).state !== "granted") {
    throw new DangerzoneError("CONFIG_INVALID", "trust-root update needs access to the whole environment", {
      hint: "run it with --allow-env (its TUF library reads environment variables when it loads)",
    });
  }
}

/** `--tuf-url`: https, or plain http to a loopback host only; always ends with `/`. */
export function parseTufUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text.endsWith("/") ? text : `${text}/`);
  } catch (cause) {
    throw new DangerzoneError("USAGE", `invalid --tuf-url '${text}'`, {
      cause,
      hint: "use https://HOST/PATH",
    });
  }
  const loopback = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/i.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new DangerzoneError("USAGE", `--tuf-url must use https:// (got ${url.protocol})`, {
      hint: "plain http is accepted only for a loopback test repository",
    });
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new DangerzoneError("USAGE", "--tuf-url must not carry credentials, a query or a fragment");
  }
  return url;
}

interface StagedStart {
  source: TufRootSource;
  info: TufRootInfo;
}

/** Copies the cache into `staging` and puts the starting root there as `root.json`. */
async function stageCache(
  cacheDir: string,
  staging: string,
  url: URL,
  tufRootFile: string | undefined,
): Promise<StagedStart> {
  for (const name of TUF_METADATA_FILES) {
    const bytes = await readIfExists(join(cacheDir, name));
    if (bytes !== undefined) await Deno.writeFile(join(staging, name), bytes);
  }
  let source: TufRootSource;
  let root: Uint8Array;
  if (tufRootFile !== undefined) {
    source = "file";
    root = await readFileBounded(tufRootFile, {
      limit: MAX_TUF_ROOT_BYTES,
      tooLargeCode: "TUF_VERIFICATION_FAILED",
      what: "TUF root",
    });
  } else {
    const cached = await readIfExists(join(staging, "root.json"));
    if (cached !== undefined) {
      source = "data-dir";
      root = cached;
    } else if (url.href === DEFAULT_TUF_URL) {
      source = "embedded";
      root = new TextEncoder().encode(EMBEDDED_TUF_ROOT_JSON);
    } else {
      throw new DangerzoneError("USAGE", `no trusted TUF root for ${url.href} yet`, {
        hint:
          "pass its initial root with --tuf-root FILE (the embedded root is Sigstore's public repository's)",
      });
    }
  }
  await Deno.writeFile(join(staging, "root.json"), root);
  return { source, info: describeTufRoot(root, source) };
}

/** Runs tuf-js's client workflow; returns the verified target bytes and whether they changed. */
async function runUpdater(
  url: URL,
  staging: string,
  storedPath: string,
  fetcher: TufFetcher,
): Promise<{ bytes: Uint8Array; changed: boolean }> {
  const targetDir = join(staging, "targets");
  await Deno.mkdir(targetDir);
  try {
    // loaded here: tuf-js and its dependencies read the environment when loaded (requireEnvAccess)
    const { Updater } = await import("tuf-js");
    const updater = new Updater({
      metadataBaseUrl: url.href,
      targetBaseUrl: new URL("targets/", url).href,
      metadataDir: staging,
      targetDir,
      fetcher,
      config: { userAgent: "dangerzone-image" },
    });
    await updater.refresh();
    const info = await updater.getTargetInfo(TRUSTED_ROOT_TARGET);
    if (info === undefined) {
      throw new DangerzoneError(
        "TUF_VERIFICATION_FAILED",
        `the TUF repository ${url.href} lists no ${TRUSTED_ROOT_TARGET} target`,
        { hint: "check --tuf-url; the previous trust root is kept" },
      );
    }
    // the stored trusted root serves as the target cache: its hash and length are checked by TUF
    if (await updater.findCachedTarget(info, storedPath) !== undefined) {
      return { bytes: await Deno.readFile(storedPath), changed: false };
    }
    const path = await updater.downloadTarget(info, join(targetDir, TRUSTED_ROOT_TARGET));
    return {
      bytes: await readFileBounded(path, {
        limit: MAX_TRUSTED_ROOT_BYTES,
        tooLargeCode: "TRUST_ROOT_INVALID",
        what: "trusted root",
      }),
      changed: true,
    };
  } catch (err) {
    throw classify(err, fetcher, url);
  }
}

/**
 * One stable code per outcome. `tuf-js` reports a network failure during the snapshot and targets
 * steps as a `RuntimeError` whose text embeds ours; the fetcher's last failure identifies it.
 */
function classify(err: unknown, fetcher: TufFetcher, url: URL): DangerzoneError {
  if (isDangerzoneError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const last = fetcher.lastFailure;
  if (last !== undefined && message.includes(last.message)) return last;
  if (err instanceof Error && err.constructor.name === "PersistError") {
    return new DangerzoneError("IO", `cannot write the TUF cache: ${message}`, { cause: err });
  }
  const detail = message.replace(/ error (\w*Error: )?/, ": ").replace(/\s+/g, " ").slice(0, 300);
  return new DangerzoneError(
    "TUF_VERIFICATION_FAILED",
    `TUF verification of ${url.href} failed (${attackName(detail)}): ${detail}`,
    { cause: err, hint: "the previous trust root is kept; check --tuf-url and the network path" },
  );
}

/** What a tuf-js failure text means, in the words of the TUF specification's attack list. */
function attackName(detail: string): string {
  if (/expired/i.test(detail)) return "expired metadata: freeze attack?";
  if (/version/i.test(detail)) return "version rollback or mix-and-match?";
  if (/signed by|threshold|signature|unsigned/i.test(detail)) return "signatures below threshold";
  if (/length|hash/i.test(detail)) return "target does not match its hash or length";
  return "invalid metadata";
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new DangerzoneError("IO", `cannot read ${path}: ${String(err)}`, { cause: err });
  }
}
