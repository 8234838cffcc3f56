/**
 * Public keys: PEM SubjectPublicKeyInfo for ECDSA P-256, ECDSA P-384 and Ed25519, the two digests a
 * key is known by (the sha256 of its file's bytes, which names its signature-store folder, and the
 * sha256 of its SPKI DER, which is a Rekor log ID), and signature verification over exact bytes with
 * Web Crypto.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { toHex } from "../../oci/digest.ts";
import { bytesEqual, DerFormatError, ecdsaDerToRaw, expectDer } from "./_asn1.ts";
import { decodeBase64Strict } from "../formats/_base64.ts";
import { DANGERZONE_PUBLISHER_KEY_PEM } from "./_pinned_keys.ts";
import { readFileBounded } from "../../read_bounded.ts";

/** The key types we accept. */
export type KeyAlgorithm = "ecdsa-p256" | "ecdsa-p384" | "ed25519";

/** A parsed, validated public key. */
export interface PublicKey {
  /** The key type. */
  readonly algorithm: KeyAlgorithm;
  /** The exact SubjectPublicKeyInfo DER; two keys are equal when these bytes are. */
  readonly spki: Uint8Array;
  /** sha256 hex of the SPKI DER (the Rekor log ID when this is a log key). */
  readonly spkiSha256: string;
  /** sha256 hex of the key file's bytes (the signature-store folder name), when read from a file. */
  readonly fileSha256: string | null;
  /** The Web Crypto key, imported once. */
  readonly cryptoKey: CryptoKey;
}

/** Largest PEM key file we read (a P-384 PEM is under 300 bytes). */
export const MAX_KEY_FILE_BYTES = 16 * 1024;

