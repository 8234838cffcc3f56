/**
 * Legacy cosign attestations (the `dev.cosignproject.cosign/atts` manifests of `cosign attest` before
 * Sigstore bundles): one layer per attestation whose blob is a DSSE envelope and whose annotations
 * carry the Fulcio certificate (`dev.sigstore.cosign/certificate`), its chain
 * (`dev.sigstore.cosign/chain`) and the Rekor SET bundle (`dev.sigstore.cosign/bundle`:
 * `{SignedEntryTimestamp, Payload: {body, integratedTime, logIndex, logID}}`).
 *
 * {@linkcode cosignAttestationToBundle} converts such a layer into a Sigstore v0.1 bundle so the one
 * bundle verifier checks it; {@linkcode verifyCosignAttestation} does both. The chain annotation is not
 * carried over: trust comes from the trusted root only, and cosign's chain includes the Fulcio root,
 * which a bundle must not ship (DESIGN rule 9).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Bundle } from "@sigstore/bundle";
import { DangerzoneError } from "../../errors.ts";
import type { Digest } from "../../oci/digest.ts";
import { isJsonObject } from "../formats/_json_shape.ts";
import { bundleFromObject } from "../formats/bundle.ts";
import { type BundlePolicy, type VerifiedBundle, verifyBundle } from "../crypto/bundle_verifier.ts";
import type { SigstoreTrustedRoot } from "../crypto/trusted_root.ts";

/** The annotation keys cosign writes on an attestation layer. */
export const COSIGN_ANNOTATIONS = {
  certificate: "dev.sigstore.cosign/certificate",
  chain: "dev.sigstore.cosign/chain",
  bundle: "dev.sigstore.cosign/bundle",
} as const;

/** Largest DSSE envelope accepted. */
export const MAX_ATTESTATION_BYTES = 4 * 1024 * 1024;

/** One untrusted attestation layer: its exact blob bytes (digest already checked) and annotations. */
export interface UntrustedCosignAttestation {
  /** The layer blob: a DSSE envelope (JSON), exact bytes. */
  readonly envelope: Uint8Array;
  /** The layer's annotations. */
  readonly annotations: Readonly<Record<string, string>>;
}

const SUPPORTED_KINDS = new Set(["intoto/0.0.1", "intoto/0.0.2", "dsse/0.0.1"]);

/**
 * Converts a legacy cosign attestation layer into a shape-checked Sigstore v0.1 bundle.
 *
 * @example
 * ```ts
 * import { cosignAttestationToBundle } from "./cosign_attestation.ts";
 * declare const layerBytes: Uint8Array;
 * declare const annotations: Record<string, string>;
 * const bundle = cosignAttestationToBundle({ envelope: layerBytes, annotations });
 * ```
 */
