/**
 * The Rekor (transparency log) keys a Signed Entry Timestamp may be signed by, indexed by log ID
 * (sha256 of the key's SubjectPublicKeyInfo DER, computed here, never taken from the input). Which
 * keys are trusted is chosen in one place: `selectTrust()` in `trust_selection.ts`.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { REKOR_PUBLIC_KEY_PEM } from "./_pinned_keys.ts";
import { parsePublicKeyPem, type PublicKey, publicKeyFromSpki } from "./keys.ts";
import type { SigstoreTrustedRoot } from "./trusted_root.ts";

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

/** A keyring holding only the pinned production Rekor key. */
export async function pinnedRekorKeyring(): Promise<RekorKeyring> {
  const key = await parsePublicKeyPem(new TextEncoder().encode(REKOR_PUBLIC_KEY_PEM));
  return new RekorKeyring([unboundedRekorKey(key, "pinned")]);
}

/**
 * The transparency-log keys of a validated trusted root, with their validity. Keys of types a Signed
 * Entry Timestamp cannot use here (RSA, P-521) are skipped; a root with none left is refused.
 */
export async function rekorKeysOfTrustedRoot(root: SigstoreTrustedRoot): Promise<RekorKey[]> {
  const out: RekorKey[] = [];
  for (const log of root.rekorLogs) {
    if (!["PKIX_ECDSA_P256_SHA_256", "PKIX_ECDSA_P384_SHA_384", "PKIX_ED25519"].includes(log.keyDetails)) {
      continue;
    }
    const key = await publicKeyFromSpki(log.publicKeyDer);
    out.push({
      key,
      source: `${root.source} (${log.baseUrl})`,
      validFrom: Math.floor(log.validFrom.getTime() / 1000),
      validUntil: log.validUntil === undefined ? null : Math.floor(log.validUntil.getTime() / 1000),
    });
  }
  if (out.length === 0) {
    throw new DangerzoneError("TRUST_ROOT_INVALID", `${root.source}: no usable transparency-log key`);
  }
  return out;
}

/** A key that vouches for any integrated time (a pinned or user-given key). */
export function unboundedRekorKey(key: PublicKey, source: string): RekorKey {
  return { key, source, validFrom: null, validUntil: null };
}