const OID_EC_PUBLIC_KEY = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384 = [0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519 = [0x2b, 0x65, 0x70];

const PEM_RE = /^\s*-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END PUBLIC KEY-----\s*$/;

/**
 * Parses the bytes of a PEM public key file (one `PUBLIC KEY` block) and records the sha256 of the
 * file's exact bytes.
 *
 * @example
 * ```ts ignore
 * import { parsePublicKeyPem } from "./keys.ts";
 * const key = await parsePublicKeyPem(await Deno.readFile("cosign.pub"));
 * console.log(key.fileSha256, key.spkiSha256);
 * ```
 */
export async function parsePublicKeyPem(untrustedFile: Uint8Array): Promise<PublicKey> {
  if (untrustedFile.length > MAX_KEY_FILE_BYTES) {
    throw keyError(`the key file is larger than ${MAX_KEY_FILE_BYTES} bytes`);
  }
  const spki = spkiFromPem(untrustedFile);
  const fileSha256 = await sha256Hex(untrustedFile);
  return await importSpki(spki, fileSha256);
}

/** Parses a SubjectPublicKeyInfo DER (e.g. from a trusted root); the key has no file digest. */
export async function publicKeyFromSpki(untrustedSpki: Uint8Array): Promise<PublicKey> {
  return await importSpki(untrustedSpki, null);
}

/**
 * Extracts and validates the SPKI DER of a PEM `PUBLIC KEY` block without importing it (cheap; used to
 * compare a Rekor entry's key with the trusted one).
 */
export function spkiFromPem(untrustedPem: Uint8Array | string): Uint8Array {
  let text: string;
  try {
    text = typeof untrustedPem === "string"
      ? untrustedPem
      : new TextDecoder("utf-8", { fatal: true }).decode(untrustedPem);
  } catch (cause) {
    throw keyError("the key is not UTF-8 text", cause);
  }
  const m = PEM_RE.exec(text);
  if (m === null || m[1] === undefined) {
    throw keyError("expected exactly one PEM '-----BEGIN PUBLIC KEY-----' block");
  }
  const der = decodeBase64Strict(m[1].replace(/\r?\n/g, ""));
  if (der === null) throw keyError("the PEM body is not valid base64");
  keyAlgorithmOf(der);
  return der;
}

/** True when two keys are the same key (their SPKI DER bytes are equal). */
export function sameKey(a: PublicKey, b: PublicKey | Uint8Array): boolean {
  return bytesEqual(a.spki, b instanceof Uint8Array ? b : b.spki);
}

/**
 * Verifies `signature` over the exact bytes `data` with `key`. ECDSA signatures are DER as cosign
 * and Rekor write them (P-256 with SHA-256, P-384 with SHA-384), converted strictly to `r || s`;
 * Ed25519 signatures are the raw 64 bytes. Returns false for a malformed or non-verifying signature.
 */
export async function verifySignature(
  key: PublicKey,
  signature: Uint8Array,
  data: Uint8Array,
): Promise<boolean> {
  let params: AlgorithmIdentifier | EcdsaParams;
  let sig: Uint8Array;
  try {
    switch (key.algorithm) {
      case "ecdsa-p256":
        params = { name: "ECDSA", hash: "SHA-256" };
        sig = ecdsaDerToRaw(signature, 32);
        break;
      case "ecdsa-p384":
        params = { name: "ECDSA", hash: "SHA-384" };
        sig = ecdsaDerToRaw(signature, 48);
        break;
      case "ed25519":
        params = { name: "Ed25519" };
        if (signature.length !== 64) return false;
        sig = signature;
        break;
    }
  } catch (err) {
    if (err instanceof DerFormatError) return false;
    throw err;
  }
  return await crypto.subtle.verify(
    params,
    key.cryptoKey,
    sig as Uint8Array<ArrayBuffer>,
    data as Uint8Array<ArrayBuffer>,
  );
}

/** A short display name: the key file's sha256 (else the SPKI's), abbreviated. */
export function keyDisplayName(key: PublicKey): string {
  return key.fileSha256 === null
    ? `key (SPKI sha256:${key.spkiSha256.slice(0, 12)}…)`
    : `key (file sha256:${key.fileSha256.slice(0, 12)}…)`;
}

async function importSpki(untrustedSpki: Uint8Array, fileSha256: string | null): Promise<PublicKey> {
  const algorithm = keyAlgorithmOf(untrustedSpki);
  const spki = untrustedSpki.slice();
  let cryptoKey: CryptoKey;
  try {
    const params = algorithm === "ed25519"
      ? { name: "Ed25519" }
      : { name: "ECDSA", namedCurve: algorithm === "ecdsa-p256" ? "P-256" : "P-384" };
    cryptoKey = await crypto.subtle.importKey("spki", spki, params, true, ["verify"]);
  } catch (cause) {
    throw keyError("the public key is not a valid point on its curve", cause);
  }
  return { algorithm, spki, spkiSha256: await sha256Hex(spki), fileSha256, cryptoKey };
}

/** Validates the SPKI structure strictly and returns the key type. */
function keyAlgorithmOf(der: Uint8Array): KeyAlgorithm {
  try {
    const outer = expectDer(der, 0, 0x30);
    if (outer.end !== der.length) throw new DerFormatError("trailing bytes after the key");
    const algId = expectDer(der, outer.start, 0x30, outer.end);
    const oid = expectDer(der, algId.start, 0x06, algId.end);
    const bits = expectDer(der, algId.end, 0x03, outer.end);
    if (bits.end !== outer.end) throw new DerFormatError("trailing data in the key");
    if (der[bits.start] !== 0) throw new DerFormatError("the key bit string has unused bits");
    const point = der.subarray(bits.start + 1, bits.end);
    const oidBytes = der.subarray(oid.start, oid.end);
    if (matches(oidBytes, OID_ED25519)) {
      if (oid.end !== algId.end) throw new DerFormatError("Ed25519 keys take no parameters");
      if (point.length !== 32) throw new DerFormatError("an Ed25519 key is 32 bytes");
      return "ed25519";
    }
    if (!matches(oidBytes, OID_EC_PUBLIC_KEY)) throw new DerFormatError("not an EC or Ed25519 key");
    const curve = expectDer(der, oid.end, 0x06, algId.end);
    if (curve.end !== algId.end) throw new DerFormatError("trailing data in the algorithm identifier");
    const curveBytes = der.subarray(curve.start, curve.end);
    const algorithm: KeyAlgorithm | null = matches(curveBytes, OID_P256)
      ? "ecdsa-p256"
      : matches(curveBytes, OID_P384)
      ? "ecdsa-p384"
      : null;
    if (algorithm === null) throw new DerFormatError("unsupported curve (only P-256 and P-384)");
    const width = algorithm === "ecdsa-p256" ? 32 : 48;
    if (point[0] !== 0x04 || point.length !== 1 + 2 * width) {
      throw new DerFormatError("the EC point is not an uncompressed point of its curve");
    }
    // Web Crypto implementations do not all check this on import.
    if (!onCurve(algorithm, point.subarray(1, 1 + width), point.subarray(1 + width))) {
      throw new DerFormatError("the EC point is not on its curve");
    }
    return algorithm;
  } catch (err) {
    if (err instanceof DerFormatError) throw keyError(`invalid SubjectPublicKeyInfo: ${err.message}`, err);
    throw err;
  }
}

const CURVES = {
  "ecdsa-p256": {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  "ecdsa-p384": {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
} as const;

/** True when (x, y) satisfies y^2 = x^3 - 3x + b (mod p) with both coordinates below p. */
function onCurve(algorithm: "ecdsa-p256" | "ecdsa-p384", xBytes: Uint8Array, yBytes: Uint8Array): boolean {
  const { p, b } = CURVES[algorithm];
  const x = BigInt(`0x${toHex(xBytes)}`);
  const y = BigInt(`0x${toHex(yBytes)}`);
  if (x >= p || y >= p) return false;
  const mod = (v: bigint) => ((v % p) + p) % p;
  return mod(y * y) === mod(x * x * x - 3n * x + b);
}

function matches(bytes: Uint8Array, expected: readonly number[]): boolean {
  return bytes.length === expected.length && expected.every((b, i) => bytes[i] === b);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)));
}

function keyError(detail: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("KEY_INVALID", `public key: ${detail}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: "give a PEM SubjectPublicKeyInfo ECDSA P-256/P-384 or Ed25519 key, as cosign.pub",
  });
}

/** Reads and parses a PEM public key file (at most {@linkcode MAX_KEY_FILE_BYTES}). */
export async function loadPublicKeyFile(path: string): Promise<PublicKey> {
  const bytes = await readFileBounded(path, {
    limit: MAX_KEY_FILE_BYTES,
    tooLargeCode: "KEY_INVALID",
    what: "key file",
  });
  try {
    return await parsePublicKeyPem(bytes);
  } catch (err) {
    if (err instanceof DangerzoneError) {
      throw new DangerzoneError(err.code, `${path}: ${err.message}`, {
        cause: err,
        ...(err.hint ? { hint: err.hint } : {}),
      });
    }
    throw err;
  }
}

/** The pinned Dangerzone publisher key (`freedomofpress-dangerzone.pub`), with its file sha256. */
export async function pinnedPublisherKey(): Promise<PublicKey> {
  return await parsePublicKeyPem(new TextEncoder().encode(DANGERZONE_PUBLISHER_KEY_PEM));
}
