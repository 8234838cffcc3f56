/**
 * The Rekor (transparency log) keys a Signed Entry Timestamp may be signed by, indexed by log ID
 * (sha256 of the key's SubjectPublicKeyInfo DER, computed here, never taken from the input).
 *
 * Where they come from, in order: `--rekor-key` and/or `--trusted-root` when given (both count);
 * otherwise the file named by `SIGSTORE_REKOR_PUBLIC_KEY` (as Dangerzone documents), otherwise the
 * trusted root `trust-root update` stored in the data directory, otherwise the pinned production key.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { REKOR_PUBLIC_KEY_PEM } from "./_pinned_keys.ts";
import { readFileBounded } from "../read_bounded.ts";
import { loadPublicKeyFile, parsePublicKeyPem, type PublicKey, publicKeyFromSpki } from "./keys.ts";

/** One log key and its validity window (Unix seconds; null = unbounded). */
export interface RekorKey {
  /** The key; its `spkiSha256` is the log ID. */
  readonly key: PublicKey;
  /** Where the key came from, for display (`pinned`, a file path). */
  readonly source: string;
  /** Earliest integrated time the key vouches for, if bounded. */
  readonly validFrom: number | null;
  /** Latest integrated time the key vouches for, if bounded. */
  readonly validUntil: number | null;
}

/** The set of trusted Rekor keys, looked up by log ID. */
export class RekorKeyring {
  readonly #byLogId: Map<string, RekorKey>;

  /** Creates a keyring; a log ID given twice keeps the first key. */
  constructor(keys: readonly RekorKey[]) {
    this.#byLogId = new Map();
    for (const k of keys) if (!this.#byLogId.has(k.key.spkiSha256)) this.#byLogId.set(k.key.spkiSha256, k);
  }

  /** The key of log `logIdHex`, or undefined when that log is not trusted. */
  get(logIdHex: string): RekorKey | undefined {
    return this.#byLogId.get(logIdHex);
  }

  /** Every trusted log ID (hex). */
  logIds(): string[] {
    return [...this.#byLogId.keys()];
  }

  /** How many logs are trusted. */
  get size(): number {
    return this.#byLogId.size;
  }
}

/** Options of {@linkcode loadRekorKeyring}. */
export interface LoadRekorKeyringOptions {
  /** `--rekor-key FILE`. */
  rekorKeyFile?: string | undefined;
  /** `--trusted-root FILE`: its `tlogs` keys are used. */
  trustedRootFile?: string | undefined;
  /** The trusted root `trust-root update` stored (`storedTrustedRootFile()` of `src/tuf/`): replaces the pinned key. */
  storedTrustedRootFile?: string | undefined;
  /** Environment lookup (default `Deno.env.get`), for `SIGSTORE_REKOR_PUBLIC_KEY`. */
  env?: (name: string) => string | undefined;
}

/**
 * Builds the Rekor keyring from the options, the environment or the pinned key.
 *
 * @example
 * ```ts ignore
 * import { loadRekorKeyring } from "./rekor_keys.ts";
 * const keyring = await loadRekorKeyring({ rekorKeyFile: "rekor.pub" });
 * ```
 */
export async function loadRekorKeyring(options: LoadRekorKeyringOptions = {}): Promise<RekorKeyring> {
  const keys: RekorKey[] = [];
  if (options.rekorKeyFile !== undefined) {
    keys.push(unbounded(await loadPublicKeyFile(options.rekorKeyFile), options.rekorKeyFile));
  }
  if (options.trustedRootFile !== undefined) {
    keys.push(...await rekorKeysFromTrustedRootFile(options.trustedRootFile));
  }
  if (keys.length > 0) return new RekorKeyring(keys);
  const envPath = (options.env ?? ((n) => Deno.env.get(n)))("SIGSTORE_REKOR_PUBLIC_KEY");
  if (envPath !== undefined && envPath !== "") {
    return new RekorKeyring([unbounded(await loadPublicKeyFile(envPath), envPath)]);
  }
  // the trusted root `trust-root update` verified through TUF replaces the pinned key
  if (options.storedTrustedRootFile !== undefined) {
    return new RekorKeyring(await rekorKeysFromTrustedRootFile(options.storedTrustedRootFile));
  }
  return await pinnedRekorKeyring();
}

async function rekorKeysFromTrustedRootFile(path: string): Promise<RekorKey[]> {
  const bytes = await readFileBounded(path, {
    limit: 1024 * 1024,
    tooLargeCode: "TRUST_ROOT_INVALID",
    what: "trusted root",
  });
  return await rekorKeysFromTrustedRoot(bytes, path);
}

/** A keyring holding only the pinned production Rekor key. */
export async function pinnedRekorKeyring(): Promise<RekorKeyring> {
  const key = await parsePublicKeyPem(new TextEncoder().encode(REKOR_PUBLIC_KEY_PEM));
  return new RekorKeyring([unbounded(key, "pinned")]);
}

/**
 * The transparency-log keys of an untrusted trusted_root.json, validated by `trusted_root.ts` first.
 * Keys of types a Signed Entry Timestamp cannot use here (RSA, P-521) are skipped.
 */
export async function rekorKeysFromTrustedRoot(
  untrustedJson: Uint8Array,
  source: string,
): Promise<RekorKey[]> {
  // Loaded on demand: the bundle verifier and its libraries are not needed for key-based signatures.
  const { parseTrustedRoot } = await import("./trusted_root.ts");
  const root = parseTrustedRoot(untrustedJson, { source });
  const out: RekorKey[] = [];
  for (const log of root.rekorLogs) {
    if (!["PKIX_ECDSA_P256_SHA_256", "PKIX_ECDSA_P384_SHA_384", "PKIX_ED25519"].includes(log.keyDetails)) {
      continue;
    }
    const key = await publicKeyFromSpki(log.publicKeyDer);
    out.push({
      key,
      source: `${source} (${log.baseUrl})`,
      validFrom: Math.floor(log.validFrom.getTime() / 1000),
      validUntil: log.validUntil === undefined ? null : Math.floor(log.validUntil.getTime() / 1000),
    });
  }
  if (out.length === 0) {
    throw new DangerzoneError("TRUST_ROOT_INVALID", `${source}: no usable transparency-log key`);
  }
  return out;
}

function unbounded(key: PublicKey, source: string): RekorKey {
  return { key, source, validFrom: null, validUntil: null };
}
