/**
 * The signature store shared with the Dangerzone application:
 * `<data-dir>/signatures/<sha256 of the public key file>/<image digest hex>.json`, each a JSON list
 * of signatures in `cosign download signature` form (what Dangerzone reads; it knows no other format).
 *
 * cosign v3 Sigstore bundle signatures (DSSE over an in-toto statement) have no `cosign download
 * signature` form, and Dangerzone (which still signs and verifies the legacy format, through cosign)
 * has no place for them; so they are kept beside it, in a file of ours that Dangerzone never opens:
 * `<data-dir>/signatures/<key file sha256>/<image digest hex>.bundles.json`, a JSON list of Sigstore
 * bundles (`application/vnd.dev.sigstore.bundle.v0.3+json` documents), each written exactly as it was
 * received. The legacy file is never touched by a bundle write, and an image signed both ways has
 * both files.
 *
 * Only verified signatures can be written (the writer takes verified signatures and writes their
 * texts exactly as received); what is read back is untrusted and must be verified again before use.
 *
 * @module
 */
import { join } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import { type Digest, digestHex, isDigest } from "../oci/digest.ts";
import type { UntrustedBundleEntry } from "../sigstore/cosign/bundle_signature.ts";
import { isVerifiedBundleSignature } from "../sigstore/cosign/verified_bundle_signature.ts";
import { MAX_SIGNATURE_LIST_BYTES, serializeSignatureList } from "../sigstore/cosign/cosign_signature.ts";
import type { VerifiedImageSignature } from "../sigstore/cosign/policy.ts";
import { writeFileAtomic } from "./_atomic_write.ts";
import { ensureOwnDirectory, ownDirectoryExists } from "./data_dir.ts";
import { readOwnFileBounded } from "../read_bounded.ts";
import { parseBundleList } from "./_bundle_list.ts";

/** The suffix of the bundle file beside a legacy signature file: `<digest hex>.bundles.json`. */
export const BUNDLES_FILE_SUFFIX = ".bundles.json";

const HEX64 = /^[0-9a-f]{64}$/;

/** The signature store of one data directory. */
export class SignatureStore {
  /** The data directory. */
  readonly dataDir: string;

  /**
   * Opens the store of `dataDir` (nothing is created until a write).
   *
   * @example
   * ```ts ignore
   * const store = new SignatureStore(resolveDataDir());
   * await store.write(verified);
   * ```
   */
  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  /** `<data-dir>/signatures`. */
  get signaturesDir(): string {
    return join(this.dataDir, "signatures");
  }

  /** The file holding the signatures of `digest` for the key whose file sha256 is `keyFileSha256`. */
  pathFor(keyFileSha256: string, digest: Digest): string {
    if (!HEX64.test(keyFileSha256)) {
      throw new DangerzoneError("INTERNAL", "a key file sha256 must be 64 lowercase hex digits");
    }
    return join(this.signaturesDir, keyFileSha256, `${digestHex(digest)}.json`);
  }

  /** The file holding the cosign v3 bundles of `digest` for that key (ours; Dangerzone ignores it). */
  bundlesPathFor(keyFileSha256: string, digest: Digest): string {
    if (!HEX64.test(keyFileSha256)) {
      throw new DangerzoneError("INTERNAL", "a key file sha256 must be 64 lowercase hex digits");
    }
    return join(this.signaturesDir, keyFileSha256, `${digestHex(digest)}${BUNDLES_FILE_SUFFIX}`);
  }

  /** The stored list's bytes (untrusted: verify before use), or null when none is stored. */
  async readUntrusted(keyFileSha256: string, digest: Digest): Promise<Uint8Array | null> {
    const path = this.pathFor(keyFileSha256, digest);
    return await ownDirectoryExists(this.dataDir, ["signatures", keyFileSha256])
      ? await readBounded(path)
      : null;
  }

