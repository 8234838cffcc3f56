/**
 * Sigstore bundles (v0.1, v0.2, v0.3): the wire-format layer. Checks the JSON shape of an untrusted
 * bundle before anything reads its meaning, collecting the path of every invalid field into one
 * `BUNDLE_INVALID` error, then hands the checked object to `@sigstore/bundle`. The bundle is read as
 * the protobuf JSON mapping writes it (`_protobuf_json.ts`: proto or JSON field names, `null` for a
 * default, enums by name or number), strictly (duplicate keys are refused).
 *
 * Covered: message signatures and DSSE envelopes; public-key hints, certificates and certificate
 * chains; Rekor v1 and v2 entries with inclusion promises (SETs), inclusion proofs and checkpoints;
 * RFC 3161 timestamps.
 *
 * @module
 */
import { type Bundle, bundleFromJSON } from "@sigstore/bundle";
import { DangerzoneError } from "../../errors.ts";
import { jsonInputSize, parseStrictJsonInput } from "../../strict_json.ts";
import { formatProblems, isJsonObject, type JsonObject, ShapeChecker } from "./_json_shape.ts";
import { BUNDLE_MESSAGE, normalizeProtobufJson } from "./_protobuf_json.ts";

/** Largest bundle accepted, in bytes. */
export const MAX_BUNDLE_BYTES = 8 * 1024 * 1024;

/** The bundle media types this version understands, by bundle version. */
export const BUNDLE_MEDIA_TYPES = {
  "application/vnd.dev.sigstore.bundle+json;version=0.1": "0.1",
  "application/vnd.dev.sigstore.bundle+json;version=0.2": "0.2",
  "application/vnd.dev.sigstore.bundle+json;version=0.3": "0.3",
  "application/vnd.dev.sigstore.bundle.v0.3+json": "0.3",
} as const;

type BundleMediaType = keyof typeof BUNDLE_MEDIA_TYPES;
const MEDIA_TYPES = Object.keys(BUNDLE_MEDIA_TYPES) as BundleMediaType[];
const DIGEST_ALGORITHMS = ["SHA2_256", "SHA2_384", "SHA2_512"] as const;

/** A bundle whose shape was checked; the protobuf object `@sigstore/verify` consumes. */
export type { Bundle };

/**
 * Parses an untrusted bundle document (bytes or text) and checks its shape.
 *
 * @example
 * ```ts
 * import { parseBundle } from "./bundle.ts";
 * const bundle = parseBundle(await Deno.readFile("artifact.sigstore.json"));
 * ```
 */
export function parseBundle(untrustedJson: string | Uint8Array): Bundle {
  const size = jsonInputSize(untrustedJson);
  if (size > MAX_BUNDLE_BYTES) {
    throw new DangerzoneError("BUNDLE_INVALID", `Sigstore bundle is larger than ${MAX_BUNDLE_BYTES} bytes`, {
      hint: "this is not a Sigstore bundle",
    });
  }
  let untrusted: unknown;
  try {
    untrusted = parseStrictJsonInput(untrustedJson);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new DangerzoneError("BUNDLE_INVALID", `Sigstore bundle is not valid JSON (${why})`, {
      hint: "the bundle file is truncated or corrupt",
      cause: err,
    });
  }
  return bundleFromObject(untrusted);
}

/**
 * Checks the shape of an already-decoded untrusted bundle object (for example one converted from
 * cosign's legacy annotations) and returns it as a protobuf bundle.
 */
export function bundleFromObject(untrusted: unknown): Bundle {
  const check = new ShapeChecker();
  const normalized = normalizeProtobufJson(untrusted, BUNDLE_MESSAGE, check);
  checkBundle(check, normalized);
  if (check.problems.length > 0) {
    throw new DangerzoneError(
      "BUNDLE_INVALID",
      `Sigstore bundle has invalid fields: ${formatProblems(check.problems)}`,
      { hint: "the bundle is malformed or of an unsupported version" },
    );
  }
  try {
    return bundleFromJSON(withoutUnsignedProofs(normalized));
  } catch (err) {
    const fields = isValidationError(err) ? `: ${formatProblems(err.fields)}` : "";
    throw new DangerzoneError("BUNDLE_INVALID", `Sigstore bundle is invalid${fields}`, {
      hint: "the bundle is malformed or of an unsupported version",
      cause: err,
    });
  }
}

/**
 * v0.1 bundles (older cosign and sigstore clients) may carry an inclusion proof without a checkpoint.
 * Such a proof proves nothing (its root hash is not signed), and `@sigstore/verify` would crash on
 * it; v0.1 requires the inclusion promise (SET), which is verified instead. So it is dropped.
 */