export function cosignAttestationToBundle(untrusted: UntrustedCosignAttestation): Bundle {
  if (untrusted.envelope.byteLength > MAX_ATTESTATION_BYTES) {
    throw invalid(`the DSSE envelope is larger than ${MAX_ATTESTATION_BYTES} bytes`);
  }
  const envelope = parseJson(untrusted.envelope, "the DSSE envelope");
  const signatures = envelope["signatures"];
  const dsseEnvelope = {
    payload: envelope["payload"],
    payloadType: envelope["payloadType"],
    signatures: Array.isArray(signatures)
      ? signatures.map((s) => isJsonObject(s) ? { sig: s["sig"], keyid: s["keyid"] ?? "" } : s)
      : signatures,
  };

  const certPem = untrusted.annotations[COSIGN_ANNOTATIONS.certificate];
  if (certPem === undefined || certPem === "") {
    throw invalid(
      `the layer has no ${COSIGN_ANNOTATIONS.certificate} annotation (keyless attestations only)`,
    );
  }
  const leaf = singlePemCertificate(certPem);

  const setJson = untrusted.annotations[COSIGN_ANNOTATIONS.bundle];
  if (setJson === undefined || setJson === "") {
    throw new DangerzoneError(
      "TLOG_MISSING",
      `the attestation has no ${COSIGN_ANNOTATIONS.bundle} annotation`,
      {
        hint: "an attestation without a transparency-log proof is refused",
      },
    );
  }
  const set = parseJson(new TextEncoder().encode(setJson), `the ${COSIGN_ANNOTATIONS.bundle} annotation`);
  const payload = set["Payload"];
  const sigTimestamp = set["SignedEntryTimestamp"];
  if (
    !isJsonObject(payload) || Object.keys(set).some((k) => k !== "Payload" && k !== "SignedEntryTimestamp")
  ) {
    throw invalid(`the ${COSIGN_ANNOTATIONS.bundle} annotation is not {SignedEntryTimestamp, Payload}`);
  }
  const { body, integratedTime, logIndex, logID } = payload;
  if (
    typeof body !== "string" || !isCount(integratedTime) || !isCount(logIndex) ||
    typeof logID !== "string" || !/^[0-9a-f]{64}$/.test(logID) || typeof sigTimestamp !== "string" ||
    Object.keys(payload).length !== 4
  ) {
    throw invalid(`the ${COSIGN_ANNOTATIONS.bundle} annotation's Payload is malformed`);
  }
  const decodedBody = parseJson(Buffer.from(body, "base64"), "the Rekor entry body");
  const kind = decodedBody["kind"];
  const version = decodedBody["apiVersion"];
  if (typeof kind !== "string" || typeof version !== "string" || !SUPPORTED_KINDS.has(`${kind}/${version}`)) {
    throw invalid(`the Rekor entry kind is not intoto 0.0.1/0.0.2 or dsse 0.0.1`);
  }

  return bundleFromObject({
    mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
    verificationMaterial: {
      x509CertificateChain: { certificates: [{ rawBytes: leaf }] },
      tlogEntries: [{
        logIndex: String(logIndex),
        logId: { keyId: Buffer.from(logID, "hex").toString("base64") },
        kindVersion: { kind, version },
        integratedTime: String(integratedTime),
        inclusionPromise: { signedEntryTimestamp: sigTimestamp },
        canonicalizedBody: body,
      }],
    },
    dsseEnvelope,
  });
}

/** Options of {@linkcode verifyCosignAttestation}. */
export interface VerifyCosignAttestationOptions {
  /** The image manifest digest the statement's subject must name. */
  readonly imageDigest: Digest;
  /** The signer policy (for SLSA provenance: the builder workflow identity and the Actions issuer). */
  readonly policy: BundlePolicy;
  /** The trust root (default: production). */
  readonly trustedRoot?: SigstoreTrustedRoot;
}

/**
 * Converts and verifies a legacy cosign attestation layer for an image digest: certificate chain to
 * the trusted root, SCT, Rekor SET and entry binding, DSSE signature, statement subject = image digest,
 * exact identity. The predicate's meaning (SLSA policy) is left to the caller.
 */
export function verifyCosignAttestation(
  untrusted: UntrustedCosignAttestation,
  options: VerifyCosignAttestationOptions,
): VerifiedBundle {
  const bundle = cosignAttestationToBundle(untrusted);
  return verifyBundle(bundle, {
    artifact: { digest: options.imageDigest },
    policy: options.policy,
    legacyEnvelopeBytes: untrusted.envelope,
    ...(options.trustedRoot === undefined ? {} : { trustedRoot: options.trustedRoot }),
  });
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw invalid(`${what} is not valid UTF-8 JSON`, err);
  }
  if (!isJsonObject(value)) throw invalid(`${what} is not a JSON object`);
  return { ...value };
}

/** The base64 DER of the only certificate in a PEM text. */
function singlePemCertificate(pem: string): string {
  const blocks = [
    ...pem.matchAll(/-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g),
  ];
  const rest = pem.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, "").trim();
  const block = blocks[0]?.[1];
  if (blocks.length !== 1 || block === undefined || rest !== "") {
    throw invalid(`the ${COSIGN_ANNOTATIONS.certificate} annotation is not exactly one PEM certificate`);
  }
  return block.replace(/\s+/g, "");
}

function invalid(what: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("ATTESTATION_INVALID", `cosign attestation is invalid: ${what}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}
