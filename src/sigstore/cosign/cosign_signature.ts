/**
 * The `cosign download signature` form: the signature store's JSON list of
 * `{Base64Signature, Payload, Cert, Chain, Bundle: {SignedEntryTimestamp, Payload: {body,
 * integratedTime, logIndex, logID}}, RFC3161Timestamp}`. Parsing keeps each entry's exact text so the
 * store can write back what it received; {@linkcode decodeCosignSignature} asserts one entry's shape
 * and decodes it. Everything here is untrusted: verification is `verifier.ts`'s job.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { decodeBase64Strict, encodeBase64 } from "../formats/_base64.ts";
import { parseStrictJson, parseStrictJsonArray, ShapeReader, StrictJsonError } from "../../strict_json.ts";
import { decodeUtf8 } from "../../strict_json.ts";
import type { UntrustedTlogEntry } from "../crypto/set.ts";

/** At most this many signatures are considered for one image (DESIGN rule 7). */
export const MAX_SIGNATURES = 1000;
/** Largest simple-signing payload accepted, in bytes. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Largest signature list file accepted, in bytes. */
export const MAX_SIGNATURE_LIST_BYTES = 32 * 1024 * 1024;
/** Largest encoded signature or SET accepted, in characters (a DER P-384 signature is 140). */
const MAX_SIGNATURE_CHARS = 1024;

/** One entry of a signature list, as received. */
export interface UntrustedSignatureEntry {
  /** Position in the list, from 0. */
  readonly index: number;
  /** The entry's exact JSON text. */
  readonly raw: string;
  /** The strictly parsed value; its shape is not checked yet. */
  readonly untrustedValue: unknown;
}

/** One entry with its shape checked and its base64 fields decoded. Still untrusted. */
export interface DecodedCosignSignature {
  /** The decoded `Base64Signature` (DER for ECDSA). */
  readonly untrustedSignature: Uint8Array;
  /** The decoded `Payload`: the exact bytes the signature covers. */
  readonly untrustedPayload: Uint8Array;
  /** The Rekor bundle, or null when the entry has none. */
  readonly untrustedTlogEntry: UntrustedTlogEntry | null;
}

/**
 * Parses a signature list file strictly: a JSON array of at most {@linkcode MAX_SIGNATURES}
 * entries, no duplicate keys, no trailing data. An empty list is returned as empty (the policy
 * refuses it).
 *
 * @example
 * ```ts
 * import { parseSignatureList } from "./cosign_signature.ts";
 * const entries = parseSignatureList(new TextEncoder().encode("[]"));
 * ```
 */
export function parseSignatureList(untrustedBytes: Uint8Array): UntrustedSignatureEntry[] {
  if (untrustedBytes.length > MAX_SIGNATURE_LIST_BYTES) {
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      `rule 7 (bounded input): the signature list is larger than ${MAX_SIGNATURE_LIST_BYTES} bytes`,
    );
  }
  try {
    const elements = parseStrictJsonArray(decodeUtf8(untrustedBytes), MAX_SIGNATURES);
    return elements.map((e, index) => ({ index, raw: e.raw, untrustedValue: e.value }));
  } catch (err) {
    if (!(err instanceof StrictJsonError)) throw err;
    if (err.message.startsWith("more than")) {
      throw new DangerzoneError(
        "SIGNATURE_INVALID",
        `rule 7 (bounded input): the signature list holds more than ${MAX_SIGNATURES} signatures`,
        { cause: err },
      );
    }
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      `rule 8 (format): the signature list is not a strict JSON list (${err.message})`,
      { cause: err, hint: "expected the JSON list `cosign download signature` entries form" },
    );
  }
}

/** Asserts the shape of one entry and decodes its base64 fields (DESIGN rules 7 and 8). */
export function decodeCosignSignature(entry: UntrustedSignatureEntry): DecodedCosignSignature {
  const format: ShapeReader = new ShapeReader("SIGNATURE_INVALID", "rule 8 (format): the signature entry");
  const top = format.object(entry.untrustedValue, "entry", ["Base64Signature", "Payload"], [
    "Cert",
    "Chain",
    "Bundle",
    "RFC3161Timestamp",
  ]);
  for (const key of ["Cert", "Chain"]) {
    const v = top[key];
    if (v !== undefined && v !== null && typeof v !== "string") {
      format.fail(`${key} is neither null nor a string`);
    }
  }
  const rfc3161 = top["RFC3161Timestamp"];
  if (rfc3161 !== undefined && rfc3161 !== null) {
    format.object(rfc3161, "RFC3161Timestamp", [], ["SignedRFC3161Timestamp"]);
  }

  const sigText = format.string(top["Base64Signature"], "Base64Signature");
  const signature = sigText.length > MAX_SIGNATURE_CHARS ? null : decodeBase64Strict(sigText);
  if (signature === null || signature.length === 0) {
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      "rule 2 (signature): Base64Signature is not valid base64 of a signature",
    );
  }

  const payloadFormat = new ShapeReader("PAYLOAD_INVALID", "rule 2 (payload)");
  const payloadText = payloadFormat.string(top["Payload"], "Payload");
  if (payloadText.length > Math.ceil(MAX_PAYLOAD_BYTES / 3) * 4) {
    throw new DangerzoneError(
      "PAYLOAD_INVALID",
      `rule 7 (bounded input): the payload is larger than ${MAX_PAYLOAD_BYTES} bytes`,
    );
  }
  const payload = decodeBase64Strict(payloadText);
  if (payload === null) {
    throw new DangerzoneError("PAYLOAD_INVALID", "rule 2 (payload): Payload is not valid base64");
  }
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new DangerzoneError(
      "PAYLOAD_INVALID",
      `rule 7 (bounded input): the payload is larger than ${MAX_PAYLOAD_BYTES} bytes`,
    );
  }

  const bundle = top["Bundle"];
  if (bundle === undefined || bundle === null) {
    return { untrustedSignature: signature, untrustedPayload: payload, untrustedTlogEntry: null };
  }
  return {
    untrustedSignature: signature,
    untrustedPayload: payload,
    untrustedTlogEntry: decodeBundle(bundle),
  };
}