function withoutUnsignedProofs(checked: unknown): unknown {
  if (!isJsonObject(checked)) return checked;
  const material = checked["verificationMaterial"];
  if (!isJsonObject(material) || !Array.isArray(material["tlogEntries"])) return checked;
  const entries: unknown[] = material["tlogEntries"];
  return {
    ...checked,
    verificationMaterial: {
      ...material,
      tlogEntries: entries.map((entry) => {
        if (!isJsonObject(entry)) return entry;
        const proof = entry["inclusionProof"];
        if (!isJsonObject(proof) || proof["checkpoint"] !== undefined) return entry;
        const { inclusionProof: _dropped, ...rest } = entry;
        return rest;
      }),
    },
  };
}

function isValidationError(err: unknown): err is { fields: string[] } {
  if (typeof err !== "object" || err === null || !("fields" in err)) return false;
  const fields: unknown = err.fields;
  return Array.isArray(fields) && fields.every((f) => typeof f === "string");
}

function checkBundle(check: ShapeChecker, untrusted: unknown): void {
  const top = check.object(untrusted, "", [
    "mediaType",
    "verificationMaterial",
    "messageSignature",
    "dsseEnvelope",
  ]);
  if (top === undefined) return;
  const mediaType = check.oneOf(top["mediaType"], "mediaType", MEDIA_TYPES);
  const version = mediaType === undefined ? undefined : BUNDLE_MEDIA_TYPES[mediaType];

  const hasMessage = top["messageSignature"] !== undefined;
  const hasDsse = top["dsseEnvelope"] !== undefined;
  if (hasMessage === hasDsse) check.fail("messageSignature|dsseEnvelope (exactly one is required)");
  if (hasMessage) checkMessageSignature(check, top["messageSignature"]);
  if (hasDsse) checkDsseEnvelope(check, top["dsseEnvelope"]);

  const material = check.object(top["verificationMaterial"], "verificationMaterial", [
    "publicKey",
    "x509CertificateChain",
    "certificate",
    "tlogEntries",
    "timestampVerificationData",
  ]);
  if (material === undefined) return;
  const keyKinds = ["publicKey", "x509CertificateChain", "certificate"].filter((k) =>
    material[k] !== undefined
  );
  if (keyKinds.length !== 1) {
    check.fail("verificationMaterial.publicKey|x509CertificateChain|certificate (exactly one is required)");
  }
  if (material["publicKey"] !== undefined) {
    const key = check.object(material["publicKey"], "verificationMaterial.publicKey", ["hint"]);
    if (key !== undefined && key["hint"] !== undefined) {
      check.string(key["hint"], "verificationMaterial.publicKey.hint", true);
    }
  }
  if (material["x509CertificateChain"] !== undefined) {
    const path = "verificationMaterial.x509CertificateChain";
    if (version === "0.3") check.fail(`${path} (v0.3 bundles carry a single certificate)`);
    const chain = check.object(material["x509CertificateChain"], path, ["certificates"]);
    const certs = chain === undefined
      ? []
      : check.array(chain["certificates"], `${path}.certificates`, 1) ?? [];
    certs.forEach((c, i) => checkRawBytes(check, c, `${path}.certificates[${i}]`));
  }
  if (material["certificate"] !== undefined) {
    checkRawBytes(check, material["certificate"], "verificationMaterial.certificate");
  }
  const entries = check.array(material["tlogEntries"], "verificationMaterial.tlogEntries") ?? [];
  entries.forEach((e, i) => checkTlogEntry(check, e, `verificationMaterial.tlogEntries[${i}]`, version));
  if (material["timestampVerificationData"] !== undefined) {
    const path = "verificationMaterial.timestampVerificationData";
    const data = check.object(material["timestampVerificationData"], path, ["rfc3161Timestamps"]);
    if (data !== undefined && data["rfc3161Timestamps"] !== undefined) {
      const stamps = check.array(data["rfc3161Timestamps"], `${path}.rfc3161Timestamps`) ?? [];
      stamps.forEach((s, i) => {
        const at = `${path}.rfc3161Timestamps[${i}]`;
        const stamp = check.object(s, at, ["signedTimestamp"]);
        if (stamp !== undefined) check.bytes(stamp["signedTimestamp"], `${at}.signedTimestamp`);
      });
    }
  }
}

function checkRawBytes(check: ShapeChecker, value: unknown, path: string): void {
  const cert = check.object(value, path, ["rawBytes"]);
  if (cert !== undefined) check.bytes(cert["rawBytes"], `${path}.rawBytes`);
}

