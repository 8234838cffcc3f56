/**
 * The one place that chooses what every signature form is verified against.
 *
 * Sigstore bundles (cosign v3 image signatures, attestations, `verify-bundle`) are verified against one
 * trusted root, the first of:
 *
 * 1. `--trusted-root FILE`;
 * 2. the Rekor key override, `--rekor-key FILE`, else the file named by `SIGSTORE_REKOR_PUBLIC_KEY` (as
 *    Dangerzone documents): the default root (3 or 4) with its transparency logs replaced by exactly
 *    the override key, so a bundle's SET, checkpoint and inclusion proof must be by that key;
 * 3. the trusted root `trust-root update` verified through TUF and stored in the data directory
 *    (`storedTrustedRootFile`);
 * 4. the caller's `defaultTrustedRoot`, else the production root embedded in the program.
 *
 * Legacy `.sig` signatures (a Signed Entry Timestamp each) are verified against the Rekor keyring: the
 * `--rekor-key` key and the `--trusted-root` logs when either is given (both count), else the
 * `SIGSTORE_REKOR_PUBLIC_KEY` key, else the logs of the stored trusted root, else the pinned production
 * Rekor key.
 *
 * @module
 */
import { readFileBounded, readOwnFileBounded } from "../../read_bounded.ts";
import { loadPublicKeyFile, type PublicKey } from "./keys.ts";
import {
  pinnedRekorKeyring,
  type RekorKey,
  RekorKeyring,
  rekorKeysOfTrustedRoot,
  unboundedRekorKey,
} from "./rekor_keys.ts";
import type { PinnedLogKey, SigstoreTrustedRoot } from "./trusted_root.ts";

/**
 * The trusted-root module, loaded on first use: it brings the Sigstore libraries, which key-signed
 * legacy signatures (verify-local before every conversion) never need.
 */
const trustedRootModule = () => import("./trusted_root.ts");

/** Options of {@linkcode selectTrust}. */
export interface TrustSelectionOptions {
  /** `--rekor-key FILE`. */
  rekorKeyFile?: string | undefined;
  /** `--trusted-root FILE`. */
  trustedRootFile?: string | undefined;
  /** Environment lookup (default `Deno.env.get`), for `SIGSTORE_REKOR_PUBLIC_KEY`. */
  env?: (name: string) => string | undefined;
  /**
   * The trusted root `trust-root update` stored in the data directory (`storedTrustedRootFile()` of
   * `src/tuf/`), if any: read and validated again here (a file in the data directory is input too).
   */
  storedTrustedRootFile?: string | undefined;
  /** The trusted root when nothing overrides it (default: the embedded production root). */
  defaultTrustedRoot?: () => SigstoreTrustedRoot | Promise<SigstoreTrustedRoot>;
}

/** Which rule chose the bundles' trusted root. */
export type TrustedRootRule = "trusted-root-file" | "rekor-key-override" | "stored" | "default";

/** The trust every signature form is verified against. */
export interface SelectedTrust {
  /** The Rekor keys for legacy `.sig` signatures. */
  readonly rekorKeys: RekorKeyring;
  /** Which rule chooses the bundles' trusted root. */
  readonly trustedRootRule: TrustedRootRule;
  /** The bundles' trusted root (built on first call, then the same one). */
  trustedRoot(): Promise<SigstoreTrustedRoot>;
}

/**
 * Chooses the trust of every signature form from the options (see the module doc for the order).
 * Files are read and validated now; the bundles' trusted root is built when first asked for.
 *
 * @example
 * ```ts ignore
 * import { selectTrust } from "./trust_selection.ts";
 * const trust = await selectTrust({ rekorKeyFile: "rekor.pub" });
 * const root = await trust.trustedRoot(); // tlogs: exactly rekor.pub
 * ```
 */
