/**
 * Content digests. A {@linkcode Digest} is a branded string that only {@linkcode parseDigest}
 * (or {@linkcode digestFromHex}) can create, so a value of this type is always a well-formed
 * `sha256:<64 lowercase hex>`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";

/** The brand that makes {@linkcode Digest} nominal; it exists only in types. */
export declare const digestBrand: unique symbol;

/** A well-formed `sha256:<64 hex>` digest. */
export type Digest = string & { readonly [digestBrand]: true };

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * Parses a digest string; only sha256 is accepted.
 *
 * @example
 * ```ts
 * import { parseDigest } from "./digest.ts";
 * const d = parseDigest("sha256:" + "a".repeat(64));
 * ```
 */
export function parseDigest(untrusted: string): Digest {
  if (!DIGEST_RE.test(untrusted)) {
    throw new DangerzoneError(
      "USAGE",
      `invalid digest '${untrusted.slice(0, 80)}': expected sha256: followed by 64 lowercase hex digits`,
    );
  }
  return untrusted as Digest;
}

/** True when `value` is a well-formed sha256 digest string. */
export function isDigest(value: unknown): value is Digest {
  return typeof value === "string" && DIGEST_RE.test(value);
}

/** Builds a digest from 64 hex characters. */
export function digestFromHex(hex: string): Digest {
  return parseDigest(`sha256:${hex}`);
}

/** The 64 hex characters of a digest. */
export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** The sha256 digest of bytes held in memory (manifests, payloads; never blobs). */
export async function sha256Digest(bytes: Uint8Array): Promise<Digest> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return digestFromHex(toHex(hash));
}
