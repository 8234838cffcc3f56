/**
 * The verification pipeline for cosign v3 image signatures: a Sigstore bundle (v0.3) holding a DSSE
 * envelope over an in-toto statement with predicate type `https://sigstore.dev/cosign/sign/v1`, signed
 * with the trusted publisher key (`cosign sign --key`, the new bundle format, cosign v3's default).
 * cosign writes the statement as `{"_type": ".../Statement/v1", "subject": [{"digest": {"sha256": HEX},
 * "annotations": {...}}], "predicateType": ".../cosign/sign/v1", "predicate": {}}`: it names no
 * docker-reference (cosign v3 does not sign one; `cosign verify` only checks the subject digest), so the
 * reference is enforced only when a subject `name` is present.
 *
 * 1. the bundle text is parsed strictly (duplicate keys refused) and shape-checked (`bundle.ts`);
 * 2. `verifyBundle` (`@sigstore/verify` plus the caller checks of DESIGN rule 9): the signature with the
 *    trusted key, every transparency-log entry (SET and/or Merkle inclusion proof with a checkpoint
 *    signed by a log of the trusted root) and its body;
 * 3. only then the verified DSSE payload is parsed strictly: the statement type, the predicate type,
 *    exactly one subject whose digest is exactly `{sha256: <image digest>}` (DESIGN rule 2), the
 *    subject name (if any) against the expected repository;
 * 4. each log entry's position for anti-rollback (DESIGN rule 5) from signed data only: with a SET, the
 *    SET-covered `logIndex` and `integratedTime`; without one (Rekor v2), the index the Merkle proof
 *    binds (the entry's `logIndex` must equal it) and the earliest verified RFC 3161 timestamp. The log
 *    ID is the one the trusted root declares for the log whose key verified (for Rekor v2 not the
 *    SPKI hash).
 *
 * A {@linkcode VerifiedBundleSignature} can only be made here.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { RFC3161Timestamp } from "@sigstore/core";
import { DangerzoneError } from "../../errors.ts";
import { type Digest, digestHex, toHex } from "../../oci/digest.ts";
import { encodeBase64 } from "../formats/_base64.ts";
import {
  decodeUtf8,
  isJsonObject,
  parseStrictJson,
  parseStrictJsonBytes,
  ShapeReader,
} from "../../strict_json.ts";
import { type Bundle, MAX_BUNDLE_BYTES, parseBundle } from "../formats/bundle.ts";
import { type VerifiedBundle, verifyBundle } from "../crypto/bundle_verifier.ts";
import type { PublicKey } from "../crypto/keys.ts";
import { repositoryOf } from "../formats/simple_signing.ts";
import type { SigstoreTrustedRoot } from "../crypto/trusted_root.ts";
import {
  type BundleLogEntry,
  takeBundleSignatureMint,
  type VerifiedBundleSignature,
} from "./verified_bundle_signature.ts";

/** The predicate type of a cosign v3 image signature. */
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";
const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
const STATEMENT_TYPES: readonly string[] = [
  "https://in-toto.io/Statement/v1",
  "https://in-toto.io/Statement/v0.1",
];
const SUBJECT_KEYS: readonly string[] = ["name", "uri", "annotations", "mediaType", "downloadLocation"];

/** A Sigstore bundle as found (registry referrer or the bundle store). Untrusted. */
export interface UntrustedBundleEntry {
  /** Position among the signatures it was found with, from 0. */
  readonly index: number;
  /** The exact bundle JSON text, as received. */
  readonly raw: string;
}

/** What a cosign v3 bundle signature is verified against. */
export interface BundleSignatureTrust {
  /** The trusted publisher key. */
  readonly publicKey: PublicKey;
  /** The trust root whose logs (and TSAs) count; undefined = the production root. */
  readonly trustedRoot: SigstoreTrustedRoot | undefined;
}

/** What the statement must say. */
export interface BundleSignatureExpectations {
  /** The manifest digest we computed. */
  readonly digest: Digest;
  /** The repository a subject name must name (exactly, tag and digest dropped); undefined = reported only. */
  readonly reference?: string | undefined;
}

export {
  type BundleLogEntry,
  isVerifiedBundleSignature,
  type VerifiedBundleSignature,
} from "./verified_bundle_signature.ts";

/** The only way to create a VerifiedBundleSignature: taken once, here. */
const mintVerified = takeBundleSignatureMint();

