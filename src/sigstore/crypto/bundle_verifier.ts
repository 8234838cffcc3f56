/**
 * Verifies Sigstore bundles with `@sigstore/verify` and trust material built offline, plus the checks
 * DESIGN rule 9 says the library leaves to its caller:
 *
 * 1. the bundle's shape ({@linkcode parseBundle}) and the policy's kind match the bundle's key material;
 * 2. a certificate chain shipped in the bundle contains no root (self-signed) certificate;
 * 3. the library pipeline: timestamps, signing key or certificate chain (+ SCTs), tlog inclusion
 *    (SET and/or Merkle proof with signed checkpoint) and tlog body, then the signature itself;
 * 4. the artifact: a message signature's digest equals the artifact's digest; a DSSE envelope's
 *    in-toto statement has a subject with the artifact's digest (the library ignores the artifact);
 * 5. the identity: certificate SAN and OIDC issuer compared exactly (the library treats the SAN as a
 *    regular expression, so it gets an escaped and anchored one, and the result is compared again).
 *
 * Every library exception becomes a {@linkcode DangerzoneError}; nothing fails open.
 *
 * @module
 */
// The patch must be installed before @sigstore/* verify anything: keep this import first.
import "./node_crypto_patch.ts";
import crypto from "node:crypto";
import { Buffer } from "node:buffer";
import type { Bundle } from "@sigstore/bundle";
import { X509Certificate } from "@sigstore/core";
import {
  PolicyError,
  type SignedEntity,
  type Signer,
  toSignedEntity,
  VerificationError,
  Verifier,
} from "@sigstore/verify";
import { DangerzoneError, type ErrorCode } from "../../errors.ts";
import { type Digest, digestHex, toHex } from "../../oci/digest.ts";
import { isJsonObject } from "../formats/_json_shape.ts";
import { isLegacyIntoto, verifyLegacyIntotoEntry } from "./_legacy_intoto.ts";
import { supportsPrehashed, verifyPrehashedEcdsa } from "./_ecdsa_prehashed.ts";
import { parseBundle } from "../formats/bundle.ts";
import { productionTrustedRoot, type SigstoreTrustedRoot, trustMaterialFor } from "./trusted_root.ts";

/** The artifact a bundle must cover: its bytes, or only its sha256 digest. */
export type BundleArtifact = Uint8Array | { readonly digest: Digest };

/** Who must have signed: a known public key, or a Fulcio certificate identity and OIDC issuer. */
export type BundlePolicy =
  | { readonly kind: "key"; readonly publicKeyPem: string }
  | { readonly kind: "identity"; readonly identity: string; readonly issuer: string };

/** Options of {@linkcode verifyBundle}. */
export interface VerifyBundleOptions {
  /** The artifact the bundle must cover. */
  readonly artifact: BundleArtifact;
  /** The signer policy. */
  readonly policy: BundlePolicy;
  /** The trust root (default: the production Sigstore root the project ships). */
  readonly trustedRoot?: SigstoreTrustedRoot;
  /**
   * The exact DSSE envelope bytes the bundle's envelope came from. Needed only for Rekor `intoto`
   * 0.0.1 entries (legacy cosign attestations), whose body hashes the envelope as uploaded and which
   * `@sigstore/verify` does not support; such entries are verified here (SET and body binding).
   */
  readonly legacyEnvelopeBytes?: Uint8Array;
}

/** A transparency-log entry of a verified bundle. */
export interface VerifiedTlogEntry {
  /** Log ID (hex). */
  readonly logId: string;
  /** Log index (decimal; per log). */
  readonly logIndex: string;
  /** Integrated time (Unix seconds), when the entry carries one (Rekor v1). */
  readonly integratedTime: number | undefined;
  /** Entry kind and version, e.g. `hashedrekord/0.0.1`. */
  readonly kind: string;
}

/** The verified signer. */
export type VerifiedSigner =
  | { readonly kind: "key"; readonly publicKeySha256: string }
  | { readonly kind: "certificate"; readonly identity: string; readonly issuer: string };

