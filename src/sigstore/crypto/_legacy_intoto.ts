/**
 * Private: Rekor `intoto` 0.0.1 entries, which legacy cosign attestations (cosign < 2.0, e.g.
 * slsa-github-generator < v1.10) carry and `@sigstore/verify` 4.x does not support. Such a body
 * holds no signature: it binds the entry to `sha256(envelope bytes as uploaded)`, optionally
 * `sha256(payload)`, and the signing certificate. This file verifies, for one entry:
 *
 * 1. the SET (inclusion promise) with a trusted-root log key chosen by log ID and valid at the
 *    integrated time, over the canonical JSON of `{body, integratedTime, logID, logIndex}`;
 * 2. the body: kind/version, the envelope hash over the exact envelope bytes, the payload hash, and
 *    the certificate equal to the bundle's signing certificate;
 * 3. the exact envelope bytes parse to the very envelope the bundle carries (payload, type, signature).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import crypto from "node:crypto";
import type { Bundle, TransparencyLogEntry } from "@sigstore/bundle";
import { crypto as coreCrypto, json as coreJson } from "@sigstore/core";
import type { TrustMaterial } from "@sigstore/verify";
import { DangerzoneError } from "../../errors.ts";
import { isJsonObject } from "../formats/_json_shape.ts";

/** True for a Rekor `intoto` 0.0.1 entry. */
export function isLegacyIntoto(entry: TransparencyLogEntry): boolean {
  return entry.kindVersion?.kind === "intoto" && entry.kindVersion.version === "0.0.1";
}

/** Verifies one `intoto` 0.0.1 entry (SET and body binding); throws a DangerzoneError otherwise. */
export function verifyLegacyIntotoEntry(
  entry: TransparencyLogEntry,
  bundle: Bundle,
  trust: TrustMaterial,
  envelopeBytes: Uint8Array | undefined,
): void {
  if (bundle.content.$case !== "dsseEnvelope") throw bodyMismatch("an intoto entry needs a DSSE envelope");
  if (envelopeBytes === undefined) {
    throw new DangerzoneError("UNSUPPORTED", "Rekor intoto 0.0.1 entries need the original envelope bytes", {
      hint: "verify this legacy cosign attestation through its OCI layer",
    });
  }
  verifySet(entry, trust);

  let body: unknown;
  try {
    body = JSON.parse(entry.canonicalizedBody.toString("utf8"));
  } catch (err) {
    throw bodyMismatch("the entry body is not JSON", err);
  }
  const spec = field(body, "spec");
  const content = field(spec, "content");
  if (!isJsonObject(body) || body["kind"] !== "intoto" || body["apiVersion"] !== "0.0.1") {
    throw bodyMismatch("the entry body is not intoto 0.0.1");
  }
  checkHash(field(content, "hash"), envelopeBytes, "envelope");
  const env = bundle.content.dsseEnvelope;
  const payloadHash = field(content, "payloadHash");
  if (payloadHash !== undefined) checkHash(payloadHash, env.payload, "payload");

  // The certificate in the body must be the bundle's signing certificate.
  const material = bundle.verificationMaterial.content;
  const leaf = material.$case === "x509CertificateChain"
    ? material.x509CertificateChain.certificates[0]?.rawBytes
    : material.$case === "certificate"
    ? material.certificate.rawBytes
    : undefined;
  const bodyKey = isJsonObject(spec) ? spec["publicKey"] : undefined;
  if (leaf === undefined || typeof bodyKey !== "string") {
    throw bodyMismatch("the entry has no certificate to compare with the signing certificate");
  }
  let bodyCert: crypto.X509Certificate;
  try {
    bodyCert = new crypto.X509Certificate(Buffer.from(bodyKey, "base64"));
  } catch (err) {
    throw bodyMismatch("the entry's certificate does not parse", err);
  }
  if (!Buffer.from(bodyCert.raw).equals(Buffer.from(leaf))) {
    throw bodyMismatch("the entry's certificate is not the signing certificate");
  }

  // The exact bytes must be the envelope the bundle (and so the signature check) uses.
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envelopeBytes));
  } catch (err) {
    throw bodyMismatch("the envelope bytes are not JSON", err);
  }
  const sigs = field(parsed, "signatures");
  const sig0 = Array.isArray(sigs) && sigs.length === 1 ? field(sigs[0], "sig") : undefined;
  const payload = field(parsed, "payload");
  if (
    field(parsed, "payloadType") !== env.payloadType ||
    typeof payload !== "string" || !Buffer.from(payload, "base64").equals(env.payload) ||
    typeof sig0 !== "string" || env.signatures.length !== 1 ||
    !Buffer.from(sig0, "base64").equals(env.signatures[0]?.sig ?? Buffer.alloc(0))
  ) {
    throw bodyMismatch("the envelope bytes are not the bundle's envelope");
  }
}

function verifySet(entry: TransparencyLogEntry, trust: TrustMaterial): void {
  const promise = entry.inclusionPromise;
  if (promise === undefined || entry.logId === undefined) {
    throw new DangerzoneError("TLOG_MISSING", "the intoto 0.0.1 entry has no inclusion promise (SET)");
  }
  const logId = entry.logId.keyId;
  const when = new Date(Number(entry.integratedTime) * 1000);
  const data = Buffer.from(
    coreJson.canonicalize({
      body: entry.canonicalizedBody.toString("base64"),
      integratedTime: Number(entry.integratedTime),
      logIndex: Number(entry.logIndex),
      logID: logId.toString("hex"),
    }),
    "utf8",
  );
  const ok = trust.tlogs.some((log) =>
    log.logID.equals(logId) && log.validFor.start <= when && when <= log.validFor.end &&
    coreCrypto.verify(data, log.publicKey, promise.signedEntryTimestamp)
  );
  if (!ok) {
    throw new DangerzoneError(
      "TLOG_SET_INVALID",
      "the intoto entry's signed entry timestamp does not verify with a trusted log key",
    );
  }
}

function checkHash(hash: unknown, bytes: Uint8Array, what: string): void {
  if (!isJsonObject(hash) || hash["algorithm"] !== "sha256" || typeof hash["value"] !== "string") {
    throw bodyMismatch(`the entry's ${what} hash is missing or not sha256`);
  }
  const actual = crypto.createHash("sha256").update(bytes).digest("hex");
  if (hash["value"].toLowerCase() !== actual) throw bodyMismatch(`the entry's ${what} hash does not match`);
}

function field(value: unknown, key: string): unknown {
  return isJsonObject(value) ? value[key] : undefined;
}

function bodyMismatch(what: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("TLOG_BODY_MISMATCH", `transparency-log entry does not match: ${what}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}
