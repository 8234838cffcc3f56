/**
 * Sigstore trusted roots (`trusted_root.json`): parse, validate and turn into offline trust material.
 *
 * The trusted root is input too (DESIGN rule 9): before use, its media type, every log key
 * (decodable, of the declared type), every validity range and every certificate chain (each
 * certificate parses and is signed by the next one) are checked. Anything unknown or malformed is
 * refused with `TRUST_ROOT_INVALID`, listing every invalid path. The document is read as the protobuf
 * JSON mapping writes it (`_protobuf_json.ts`: proto or JSON field names, `null` for a default, enums
 * by name or number), strictly (duplicate keys are refused).
 *
 * @module
 */
import "./node_crypto_patch.ts";
import crypto from "node:crypto";
import { Buffer } from "node:buffer";
import { X509Certificate } from "@sigstore/core";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { type KeyFinderFunc, toTrustMaterial, type TrustMaterial } from "@sigstore/verify";
import { DangerzoneError } from "../../errors.ts";
import { toHex } from "../../oci/digest.ts";
import { jsonInputSize, parseStrictJsonInput } from "../../strict_json.ts";
import { formatProblems, isJsonObject, ShapeChecker } from "../formats/_json_shape.ts";
import { normalizeProtobufJson, TRUSTED_ROOT_MESSAGE } from "../formats/_protobuf_json.ts";
import { PRODUCTION_TRUSTED_ROOT_JSON } from "./_production_trusted_root.ts";

/** Largest trusted_root.json accepted. */
export const MAX_TRUSTED_ROOT_BYTES = 1024 * 1024;

/** The trusted-root media types this version understands. */
export const TRUSTED_ROOT_MEDIA_TYPES = [
  "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  "application/vnd.dev.sigstore.trustedroot.v0.2+json",
] as const;

/** The protobuf `keyDetails` values of log keys this version understands. */
export type KeyDetails =
  | "PKIX_ECDSA_P256_SHA_256"
  | "PKIX_ECDSA_P384_SHA_384"
  | "PKIX_ECDSA_P521_SHA_512"
  | "PKIX_ED25519"
  | "PKCS1_RSA_PKCS1V5"
  | "PKIX_RSA_PKCS1V5"
  | "PKIX_RSA_PKCS1V15_2048_SHA256"
  | "PKIX_RSA_PKCS1V15_3072_SHA256"
  | "PKIX_RSA_PKCS1V15_4096_SHA256";

const KEY_DETAILS: readonly KeyDetails[] = [
  "PKIX_ECDSA_P256_SHA_256",
  "PKIX_ECDSA_P384_SHA_384",
  "PKIX_ECDSA_P521_SHA_512",
  "PKIX_ED25519",
  "PKCS1_RSA_PKCS1V5",
  "PKIX_RSA_PKCS1V5",
  "PKIX_RSA_PKCS1V15_2048_SHA256",
  "PKIX_RSA_PKCS1V15_3072_SHA256",
  "PKIX_RSA_PKCS1V15_4096_SHA256",
];

const HASH_ALGORITHMS = ["SHA2_256", "SHA2_384", "SHA2_512"] as const;

/** One transparency-log (Rekor) or certificate-transparency log key of a trusted root. */
export interface TransparencyLogKey {
  /** The log's base URL, for display. */
  readonly baseUrl: string;
  /** The log ID the trusted root declares (`logId.keyId`), raw bytes. */
  readonly logId: Uint8Array;
  /** The declared log ID as lowercase hex. */
  readonly logIdHex: string;
  /** The key as DER (SubjectPublicKeyInfo, or PKCS#1 for `PKCS1_RSA_PKCS1V5`). */
  readonly publicKeyDer: Uint8Array;
  /** The key ready for `node:crypto`. */
  readonly publicKey: crypto.KeyObject;
  /** The protobuf `keyDetails` value. */
  readonly keyDetails: KeyDetails;
  /** Start of the key's validity. */
  readonly validFrom: Date;
  /** End of the key's validity, if the root sets one. */
  readonly validUntil: Date | undefined;
}

const VALIDATED: unique symbol = Symbol("validated trusted root");