const VERIFIED: unique symbol = Symbol("verified bundle");

/** The result of a successful {@linkcode verifyBundle}; only this module creates one. */
export interface VerifiedBundle {
  /** The bundle media type. */
  readonly mediaType: string;
  /** What was signed. */
  readonly content: "messageSignature" | "dsseEnvelope";
  /** The artifact digest the bundle was verified against. */
  readonly artifactDigest: Digest;
  /** Who signed. */
  readonly signer: VerifiedSigner;
  /** The transparency-log entries (all verified). */
  readonly tlogEntries: readonly VerifiedTlogEntry[];
  /** DSSE only: the payload type and the verified payload bytes (an in-toto statement). */
  readonly dsse: { readonly payloadType: string; readonly payload: Uint8Array } | undefined;
  /** DSSE only: the verified in-toto statement (subject checked against the artifact). */
  readonly statement: JsonStatement | undefined;
  /** @ignore The brand only {@linkcode verifyBundle} sets. */
  readonly [VERIFIED]: true;
}

/** An in-toto statement as verified JSON. */
export interface JsonStatement {
  /** `_type`. */
  readonly type: string;
  /** `predicateType`. */
  readonly predicateType: string;
  /** The subjects (name and digests). */
  readonly subject: readonly { readonly name: string; readonly digest: Readonly<Record<string, string>> }[];
  /** The predicate, unverified in meaning (policy code checks it). */
  readonly predicate: unknown;
}

const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
const IN_TOTO_STATEMENT_TYPES = ["https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"];
const HASHES: Readonly<Record<string, string>> = { 0: "sha256", 1: "sha256", 2: "sha384", 3: "sha512" };

/**
 * Verifies an untrusted Sigstore bundle (JSON text or bytes, or a bundle already shape-checked by
 * `bundleFromObject`) for an artifact, under a signer policy.
 *
 * @example
 * ```ts
 * import { verifyBundle } from "./bundle_verifier.ts";
 * const verified = verifyBundle(await Deno.readFile("a.txt.sigstore.json"), {
 *   artifact: await Deno.readFile("a.txt"),
 *   policy: { kind: "identity", identity: "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main",
 *     issuer: "https://token.actions.githubusercontent.com" },
 * });
 * ```
 */
export function verifyBundle(
  untrustedBundle: string | Uint8Array | Bundle,
  options: VerifyBundleOptions,
): VerifiedBundle {
  try {
    return verifyBundleUnwrapped(untrustedBundle, options);
  } catch (err) {
    throw toDangerzoneError(err);
  }
}