export async function selectTrust(options: TrustSelectionOptions = {}): Promise<SelectedTrust> {
  const rootFile = options.trustedRootFile;
  const fileRoot = rootFile === undefined ? undefined : await readRootFile(rootFile);
  // With --trusted-root, only --rekor-key still counts (for legacy signatures); the variable does not.
  const override = fileRoot === undefined || options.rekorKeyFile !== undefined
    ? await loadOverride(options)
    : undefined;
  const storedRoot = fileRoot === undefined && options.storedTrustedRootFile !== undefined
    ? await readStoredRoot(options.storedTrustedRootFile)
    : undefined;
  const legacy: RekorKey[] = [];
  if (options.rekorKeyFile !== undefined && override !== undefined) legacy.push(override);
  if (fileRoot !== undefined) legacy.push(...await rekorKeysOfTrustedRoot(fileRoot));
  if (legacy.length === 0 && override !== undefined) legacy.push(override);
  if (legacy.length === 0 && storedRoot !== undefined) {
    legacy.push(...await rekorKeysOfTrustedRoot(storedRoot));
  }
  const rekorKeys = legacy.length > 0 ? new RekorKeyring(legacy) : await pinnedRekorKeyring();

  const defaultRoot = async () =>
    storedRoot ??
      await (options.defaultTrustedRoot ??
        (async () => (await trustedRootModule()).productionTrustedRoot()))();
  let trustedRootRule: TrustedRootRule;
  let build: () => Promise<SigstoreTrustedRoot>;
  if (fileRoot !== undefined) {
    trustedRootRule = "trusted-root-file";
    build = () => Promise.resolve(fileRoot);
  } else if (override !== undefined) {
    trustedRootRule = "rekor-key-override";
    build = async () =>
      (await trustedRootModule()).withRekorKeys(await defaultRoot(), [pinnedLogKey(override.key)], {
        source: `Rekor key ${override.source}`,
      });
  } else if (storedRoot !== undefined) {
    trustedRootRule = "stored";
    build = () => Promise.resolve(storedRoot);
  } else {
    trustedRootRule = "default";
    build = defaultRoot;
  }
  let root: Promise<SigstoreTrustedRoot> | undefined;
  return {
    rekorKeys,
    trustedRootRule,
    trustedRoot(): Promise<SigstoreTrustedRoot> {
      root ??= build();
      return root;
    },
  };
}

/** The Rekor keyring of {@linkcode selectTrust}, for callers that verify legacy signatures only. */
export async function loadRekorKeyring(options: TrustSelectionOptions = {}): Promise<RekorKeyring> {
  return (await selectTrust(options)).rekorKeys;
}

/** `--trusted-root FILE`, bounded and validated. */
async function readRootFile(path: string): Promise<SigstoreTrustedRoot> {
  const { MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot } = await trustedRootModule();
  const bytes = await readFileBounded(path, {
    limit: MAX_TRUSTED_ROOT_BYTES,
    tooLargeCode: "TRUST_ROOT_INVALID",
    what: "trusted root",
  });
  return parseTrustedRoot(bytes, { source: path });
}

/**
 * The stored trusted root: a regular file of the data directory (never a link or special file),
 * bounded and validated again; `undefined` when `trust-root update` never stored one.
 */
async function readStoredRoot(path: string): Promise<SigstoreTrustedRoot | undefined> {
  try {
    await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined; // the common case: nothing to load
  }
  const { MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot } = await trustedRootModule();
  const bytes = await readOwnFileBounded(path, {
    limit: MAX_TRUSTED_ROOT_BYTES,
    tooLargeCode: "TRUST_ROOT_INVALID",
    what: "stored trusted root",
  });
  return bytes === null ? undefined : parseTrustedRoot(bytes, { source: path });
}

/** The Rekor key override: `--rekor-key`, else `$SIGSTORE_REKOR_PUBLIC_KEY`, else none. */
async function loadOverride(options: TrustSelectionOptions): Promise<RekorKey | undefined> {
  if (options.rekorKeyFile !== undefined) {
    return unboundedRekorKey(await loadPublicKeyFile(options.rekorKeyFile), options.rekorKeyFile);
  }
  const envPath = (options.env ?? ((n) => Deno.env.get(n)))("SIGSTORE_REKOR_PUBLIC_KEY");
  if (envPath === undefined || envPath === "") return undefined;
  return unboundedRekorKey(await loadPublicKeyFile(envPath), envPath);
}

function pinnedLogKey(key: PublicKey): PinnedLogKey {
  const keyDetails = key.algorithm === "ecdsa-p256"
    ? "PKIX_ECDSA_P256_SHA_256"
    : key.algorithm === "ecdsa-p384"
    ? "PKIX_ECDSA_P384_SHA_384"
    : "PKIX_ED25519";
  return { spki: key.spki, keyDetails };
}