  /**
   * The stored cosign v3 bundles of `digest` (untrusted: verify before use), or null when none are
   * stored. A file that is not a JSON list of objects is `STORE_INVALID`.
   */
  async readUntrustedBundles(keyFileSha256: string, digest: Digest): Promise<UntrustedBundleEntry[] | null> {
    const path = this.bundlesPathFor(keyFileSha256, digest);
    if (!await ownDirectoryExists(this.dataDir, ["signatures", keyFileSha256])) return null;
    const bytes = await readBounded(path);
    return bytes === null ? null : parseBundleList(bytes, path);
  }

  /** The image digests that have stored signatures for a key. */
  async listDigests(keyFileSha256: string): Promise<Digest[]> {
    if (!HEX64.test(keyFileSha256)) throw new DangerzoneError("INTERNAL", "invalid key file sha256");
    const out: Digest[] = [];
    if (!await ownDirectoryExists(this.dataDir, ["signatures", keyFileSha256])) return out;
    try {
      for await (const e of Deno.readDir(join(this.signaturesDir, keyFileSha256))) {
        const m = /^([0-9a-f]{64})(\.bundles)?\.json$/.exec(e.name);
        const candidate = m === null ? "" : `sha256:${m[1]}`;
        if (e.isFile && isDigest(candidate) && !out.includes(candidate)) out.push(candidate);
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw new DangerzoneError("IO", `cannot list ${this.signaturesDir}: ${String(err)}`, { cause: err });
    }
    return out.sort();
  }

  /**
   * Writes the verified signatures of one image atomically and returns the path written: the legacy
   * signatures replace `<digest hex>.json`, the cosign v3 bundles replace `<digest hex>.bundles.json`
   * (a kind with no signature leaves its file as it was). Returns the legacy file's path when there
   * are legacy signatures, else the bundle file's. All must cover the same digest and be verified by
   * the same key, whose file sha256 must be known.
   */
  async write(verified: readonly VerifiedImageSignature[]): Promise<string> {
    const first = verified[0];
    if (first === undefined) {
      throw new DangerzoneError("INTERNAL", "refusing to store an empty signature list");
    }
    const keyFileSha256 = first.keyFileSha256;
    if (keyFileSha256 === null) {
      throw new DangerzoneError("INTERNAL", "the signing key has no file digest; the store is keyed by it");
    }
    for (const v of verified) {
      if (v.digest !== first.digest || v.keyFileSha256 !== keyFileSha256 || !v.isVerified()) {
        throw new DangerzoneError(
          "INTERNAL",
          "signatures of different images or keys cannot share a store file",
        );
      }
    }
    await ensureOwnDirectory(this.dataDir, ["signatures", keyFileSha256]);
    const bundles = verified.filter(isVerifiedBundleSignature);
    const legacy = verified.filter((v) => !isVerifiedBundleSignature(v));
    let path: string | undefined;
    if (bundles.length > 0) {
      path = this.bundlesPathFor(keyFileSha256, first.digest);
      await writeFileAtomic(path, serializeBundleList(bundles));
    }
    if (legacy.length > 0) {
      path = this.pathFor(keyFileSha256, first.digest);
      await writeFileAtomic(path, serializeSignatureList(legacy));
    }
    return path ?? this.pathFor(keyFileSha256, first.digest);
  }
}

/** The bundle file's bytes: a JSON list of the bundles' exact texts, one per line. */
function serializeBundleList(bundles: readonly { readonly raw: string }[]): Uint8Array {
  return new TextEncoder().encode(`[\n${bundles.map((b) => b.raw).join(",\n")}\n]\n`);
}

/** A stored list: a regular file (never followed), at most `MAX_SIGNATURE_LIST_BYTES`; null when absent. */
function readBounded(path: string): Promise<Uint8Array | null> {
  return readOwnFileBounded(path, {
    limit: MAX_SIGNATURE_LIST_BYTES,
    tooLargeCode: "STORE_INVALID",
    what: "stored signature list",
  });
}

// Types the public API refers to, re-exported so its documentation is complete.
export type { Digest } from "../oci/digest.ts";
export type { UntrustedBundleEntry } from "../sigstore/cosign/bundle_signature.ts";
export type { VerifiedImageSignature } from "../sigstore/cosign/policy.ts";