function verifyBundleUnwrapped(
  untrustedBundle: string | Uint8Array | Bundle,
  options: VerifyBundleOptions,
): VerifiedBundle {
  const bundle = typeof untrustedBundle === "string" || untrustedBundle instanceof Uint8Array
    ? parseBundle(untrustedBundle)
    : untrustedBundle;
  const root = options.trustedRoot ?? productionTrustedRoot();
  const policy = options.policy;

  // 1. The policy kind must match the bundle's key material.
  const material = bundle.verificationMaterial.content;
  let policyKey: crypto.KeyObject | undefined;
  if (policy.kind === "key") {
    if (material.$case !== "publicKey") {
      throw new DangerzoneError(
        "POLICY_IDENTITY_MISMATCH",
        "bundle is signed with a certificate, not with a key",
        {
          hint: "verify it with --certificate-identity and --certificate-oidc-issuer",
        },
      );
    }
    policyKey = parsePublicKey(policy.publicKeyPem);
  } else if (material.$case === "publicKey") {
    throw new DangerzoneError(
      "POLICY_IDENTITY_MISMATCH",
      "bundle is signed with a key, not with a certificate",
      {
        hint: "verify it with --key",
      },
    );
  }

  // 2. A shipped chain must not contain a root: trust comes from the trusted root only.
  if (material.$case === "x509CertificateChain") {
    material.x509CertificateChain.certificates.forEach((cert, i) => {
      if (isSelfSigned(cert.rawBytes)) {
        throw new DangerzoneError(
          "CERTIFICATE_INVALID",
          `bundle certificate chain contains a root (self-signed) certificate at position ${i}`,
          { hint: "a bundle must not ship trust anchors; they come from the trusted root" },
        );
      }
    });
  }

  // 3. The library pipeline.
  const artifactDigest = artifactSha256(options.artifact);
  const fullEntity = signedEntity(bundle, options.artifact, artifactDigest);
  const keyFinder = policyKey === undefined ? undefined : fixedKey(policyKey);
  const trust = trustMaterialFor(root, keyFinder, { checkpointSigners: checkpointSigners(bundle) });
  const legacy = fullEntity.tlogEntries.filter(isLegacyIntoto);
  for (const entry of legacy) verifyLegacyIntotoEntry(entry, bundle, trust, options.legacyEnvelopeBytes);
  const entity: SignedEntity = {
    ...fullEntity,
    tlogEntries: fullEntity.tlogEntries.filter((e) => !isLegacyIntoto(e)),
  };
  const verifier = new Verifier(trust, { tlogThreshold: Math.max(0, 1 - legacy.length), ctlogThreshold: 1 });
  const signer: Signer = policy.kind === "identity"
    ? verifier.verify(entity, {
      subjectAlternativeName: new RegExp(`^${escapeRegExp(policy.identity)}$`),
      extensions: { issuer: policy.issuer },
    })
    : verifier.verify(entity);

  // 4. The artifact binding the library does not do for DSSE.
  let dsse: VerifiedBundle["dsse"];
  let statement: JsonStatement | undefined;
  if (bundle.content.$case === "dsseEnvelope") {
    const env = bundle.content.dsseEnvelope;
    dsse = { payloadType: env.payloadType, payload: new Uint8Array(env.payload) };
    statement = checkStatement(dsse, artifactDigest);
  }

  // 5. The identity, exactly.
  let verifiedSigner: VerifiedSigner;
  if (policy.kind === "identity") {
    const san = signer.identity?.subjectAlternativeName;
    const issuer = signer.identity?.extensions?.issuer;
    if (san !== policy.identity || issuer !== policy.issuer) {
      throw new DangerzoneError(
        "POLICY_IDENTITY_MISMATCH",
        `certificate identity '${san ?? "(none)"}' from issuer '${issuer ?? "(none)"}' is not the expected ` +
          `'${policy.identity}' from '${policy.issuer}'`,
      );
    }
    verifiedSigner = { kind: "certificate", identity: san, issuer };
  } else {
    const spki = signer.key.export({ format: "der", type: "spki" });
    verifiedSigner = { kind: "key", publicKeySha256: crypto.createHash("sha256").update(spki).digest("hex") };
  }

  return {
    mediaType: bundle.mediaType,
    content: bundle.content.$case,
    artifactDigest,
    signer: verifiedSigner,
    tlogEntries: bundle.verificationMaterial.tlogEntries.map((e) => ({
      logId: e.logId === undefined ? "" : toHex(e.logId.keyId),
      logIndex: e.logIndex,
      integratedTime: e.integratedTime === "" || e.integratedTime === "0"
        ? undefined
        : Number(e.integratedTime),
      kind: e.kindVersion === undefined ? "" : `${e.kindVersion.kind}/${e.kindVersion.version}`,
    })),
    dsse,
    statement,
    [VERIFIED]: true,
  };
}

/** The signer names of the bundle's checkpoints (signed-note lines `— NAME SIGNATURE`); untrusted. */
function checkpointSigners(bundle: Bundle): string[] {
  const names: string[] = [];
  for (const entry of bundle.verificationMaterial.tlogEntries) {
    const envelope = entry.inclusionProof?.checkpoint?.envelope ?? "";
    for (const line of envelope.split("\n")) {
      const match = /^\u2014 (\S+) \S+$/.exec(line);
      if (match?.[1] !== undefined) names.push(match[1]);
    }
  }
  return names;
}

