/**
 * Binds a Rekor log entry to the signature it is offered for (DESIGN rule 4; the lesson of
 * CVE-2022-23649 and GHSA-whqx-f9j3-ch6m): the body is `hashedrekord` 0.0.1, its signature equals
 * ours byte for byte, its public key is the trusted key (compared as parsed SPKI DER, not PEM text),
 * and its hash is the sha256 of the payload. Without this, a valid SET only proves that *some* entry
 * was logged.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { bytesEqual } from "./_asn1.ts";
import { decodeBase64Strict } from "../formats/_base64.ts";
import { parseStrictJsonBytes, ShapeReader, StrictJsonError } from "../../strict_json.ts";
import { type PublicKey, sameKey, spkiFromPem } from "./keys.ts";

/** What the log entry must say. */
export interface TlogBodyExpectations {
  /** Our signature's exact bytes (decoded Base64Signature). */
  signature: Uint8Array;
  /** The trusted publisher key. */
  publicKey: PublicKey;
  /** sha256 hex (lowercase) of the exact payload bytes. */
  payloadSha256: string;
}

/** Largest log entry body accepted (a hashedrekord body is about 1 KiB). */
export const MAX_TLOG_BODY_BYTES = 64 * 1024;

const RULE = "rule 4 (log entry binding)";

/**
 * Checks that the base64 log entry body describes exactly this signature; throws
 * `TLOG_BODY_MISMATCH` otherwise.
 *
 * @example
 * ```ts ignore
 * verifyTlogBody(setVerified.body, { signature, publicKey, payloadSha256 });
 * ```
 */
export function verifyTlogBody(untrustedBodyBase64: string, expected: TlogBodyExpectations): void {
  const shape: ShapeReader = new ShapeReader("TLOG_BODY_MISMATCH", `${RULE}: the log entry`);
  if (untrustedBodyBase64.length > Math.ceil(MAX_TLOG_BODY_BYTES / 3) * 4) {
    shape.fail(`body is larger than ${MAX_TLOG_BODY_BYTES} bytes`);
  }
  const bodyBytes = decodeBase64Strict(untrustedBodyBase64);
  if (bodyBytes === null) shape.fail("body is not valid base64");
  let untrusted: unknown;
  try {
    untrusted = parseStrictJsonBytes(bodyBytes);
  } catch (err) {
    if (err instanceof StrictJsonError) shape.fail(`body is not strict JSON (${err.message})`, err);
    throw err;
  }
  const top = shape.object(untrusted, "body", ["apiVersion", "kind", "spec"]);
  const kind = shape.string(top["kind"], "kind");
  const apiVersion = shape.string(top["apiVersion"], "apiVersion");
  if (kind !== "hashedrekord" || apiVersion !== "0.0.1") {
    shape.fail(`is ${kind.slice(0, 30)} ${apiVersion.slice(0, 30)}, not hashedrekord 0.0.1`);
  }
  const spec = shape.object(top["spec"], "spec", ["data", "signature"]);
  const data = shape.object(spec["data"], "spec.data", ["hash"]);
  const hash = shape.object(data["hash"], "spec.data.hash", ["algorithm", "value"]);
  const sig = shape.object(spec["signature"], "spec.signature", ["content", "publicKey"]);
  const pub = shape.object(sig["publicKey"], "spec.signature.publicKey", ["content"]);

  const algorithm = shape.string(hash["algorithm"], "spec.data.hash.algorithm");
  if (algorithm !== "sha256") shape.fail(`hash algorithm is "${algorithm.slice(0, 20)}", not sha256`);
  const value = shape.string(hash["value"], "spec.data.hash.value");
  if (value !== expected.payloadSha256) {
    shape.fail("hash is not the sha256 of this signature's payload (the entry is for another payload)");
  }

  const sigContent = decodeBase64Strict(shape.string(sig["content"], "spec.signature.content"));
  if (sigContent === null) shape.fail("signature content is not valid base64");
  if (!bytesEqual(sigContent, expected.signature)) {
    shape.fail("signature is not this signature (the entry is for another signature)");
  }

  const pem = decodeBase64Strict(shape.string(pub["content"], "spec.signature.publicKey.content"));
  if (pem === null) shape.fail("public key content is not valid base64");
  let spki: Uint8Array;
  try {
    spki = spkiFromPem(pem);
  } catch (err) {
    if (err instanceof DangerzoneError) {
      shape.fail(`public key is not a PEM public key (${err.message})`, err);
    }
    throw err;
  }
  if (!sameKey(expected.publicKey, spki)) {
    shape.fail("public key is not the trusted key (the entry was logged by another key)");
  }
}
