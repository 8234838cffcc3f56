/**
 * The signature store shared with the Dangerzone application:
 * `<data-dir>/signatures/<sha256 of the public key file>/<image digest hex>.json`, each a JSON list
 * of signatures in `cosign download signature` form. Only verified signatures can be written (the
 * writer takes {@linkcode VerifiedCosignSignature}s and writes their entries exactly as received);
 * what is read back is untrusted and must be verified again before use.
 *
 * @module
 */
import { join } from "node:path";
import { DangerzoneError } from "../errors.ts";
import { type Digest, digestHex, isDigest } from "../oci/digest.ts";
import { MAX_SIGNATURE_LIST_BYTES, serializeSignatureList } from "../sigstore/cosign_signature.ts";
import type { VerifiedCosignSignature } from "../sigstore/verifier.ts";
import { writeFileAtomic } from "./_atomic_write.ts";

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

  /** The stored list's bytes (untrusted: verify before use), or null when none is stored. */
  async readUntrusted(keyFileSha256: string, digest: Digest): Promise<Uint8Array | null> {
    const path = this.pathFor(keyFileSha256, digest);
    try {
      const info = await Deno.stat(path);
      if (info.size > MAX_SIGNATURE_LIST_BYTES) {
        throw new DangerzoneError(
          "STORE_INVALID",
          `${path} is larger than ${MAX_SIGNATURE_LIST_BYTES} bytes`,
        );
      }
      return await Deno.readFile(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      if (err instanceof DangerzoneError) throw err;
      throw new DangerzoneError("IO", `cannot read ${path}: ${String(err)}`, { cause: err });
    }
  }

  /** The image digests that have stored signatures for a key. */
  async listDigests(keyFileSha256: string): Promise<Digest[]> {
    if (!HEX64.test(keyFileSha256)) throw new DangerzoneError("INTERNAL", "invalid key file sha256");
    const out: Digest[] = [];
    try {
      for await (const e of Deno.readDir(join(this.signaturesDir, keyFileSha256))) {
        const m = /^([0-9a-f]{64})\.json$/.exec(e.name);
        const candidate = m === null ? "" : `sha256:${m[1]}`;
        if (e.isFile && isDigest(candidate)) out.push(candidate);
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw new DangerzoneError("IO", `cannot list ${this.signaturesDir}: ${String(err)}`, { cause: err });
    }
    return out.sort();
  }

  /**
   * Writes the verified signatures of one image atomically (replacing what was stored for it) and
   * returns the path. All must cover the same digest and be verified by the same key, whose file
   * sha256 must be known.
   */
  async write(verified: readonly VerifiedCosignSignature[]): Promise<string> {
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
    const path = this.pathFor(keyFileSha256, first.digest);
    await writeFileAtomic(path, serializeSignatureList(verified));
    return path;
  }
}