/**
 * Verifies one cosign v3 bundle image signature, or throws a {@linkcode DangerzoneError} whose message
 * names the rule that failed. Never fails open: an unexpected exception is a verification failure.
 *
 * @example
 * ```ts ignore
 * const v = verifyCosignBundleSignature({ index: 0, raw }, { publicKey, trustedRoot }, { digest });
 * console.log(v.logId, v.logIndex);
 * ```
 */
export function verifyCosignBundleSignature(
  entry: UntrustedBundleEntry,
  trust: BundleSignatureTrust,
  expected: BundleSignatureExpectations,
): VerifiedBundleSignature {
  try {
    return pipeline(entry, trust, expected);
  } catch (err) {
    if (err instanceof DangerzoneError) throw err;
    throw new DangerzoneError(
      "BUNDLE_INVALID",
      `rule 8 (no fail-open): bundle verification stopped on malformed input (${String(err).slice(0, 120)})`,
      { cause: err },
    );
  }
}

/** The exact text of discovered bundle bytes (strict UTF-8), bounded. */
export function bundleEntryFromBytes(untrustedBytes: Uint8Array, index: number): UntrustedBundleEntry {
  if (untrustedBytes.byteLength > MAX_BUNDLE_BYTES) {
    throw new DangerzoneError("BUNDLE_INVALID", `rule 7 (bounded input): bundle ${index + 1} is too large`);
  }
  try {
    return { index, raw: decodeUtf8(untrustedBytes) };
  } catch (err) {
    throw new DangerzoneError("BUNDLE_INVALID", `bundle ${index + 1} is not valid UTF-8`, { cause: err });
  }
}

function pipeline(
  entry: UntrustedBundleEntry,
  trust: BundleSignatureTrust,
  expected: BundleSignatureExpectations,
): VerifiedBundleSignature {
  // 1. Strict JSON (no duplicate keys), then the bundle's shape.
  try {
    parseStrictJson(entry.raw);
  } catch (err) {
    throw new DangerzoneError(
      "BUNDLE_INVALID",
      `the bundle is not strict JSON: ${String(err).slice(0, 120)}`,
      {
        cause: err,
      },
    );
  }
  const bundle: Bundle = parseBundle(entry.raw);

  // 2. Signature, key, log entries (inclusion and body), DSSE subject vs artifact (library + rule 9).
  const verified: VerifiedBundle = verifyBundle(bundle, {
    artifact: { digest: expected.digest },
    policy: { kind: "key", publicKeyPem: spkiPem(trust.publicKey.spki) },
    ...(trust.trustedRoot === undefined ? {} : { trustedRoot: trust.trustedRoot }),
  });
  if (verified.signer.kind !== "key" || verified.signer.publicKeySha256 !== trust.publicKey.spkiSha256) {
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      "rule 2 (signature): the bundle is not signed by the trusted key",
    );
  }

  // 3. The now-authenticated statement, strictly.
  if (verified.content !== "dsseEnvelope" || verified.dsse === undefined) {
    throw new DangerzoneError(
      "PAYLOAD_INVALID",
      "rule 2 (payload): the bundle holds a message signature, not a cosign image signature statement",
    );
  }
  const name = acceptStatement(verified.dsse, expected);

  // 4. Log positions from signed data only.
  const logEntries = logPositions(bundle);

  return mintVerified({
    digest: expected.digest,
    dockerReference: name,
    referenceEnforced: expected.reference !== undefined && name !== null,
    logEntries,
    keySpkiSha256: trust.publicKey.spkiSha256,
    keyFileSha256: trust.publicKey.fileSha256,
    mediaType: bundle.mediaType,
    raw: entry.raw,
  });
}