/** A trusted root that passed {@linkcode parseTrustedRoot}'s validation; only this module creates one. */
export interface SigstoreTrustedRoot {
  /** Where it came from, for display: `production` or the caller's name (a file path). */
  readonly source: string;
  /** The media type. */
  readonly mediaType: string;
  /** The transparency-log (Rekor v1 and v2) keys. */
  readonly rekorLogs: readonly TransparencyLogKey[];
  /** The certificate-transparency log keys. */
  readonly ctLogs: readonly TransparencyLogKey[];
  /**
   * @ignore The parsed protobuf form, as `@sigstore/verify` wants it (the library's type, not part of
   * this API: use {@linkcode trustMaterialFor}).
   */
  readonly protobuf: TrustedRoot;
  /**
   * True for a root built by {@linkcode withRekorKeys}: its transparency logs are user-pinned keys
   * without a known log name, so a checkpoint is accepted under any signer name (the key decides).
   */
  readonly pinnedLogKeys: boolean;
  /** @ignore The brand only {@linkcode parseTrustedRoot} sets. */
  readonly [VALIDATED]: true;
}

/**
 * Parses and validates an untrusted trusted_root.json.
 *
 * @example
 * ```ts
 * import { parseTrustedRoot } from "./trusted_root.ts";
 * const root = parseTrustedRoot(await Deno.readFile("trusted_root.json"), { source: "trusted_root.json" });
 * ```
 */