function artifactSha256(artifact: BundleArtifact): Digest {
  if (artifact instanceof Uint8Array) {
    return `sha256:${crypto.createHash("sha256").update(artifact).digest("hex")}` as Digest;
  }
  return artifact.digest;
}

/** The library's signed entity, with the artifact bound for message signatures. */
function signedEntity(bundle: Bundle, artifact: BundleArtifact, artifactDigest: Digest): SignedEntity {
  if (bundle.content.$case !== "messageSignature") return toSignedEntity(bundle);
  const message = bundle.content.messageSignature;
  const algorithm = message.messageDigest?.algorithm;
  const hash = algorithm === undefined ? undefined : HASHES[algorithm];
  const signedDigest = message.messageDigest?.digest;
  if (hash === undefined || signedDigest === undefined) {
    throw new DangerzoneError("BUNDLE_INVALID", "bundle message signature has no supported digest", {
      hint: "supported digests: SHA2_256, SHA2_384, SHA2_512",
    });
  }
  if (artifact instanceof Uint8Array) {
    const actual = crypto.createHash(hash).update(artifact).digest();
    if (!actual.equals(signedDigest)) throw artifactMismatch(hash, actual);
    return toSignedEntity(bundle, Buffer.from(artifact));
  }
  // Only a digest is known: the signature must be over exactly that sha256 digest.
  if (hash !== "sha256" || toHex(signedDigest) !== digestHex(artifactDigest)) {
    throw artifactMismatch(hash, signedDigest);
  }
  const entity = toSignedEntity(bundle);
  const content = entity.signature;
  return {
    ...entity,
    signature: {
      signature: content.signature,
      compareSignature: (sig) => content.compareSignature(sig),
      compareDigest: (digest) => content.compareDigest(digest),
      compareSignedDigest: (digest) => content.compareSignedDigest(digest),
      verifySignature: (key) => {
        if (!supportsPrehashed(key)) {
          throw new DangerzoneError(
            "UNSUPPORTED",
            "verifying against a digest needs an ECDSA P-256/P-384 signing key",
            {
              hint: "pass the artifact file instead of sha256:DIGEST",
            },
          );
        }
        return verifyPrehashedEcdsa(key, signedDigest, content.signature);
      },
    },
  };
}

function artifactMismatch(hash: string, signed: Uint8Array): DangerzoneError {
  return new DangerzoneError(
    "SIGNATURE_INVALID",
    `bundle signs ${hash}:${toHex(signed)}, which is not the digest of the given artifact`,
    { hint: "check that the bundle belongs to this artifact" },
  );
}

/** Parses the verified DSSE payload as an in-toto statement and binds it to the artifact digest. */
function checkStatement(
  dsse: { payloadType: string; payload: Uint8Array },
  artifactDigest: Digest,
): JsonStatement {
  if (dsse.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new DangerzoneError(
      "ATTESTATION_INVALID",
      `DSSE payload type '${dsse.payloadType}' is not an in-toto statement`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(dsse.payload));
  } catch (err) {
    throw new DangerzoneError("ATTESTATION_INVALID", "in-toto statement is not valid UTF-8 JSON", {
      cause: err,
    });
  }
  if (!isJsonObject(parsed)) {
    throw new DangerzoneError("ATTESTATION_INVALID", "in-toto statement is not a JSON object");
  }
  const type = parsed["_type"];
  const predicateType = parsed["predicateType"];
  const subjects = parsed["subject"];
  if (typeof type !== "string" || !IN_TOTO_STATEMENT_TYPES.includes(type)) {
    throw new DangerzoneError("ATTESTATION_INVALID", "in-toto statement has an unknown _type");
  }
  if (typeof predicateType !== "string" || !Array.isArray(subjects) || subjects.length === 0) {
    throw new DangerzoneError("ATTESTATION_INVALID", "in-toto statement lacks predicateType or subjects");
  }
  const subject: { name: string; digest: Record<string, string> }[] = [];
  for (const s of subjects) {
    if (!isJsonObject(s) || !isJsonObject(s["digest"])) {
      throw new DangerzoneError("ATTESTATION_INVALID", "in-toto statement subject is malformed");
    }
    const digest: Record<string, string> = {};
    for (const [alg, value] of Object.entries(s["digest"])) {
      if (typeof value !== "string") {
        throw new DangerzoneError("ATTESTATION_INVALID", "in-toto subject digest is malformed");
      }
      digest[alg] = value;
    }
    const name = s["name"];
    subject.push({ name: typeof name === "string" ? name : "", digest });
  }
  const want = digestHex(artifactDigest);
  if (!subject.some((s) => s.digest["sha256"]?.toLowerCase() === want)) {
    throw new DangerzoneError(
      "POLICY_DIGEST_MISMATCH",
      `in-toto statement subjects do not include the artifact digest ${artifactDigest}`,
      { hint: "the attestation is about another artifact" },
    );
  }
  return { type, predicateType, subject, predicate: parsed["predicate"] };
}