function checkMessageSignature(check: ShapeChecker, value: unknown): void {
  const sig = check.object(value, "messageSignature", ["messageDigest", "signature"]);
  if (sig === undefined) return;
  const digest = check.object(sig["messageDigest"], "messageSignature.messageDigest", [
    "algorithm",
    "digest",
  ]);
  if (digest !== undefined) {
    check.oneOf(digest["algorithm"], "messageSignature.messageDigest.algorithm", DIGEST_ALGORITHMS);
    check.bytes(digest["digest"], "messageSignature.messageDigest.digest");
  }
  check.bytes(sig["signature"], "messageSignature.signature");
}

function checkDsseEnvelope(check: ShapeChecker, value: unknown): void {
  const env = check.object(value, "dsseEnvelope", ["payload", "payloadType", "signatures"]);
  if (env === undefined) return;
  check.bytes(env["payload"], "dsseEnvelope.payload");
  check.string(env["payloadType"], "dsseEnvelope.payloadType");
  const sigs = check.array(env["signatures"], "dsseEnvelope.signatures", 1) ?? [];
  if (sigs.length > 1) check.fail("dsseEnvelope.signatures (exactly one signature is supported)");
  sigs.forEach((s, i) => {
    const sig = check.object(s, `dsseEnvelope.signatures[${i}]`, ["sig", "keyid"]);
    if (sig === undefined) return;
    check.bytes(sig["sig"], `dsseEnvelope.signatures[${i}].sig`);
    if (sig["keyid"] !== undefined) check.string(sig["keyid"], `dsseEnvelope.signatures[${i}].keyid`, true);
  });
}

function checkTlogEntry(
  check: ShapeChecker,
  value: unknown,
  path: string,
  version: string | undefined,
): void {
  const entry = check.object(value, path, [
    "logIndex",
    "logId",
    "kindVersion",
    "integratedTime",
    "inclusionPromise",
    "inclusionProof",
    "canonicalizedBody",
  ]);
  if (entry === undefined) return;
  check.uint64(entry["logIndex"], `${path}.logIndex`);
  const logId = check.object(entry["logId"], `${path}.logId`, ["keyId"]);
  if (logId !== undefined) check.bytes(logId["keyId"], `${path}.logId.keyId`);
  const kv = check.object(entry["kindVersion"], `${path}.kindVersion`, ["kind", "version"]);
  if (kv !== undefined) {
    check.string(kv["kind"], `${path}.kindVersion.kind`);
    check.string(kv["version"], `${path}.kindVersion.version`);
  }
  if (entry["integratedTime"] !== undefined) check.uint64(entry["integratedTime"], `${path}.integratedTime`);
  check.bytes(entry["canonicalizedBody"], `${path}.canonicalizedBody`);
  let promise: JsonObject | undefined;
  if (entry["inclusionPromise"] !== undefined) {
    promise = check.object(entry["inclusionPromise"], `${path}.inclusionPromise`, ["signedEntryTimestamp"]);
    if (promise !== undefined) {
      check.bytes(promise["signedEntryTimestamp"], `${path}.inclusionPromise.signedEntryTimestamp`);
    }
    if (entry["integratedTime"] === undefined) {
      check.fail(`${path}.integratedTime (required with an inclusion promise)`);
    }
  }
  let checkpoint: unknown;
  if (entry["inclusionProof"] !== undefined) {
    const at = `${path}.inclusionProof`;
    const proof = check.object(entry["inclusionProof"], at, [
      "logIndex",
      "rootHash",
      "treeSize",
      "hashes",
      "checkpoint",
    ]);
    if (proof !== undefined) {
      check.uint64(proof["logIndex"], `${at}.logIndex`);
      check.bytes(proof["rootHash"], `${at}.rootHash`);
      check.uint64(proof["treeSize"], `${at}.treeSize`);
      const hashes = proof["hashes"] === undefined ? [] : check.array(proof["hashes"], `${at}.hashes`) ?? [];
      hashes.forEach((h, i) => check.bytes(h, `${at}.hashes[${i}]`));
      checkpoint = proof["checkpoint"];
      if (checkpoint !== undefined) {
        const cp = check.object(checkpoint, `${at}.checkpoint`, ["envelope"]);
        if (cp !== undefined) check.string(cp["envelope"], `${at}.checkpoint.envelope`);
      } else if (version !== "0.1") {
        check.fail(`${at}.checkpoint (an inclusion proof needs its signed checkpoint)`);
      }
    }
  }
  if (version === "0.1" && entry["inclusionPromise"] === undefined) {
    check.fail(`${path}.inclusionPromise (required in v0.1 bundles)`);
  }
  if ((version === "0.2" || version === "0.3") && entry["inclusionProof"] === undefined) {
    check.fail(`${path}.inclusionProof (required from v0.2 on)`);
  }
}