export function parseTrustedRoot(
  untrustedJson: string | Uint8Array,
  options: { source?: string } = {},
): SigstoreTrustedRoot {
  const source = options.source ?? "trusted root";
  const size = jsonInputSize(untrustedJson);
  if (size > MAX_TRUSTED_ROOT_BYTES) {
    throw invalid(source, `larger than ${MAX_TRUSTED_ROOT_BYTES} bytes`);
  }
  let untrusted: unknown;
  try {
    untrusted = parseStrictJsonInput(untrustedJson);
  } catch (err) {
    throw invalid(source, `not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const check = new ShapeChecker();
  const top = check.object(normalizeProtobufJson(untrusted, TRUSTED_ROOT_MESSAGE, check), "", [
    "mediaType",
    "tlogs",
    "certificateAuthorities",
    "ctlogs",
    "timestampAuthorities",
  ]);
  if (top === undefined) throw invalid(source, "not a JSON object");
  const mediaType = check.oneOf(top["mediaType"], "mediaType", TRUSTED_ROOT_MEDIA_TYPES);
  const rekorLogs = checkLogs(check, top["tlogs"], "tlogs", 1);
  const ctLogs = checkLogs(check, top["ctlogs"] ?? [], "ctlogs", 0);
  checkAuthorities(check, top["certificateAuthorities"] ?? [], "certificateAuthorities");
  checkAuthorities(check, top["timestampAuthorities"] ?? [], "timestampAuthorities");
  if (check.problems.length > 0 || mediaType === undefined) {
    throw invalid(source, `invalid fields: ${formatProblems(check.problems)}`);
  }
  let protobuf: TrustedRoot;
  try {
    protobuf = TrustedRoot.fromJSON(top);
    // Build once now so a root the library cannot use fails here, not during verification.
    toTrustMaterial(protobuf);
  } catch (err) {
    throw invalid(source, "cannot be turned into trust material", err);
  }
  return { source, mediaType, rekorLogs, ctLogs, protobuf, pinnedLogKeys: false, [VALIDATED]: true };
}

/** One user-pinned transparency-log key for {@linkcode withRekorKeys}. */
export interface PinnedLogKey {
  /** The key's SubjectPublicKeyInfo DER; the log ID is its sha256. */
  readonly spki: Uint8Array;
  /** The key type. */
  readonly keyDetails: "PKIX_ECDSA_P256_SHA_256" | "PKIX_ECDSA_P384_SHA_384" | "PKIX_ED25519";
}

/**
 * A trusted root whose transparency logs are exactly `keys` (log ID = sha256 of the SPKI DER, valid
 * from the epoch with no end), with the certificate authorities, CT logs and timestamp authorities of
 * `base`: the Rekor key override (`--rekor-key`, `SIGSTORE_REKOR_PUBLIC_KEY`) applied to bundles. The
 * result is validated like any root.
 */
export function withRekorKeys(
  base: SigstoreTrustedRoot,
  keys: readonly PinnedLogKey[],
  options: { source: string },
): SigstoreTrustedRoot {
  const baseJson: unknown = TrustedRoot.toJSON(base.protobuf);
  if (!isJsonObject(baseJson)) throw invalid(base.source, "cannot be written as JSON");
  const document = {
    ...baseJson,
    tlogs: keys.map((k) => ({
      baseUrl: options.source,
      hashAlgorithm: "SHA2_256",
      publicKey: {
        rawBytes: Buffer.from(k.spki).toString("base64"),
        keyDetails: k.keyDetails,
        validFor: { start: "1970-01-01T00:00:00Z" },
      },
      logId: { keyId: crypto.createHash("sha256").update(k.spki).digest("base64") },
    })),
  };
  const root = parseTrustedRoot(JSON.stringify(document), { source: options.source });
  return { ...root, pinnedLogKeys: true };
}

let production: SigstoreTrustedRoot | undefined;

/** The production Sigstore trusted root the project ships (validated once, then cached). */
export function productionTrustedRoot(): SigstoreTrustedRoot {
  production ??= parseTrustedRoot(PRODUCTION_TRUSTED_ROOT_JSON, { source: "production" });
  return production;
}

/**
 * Builds `@sigstore/verify` trust material from a validated root, offline. `publicKey` answers the
 * key lookups of key-signed bundles; without it, key-signed bundles are refused.
 *
 * `@sigstore/verify` accepts a checkpoint signature only when its signer name is part of the log's
 * `baseUrl`. A root of pinned keys ({@linkcode withRekorKeys}) knows no log names, so its logs are
 * given the bundle's `checkpointSigners` as names: the signature under the pinned key decides.
 */
export function trustMaterialFor(
  root: SigstoreTrustedRoot,
  publicKey?: KeyFinderFunc,
  options: { checkpointSigners?: readonly string[] } = {},
): TrustMaterial {
  let material: TrustMaterial;
  try {
    material = toTrustMaterial(root.protobuf, publicKey);
  } catch (err) {
    throw invalid(root.source, "cannot be turned into trust material", err);
  }
  if (!root.pinnedLogKeys) return material;
  const names = (options.checkpointSigners ?? []).join("\n");
  return { ...material, tlogs: material.tlogs.map((t) => ({ ...t, baseURL: names })) };
}

function invalid(source: string, what: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("TRUST_ROOT_INVALID", `Sigstore trusted root (${source}) is invalid: ${what}`, {
    hint: "use the trusted_root.json published by the Sigstore instance (or omit --trusted-root)",
    ...(cause === undefined ? {} : { cause }),
  });
}

function checkLogs(
  check: ShapeChecker,
  value: unknown,
  path: string,
  min: number,
): TransparencyLogKey[] {
  const items = check.array(value, path, min) ?? [];
  const out: TransparencyLogKey[] = [];
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const log = check.object(item, at, [
      "baseUrl",
      "hashAlgorithm",
      "publicKey",
      "logId",
      "checkpointKeyId",
      "operator",
    ]);
    if (log === undefined) return;
    const baseUrl = check.string(log["baseUrl"], `${at}.baseUrl`);
    check.oneOf(log["hashAlgorithm"], `${at}.hashAlgorithm`, HASH_ALGORITHMS);
    if (log["operator"] !== undefined) check.string(log["operator"], `${at}.operator`, true);
    const logId = checkKeyId(check, log["logId"], `${at}.logId`);
    if (log["checkpointKeyId"] !== undefined) {
      checkKeyId(check, log["checkpointKeyId"], `${at}.checkpointKeyId`);
    }
    const key = check.object(log["publicKey"], `${at}.publicKey`, ["rawBytes", "keyDetails", "validFor"]);
    if (key === undefined) return;
    const der = check.bytes(key["rawBytes"], `${at}.publicKey.rawBytes`);
    const details = check.oneOf(key["keyDetails"], `${at}.publicKey.keyDetails`, KEY_DETAILS);
    const range = checkValidFor(check, key["validFor"], `${at}.publicKey.validFor`, true);
    if (der === undefined || details === undefined) return;
    const publicKey = decodeKey(der, details);
    if (publicKey === undefined) {
      check.fail(`${at}.publicKey.rawBytes (not a ${details} key)`);
      return;
    }
    if (logId === undefined || baseUrl === undefined || range === undefined) return;
    const logIdHex = toHex(logId);
    if (seen.has(logIdHex)) check.fail(`${at}.logId (duplicate)`);
    seen.add(logIdHex);
    out.push({
      baseUrl,
      logId,
      logIdHex,
      publicKeyDer: der,
      publicKey,
      keyDetails: details,
      validFrom: range.start,
      validUntil: range.end,
    });
  });
  return out;
}

function checkKeyId(check: ShapeChecker, value: unknown, path: string): Uint8Array | undefined {
  const id = check.object(value, path, ["keyId"]);
  return id === undefined ? undefined : check.bytes(id["keyId"], `${path}.keyId`);
}

function checkValidFor(
  check: ShapeChecker,
  value: unknown,
  path: string,
  required: boolean,
): { start: Date; end: Date | undefined } | undefined {
  if (value === undefined && !required) return undefined;
  const range = check.object(value, path, ["start", "end"]);
  if (range === undefined) return undefined;
  const start = check.time(range["start"], `${path}.start`);
  const end = range["end"] === undefined ? undefined : check.time(range["end"], `${path}.end`);
  if (start === undefined) return undefined;
  if (end !== undefined && end.getTime() < start.getTime()) {
    check.fail(`${path} (end before start)`);
    return undefined;
  }
  return { start, end };
}

/** The key type (and curve) each `keyDetails` value requires. */
function expectedKeyType(details: KeyDetails): { type: string; curve?: string } {
  switch (details) {
    case "PKIX_ECDSA_P256_SHA_256":
      return { type: "ec", curve: "prime256v1" };
    case "PKIX_ECDSA_P384_SHA_384":
      return { type: "ec", curve: "secp384r1" };
    case "PKIX_ECDSA_P521_SHA_512":
      return { type: "ec", curve: "secp521r1" };
    case "PKIX_ED25519":
      return { type: "ed25519" };
    default:
      return { type: "rsa" };
  }
}

function decodeKey(der: Uint8Array, details: KeyDetails): crypto.KeyObject | undefined {
  try {
    const key = crypto.createPublicKey({
      key: Buffer.from(der),
      format: "der",
      type: details === "PKCS1_RSA_PKCS1V5" ? "pkcs1" : "spki",
    });
    const want = expectedKeyType(details);
    if (key.asymmetricKeyType !== want.type) return undefined;
    if (want.curve !== undefined && key.asymmetricKeyDetails?.namedCurve !== want.curve) return undefined;
    return key;
  } catch {
    return undefined;
  }
}

function checkAuthorities(check: ShapeChecker, value: unknown, path: string): void {
  const items = check.array(value, path) ?? [];
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const ca = check.object(item, at, ["subject", "uri", "certChain", "validFor", "operator"]);
    if (ca === undefined) return;
    if (ca["subject"] !== undefined) {
      const subject = check.object(ca["subject"], `${at}.subject`, ["organization", "commonName"]);
      if (subject !== undefined) {
        if (subject["organization"] !== undefined) {
          check.string(subject["organization"], `${at}.subject.organization`, true);
        }
        if (subject["commonName"] !== undefined) {
          check.string(subject["commonName"], `${at}.subject.commonName`, true);
        }
      }
    }
    if (ca["uri"] !== undefined) check.string(ca["uri"], `${at}.uri`, true);
    if (ca["operator"] !== undefined) check.string(ca["operator"], `${at}.operator`, true);
    checkValidFor(check, ca["validFor"], `${at}.validFor`, true);
    const chain = check.object(ca["certChain"], `${at}.certChain`, ["certificates"]);
    if (chain === undefined) return;
    const certs = check.array(chain["certificates"], `${at}.certChain.certificates`, 1) ?? [];
    const parsed: (X509Certificate | undefined)[] = certs.map((c, j) =>
      parseCertificate(check, c, `${at}.certChain.certificates[${j}]`)
    );
    for (let j = 0; j + 1 < parsed.length; j++) {
      const child = parsed[j];
      const parent = parsed[j + 1];
      if (child === undefined || parent === undefined) continue;
      if (!signedBy(child, parent)) {
        check.fail(`${at}.certChain.certificates[${j}] (not signed by the next certificate)`);
      }
    }
    const last = parsed[parsed.length - 1];
    if (last !== undefined && last.subject.equals(last.issuer) && !signedBy(last, last)) {
      check.fail(`${at}.certChain.certificates[${parsed.length - 1}] (self-issued but bad self-signature)`);
    }
  });
}

function parseCertificate(check: ShapeChecker, value: unknown, path: string): X509Certificate | undefined {
  const cert = check.object(value, path, ["rawBytes"]);
  if (cert === undefined) return undefined;
  const der = check.bytes(cert["rawBytes"], `${path}.rawBytes`);
  if (der === undefined) return undefined;
  try {
    const parsed = X509Certificate.parse(Buffer.from(der));
    // Touch the fields verification relies on so a truncated certificate fails here.
    void parsed.publicKey;
    void parsed.notBefore;
    void parsed.notAfter;
    return parsed;
  } catch {
    return check.fail(`${path}.rawBytes (not an X.509 certificate)`);
  }
}

function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.verify(parent);
  } catch {
    return false;
  }
}

/** The Rekor log keys of a root as JSON-friendly values (for display and `--json`). */
export function describeLogKeys(keys: readonly TransparencyLogKey[]): {
  baseUrl: string;
  logId: string;
  keyDetails: string;
  validFrom: string;
  validUntil: string | null;
}[] {
  return keys.map((k) => ({
    baseUrl: k.baseUrl,
    logId: k.logIdHex,
    keyDetails: k.keyDetails,
    validFrom: k.validFrom.toISOString(),
    validUntil: k.validUntil?.toISOString() ?? null,
  }));
}