function parsePublicKey(pem: string): crypto.KeyObject {
  try {
    const key = crypto.createPublicKey(pem);
    if (key.type !== "public") throw new Error("not a public key");
    return key;
  } catch (err) {
    throw new DangerzoneError("KEY_INVALID", "the verification key is not a valid PEM public key", {
      hint: "pass a PEM SubjectPublicKeyInfo file (-----BEGIN PUBLIC KEY-----)",
      cause: err,
    });
  }
}

/** The key lookup of a key policy: the bundle's key hint is untrusted and ignored. */
function fixedKey(key: crypto.KeyObject) {
  return () => ({ publicKey: key, validFor: () => true });
}

function isSelfSigned(der: Uint8Array): boolean {
  let cert: X509Certificate;
  try {
    cert = X509Certificate.parse(Buffer.from(der));
  } catch (err) {
    throw new DangerzoneError(
      "CERTIFICATE_INVALID",
      "bundle certificate chain holds an unparseable certificate",
      {
        cause: err,
      },
    );
  }
  if (!cert.subject.equals(cert.issuer)) return false;
  try {
    return cert.verify();
  } catch {
    // Self-issued but not self-verifying: still a root-shaped certificate; refuse it too.
    return true;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

const LIBRARY_CODES: Readonly<Record<string, ErrorCode>> = {
  TLOG_INCLUSION_PROOF_ERROR: "TLOG_INCLUSION_INVALID",
  TLOG_INCLUSION_PROMISE_ERROR: "TLOG_SET_INVALID",
  TLOG_MISSING_INCLUSION_ERROR: "TLOG_MISSING",
  TLOG_BODY_ERROR: "TLOG_BODY_MISMATCH",
  TLOG_ERROR: "TLOG_MISSING",
  CERTIFICATE_ERROR: "CERTIFICATE_INVALID",
  PUBLIC_KEY_ERROR: "KEY_INVALID",
  SIGNATURE_ERROR: "SIGNATURE_INVALID",
  TIMESTAMP_ERROR: "SIGNATURE_INVALID",
  NOT_IMPLEMENTED_ERROR: "UNSUPPORTED",
  UNTRUSTED_SIGNER_ERROR: "POLICY_IDENTITY_MISMATCH",
};

/** Every failure becomes a DangerzoneError: library errors by code, anything else as BUNDLE_INVALID. */
function toDangerzoneError(err: unknown): DangerzoneError {
  if (err instanceof DangerzoneError) return err;
  if (err instanceof VerificationError || err instanceof PolicyError) {
    const code = LIBRARY_CODES[err.code] ?? "SIGNATURE_INVALID";
    const what = err.code === "TIMESTAMP_ERROR"
      ? "timestamp verification failed"
      : "bundle verification failed";
    return new DangerzoneError(code, `${what}: ${err.message}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DangerzoneError("BUNDLE_INVALID", `bundle could not be verified: ${message.slice(0, 200)}`, {
    hint: "the bundle is malformed",
    cause: err,
  });
}