function decodeBundle(untrusted: unknown): UntrustedTlogEntry {
  const shape: ShapeReader = new ShapeReader("TLOG_SET_INVALID", "rule 3 (Rekor SET): the Rekor bundle");
  const bundle = shape.object(untrusted, "Bundle", ["SignedEntryTimestamp", "Payload"]);
  const payload = shape.object(bundle["Payload"], "Bundle.Payload", [
    "body",
    "integratedTime",
    "logIndex",
    "logID",
  ]);
  const setText = shape.string(bundle["SignedEntryTimestamp"], "SignedEntryTimestamp");
  const set = setText.length > MAX_SIGNATURE_CHARS ? null : decodeBase64Strict(setText);
  if (set === null || set.length === 0) shape.fail("SignedEntryTimestamp is not valid base64 of a signature");
  const body = payload["body"];
  if (typeof body !== "string") {
    throw new DangerzoneError(
      "TLOG_BODY_MISMATCH",
      "rule 4 (log entry binding): the log entry body is not a string",
    );
  }
  const logId = shape.string(payload["logID"], "logID");
  if (!/^[0-9a-f]{64}$/.test(logId)) shape.fail("logID is not 64 lowercase hex digits");
  return {
    untrustedBody: body,
    untrustedIntegratedTime: shape.integer(payload["integratedTime"], "integratedTime"),
    untrustedLogIndex: shape.integer(payload["logIndex"], "logIndex"),
    untrustedLogId: logId,
    untrustedSignedEntryTimestamp: set,
  };
}

/** The annotations of one simple-signing layer of a `.sig` manifest, and its payload blob. */
export interface SignatureLayer {
  /** `dev.cosignproject.cosign/signature`. */
  untrustedSignatureAnnotation: string;
  /** `dev.sigstore.cosign/bundle` (JSON text), if present. */
  untrustedBundleAnnotation?: string | undefined;
  /** `dev.sigstore.cosign/certificate`, if present. */
  untrustedCertificateAnnotation?: string | undefined;
  /** `dev.sigstore.cosign/chain`, if present. */
  untrustedChainAnnotation?: string | undefined;
  /** The layer blob (already checked against its descriptor's digest and size). */
  untrustedPayload: Uint8Array;
}

/**
 * Builds the `cosign download signature` entry for one signature layer, as `cosign download
 * signature` prints it (the bundle annotation's JSON text is kept verbatim). `index` is its position.
 */
export function signatureEntryFromLayer(layer: SignatureLayer, index: number): UntrustedSignatureEntry {
  const fields = (bundleText: string): string =>
    `{"Base64Signature": ${JSON.stringify(layer.untrustedSignatureAnnotation)}, ` +
    `"Payload": ${JSON.stringify(encodeBase64(layer.untrustedPayload))}, ` +
    `"Cert": ${JSON.stringify(layer.untrustedCertificateAnnotation ?? null)}, ` +
    `"Chain": ${JSON.stringify(layer.untrustedChainAnnotation ?? null)}, ` +
    `"Bundle": ${bundleText}, "RFC3161Timestamp": null}`;
  // Kept as a string when it is not strict JSON (or too deep once inside the entry), so verification
  // reports this one signature's malformed bundle; it never aborts the others (each is judged alone).
  const asString = fields(JSON.stringify(layer.untrustedBundleAnnotation ?? null));
  if (layer.untrustedBundleAnnotation === undefined) {
    return { index, raw: asString, untrustedValue: parseStrictJson(asString) };
  }
  const verbatim = fields(layer.untrustedBundleAnnotation.trim());
  try {
    return { index, raw: verbatim, untrustedValue: parseStrictJson(verbatim) };
  } catch (err) {
    if (!(err instanceof StrictJsonError)) throw err;
    return { index, raw: asString, untrustedValue: parseStrictJson(asString) };
  }
}

/** Serialises entries as a JSON list from their exact texts (the signature store's file format). */
export function serializeSignatureList(entries: readonly { readonly raw: string }[]): Uint8Array {
  return new TextEncoder().encode(`[${entries.map((e) => e.raw).join(", ")}]`);
}