/** Checks the statement; returns the subject name, or null when none is signed. */
function acceptStatement(
  dsse: { readonly payloadType: string; readonly payload: Uint8Array },
  expected: BundleSignatureExpectations,
): string | null {
  const r: ShapeReader = new ShapeReader("PAYLOAD_INVALID", "rule 2 (payload)");
  if (dsse.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    r.fail(`the DSSE payload type is "${dsse.payloadType.slice(0, 80)}", not an in-toto statement`);
  }
  let parsed: unknown;
  try {
    parsed = parseStrictJsonBytes(dsse.payload);
  } catch (err) {
    r.fail(`the statement is not strict JSON: ${String(err).slice(0, 120)}`, err);
  }
  const st = r.object(parsed, "the statement", ["_type", "subject", "predicateType"], ["predicate"]);
  const type = r.string(st["_type"], "_type");
  if (!STATEMENT_TYPES.includes(type)) r.fail(`the statement type "${type.slice(0, 80)}" is unknown`);
  const predicateType = r.string(st["predicateType"], "predicateType");
  if (predicateType !== COSIGN_SIGN_PREDICATE) {
    r.fail(
      `the statement's predicate type is "${predicateType.slice(0, 80)}", not "${COSIGN_SIGN_PREDICATE}"`,
    );
  }
  if (st["predicate"] !== undefined && !isJsonObject(st["predicate"])) {
    r.fail("the predicate is not an object");
  }
  const subjects = st["subject"];
  if (!Array.isArray(subjects) || subjects.length !== 1) {
    r.fail("the statement must name exactly one subject (the image)");
  }
  const subject = r.object(subjects[0], "the subject", ["digest"], SUBJECT_KEYS);
  const digest = r.object(subject["digest"], "the subject digest", ["sha256"]);
  const hex = r.string(digest["sha256"], "the subject's sha256");
  if (hex !== digestHex(expected.digest)) {
    throw new DangerzoneError(
      "POLICY_DIGEST_MISMATCH",
      `rule 2 (payload): the signature is for sha256:${hex.slice(0, 64)}, not for ${expected.digest}`,
    );
  }
  const name = subject["name"];
  if (name === undefined || name === "") return null;
  const signed = r.string(name, "the subject name");
  if (expected.reference !== undefined && repositoryOf(signed) !== repositoryOf(expected.reference)) {
    throw new DangerzoneError(
      "POLICY_REFERENCE_MISMATCH",
      `rule 2 (payload): the signed subject name is "${signed.slice(0, 120)}", not "${
        repositoryOf(expected.reference)
      }"`,
      { hint: "if you pull through a mirror, name the signed repository with --identity" },
    );
  }
  return signed;
}

/** The verified positions of every log entry (the library verified each one). */
function logPositions(bundle: Bundle): BundleLogEntry[] {
  const entries = bundle.verificationMaterial.tlogEntries;
  if (entries.length === 0) {
    throw new DangerzoneError(
      "TLOG_MISSING",
      "rule 5 (anti-rollback): the bundle has no transparency-log entry",
    );
  }
  let tsaTime: number | undefined;
  for (const ts of bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? []) {
    const t = Math.floor(
      RFC3161Timestamp.parse(Buffer.from(ts.signedTimestamp)).signingTime.getTime() / 1000,
    );
    tsaTime = tsaTime === undefined ? t : Math.min(tsaTime, t);
  }
  return entries.map((e) => {
    const kind = e.kindVersion === undefined ? "" : `${e.kindVersion.kind}/${e.kindVersion.version}`;
    if (e.logId === undefined) throw new DangerzoneError("BUNDLE_INVALID", "a log entry has no log ID");
    const logId = toHex(e.logId.keyId);
    if (e.inclusionPromise !== undefined) {
      return { logId, logIndex: safeIndex(e.logIndex), integratedTime: safeIndex(e.integratedTime), kind };
    }
    const proof = e.inclusionProof;
    if (proof === undefined || proof.logIndex !== e.logIndex) {
      throw new DangerzoneError(
        "TLOG_INCLUSION_INVALID",
        `rule 5 (anti-rollback): log index ${e.logIndex.slice(0, 20)} is neither signed (no SET) nor bound ` +
          "by the inclusion proof",
      );
    }
    if (tsaTime === undefined) {
      throw new DangerzoneError(
        "TLOG_MISSING",
        "rule 5 (anti-rollback): the log entry has no signed time (no SET and no timestamp authority)",
      );
    }
    return { logId, logIndex: safeIndex(e.logIndex), integratedTime: tsaTime, kind };
  });
}

function safeIndex(text: string): number {
  const n = /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new DangerzoneError(
      "BUNDLE_INVALID",
      `a log entry number "${text.slice(0, 20)}" is not an integer`,
    );
  }
  return n;
}

function spkiPem(spki: Uint8Array): string {
  const b64 = encodeBase64(spki).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

// Types the public API refers to, re-exported so its documentation is complete.
export type { Digest } from "../../oci/digest.ts";
export type { PublicKey } from "../crypto/keys.ts";
export type { SigstoreTrustedRoot } from "../crypto/trusted_root.ts";
