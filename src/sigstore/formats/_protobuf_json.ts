/**
 * Private: the protobuf JSON mapping (https://protobuf.dev/programming-guides/json/) for the Sigstore
 * documents we read (trusted roots and bundles), as one normalising pass that runs before the shape
 * checks. It turns any document a conforming protobuf JSON writer may produce into the one canonical
 * form the checks and `@sigstore/*` (which only read lowerCamelCase names and drop nulls) understand:
 *
 * - a field may be named by its JSON name (lowerCamelCase) or by its original proto field name
 *   (snake_case); naming the same field twice is refused (a parser would keep either value);
 * - `null` for a known field means the field's default, so the field is dropped;
 * - an enum may be given by name or by number; a known number becomes its name.
 *
 * Everything else is left as it is, so the strict shape checks still see it: unknown fields, wrong
 * types, a `null` inside a list, unknown enum numbers. The schemas below list only field names and
 * which fields are messages or enums; types, sizes and required fields stay with the checkers.
 *
 * @module
 */
import { isJsonObject, type ShapeChecker } from "./_json_shape.ts";

/** The type of one field, as far as the JSON mapping cares (repeated fields: the element type). */
export type ProtobufField =
  | { readonly kind: "scalar"; readonly protoName?: string }
  | { readonly kind: "enum"; readonly values: Readonly<Record<number, string>> }
  | { readonly kind: "message"; readonly fields: ProtobufMessage };

/** The fields of a message, by JSON name. */
export type ProtobufMessage = { readonly [jsonName: string]: ProtobufField };

/**
 * Normalises an untrusted protobuf-JSON value of message type `message` (see the module doc).
 * Problems the mapping itself defines (a field given twice) are recorded in `check`.
 */
export function normalizeProtobufJson(
  untrusted: unknown,
  message: ProtobufMessage,
  check: ShapeChecker,
  path = "",
): unknown {
  if (!isJsonObject(untrusted)) return untrusted;
  const byName = aliases(message);
  const seen = new Map<string, string>();
  const entries: [string, unknown][] = [];
  for (const [key, value] of Object.entries(untrusted)) {
    const name = byName.get(key);
    if (name === undefined) {
      entries.push([key, value]); // unknown: left for the shape check to report
      continue;
    }
    const at = `${path === "" ? "" : `${path}.`}${name}`;
    const earlier = seen.get(name);
    if (earlier !== undefined) {
      check.fail(`${at} (given twice, as ${earlier} and ${key})`);
      continue;
    }
    seen.set(name, key);
    if (value === null) continue; // the field's default
    const field = message[name];
    if (field === undefined) continue;
    entries.push([name, normalizeField(value, field, check, at)]);
  }
  // Object.fromEntries defines own properties: a "__proto__" key stays plain data.
  return Object.fromEntries(entries);
}

function normalizeField(value: unknown, field: ProtobufField, check: ShapeChecker, path: string): unknown {
  if (Array.isArray(value)) {
    return value.map((item, i) => normalizeField(item, field, check, `${path}[${i}]`));
  }
  switch (field.kind) {
    case "scalar":
      return value;
    case "enum":
      return typeof value === "number" ? field.values[value] ?? value : value;
    case "message":
      return normalizeProtobufJson(value, field.fields, check, path);
  }
}

const ALIASES = new WeakMap<ProtobufMessage, Map<string, string>>();

/** Every accepted key of a message (JSON name and proto name) mapped to the JSON name. */
function aliases(message: ProtobufMessage): Map<string, string> {
  let map = ALIASES.get(message);
  if (map !== undefined) return map;
  map = new Map();
  for (const [name, field] of Object.entries(message)) {
    map.set(name, name);
    const protoName = field.kind === "scalar" && field.protoName !== undefined
      ? field.protoName
      : name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    map.set(protoName, name);
  }
  ALIASES.set(message, map);
  return map;
}

const SCALAR: ProtobufField = { kind: "scalar" };

function message(fields: ProtobufMessage): ProtobufField {
  return { kind: "message", fields };
}

/** `dev.sigstore.common.v1.HashAlgorithm`. */
const HASH_ALGORITHM: ProtobufField = {
  kind: "enum",
  values: {
    0: "HASH_ALGORITHM_UNSPECIFIED",
    1: "SHA2_256",
    2: "SHA2_384",
    3: "SHA2_512",
    4: "SHA3_256",
    5: "SHA3_384",
  },
};

/** `dev.sigstore.common.v1.PublicKeyDetails` (protobuf-specs 0.5). */
const PUBLIC_KEY_DETAILS: ProtobufField = {
  kind: "enum",
  values: {
    0: "PUBLIC_KEY_DETAILS_UNSPECIFIED",
    1: "PKCS1_RSA_PKCS1V5",
    2: "PKCS1_RSA_PSS",
    3: "PKIX_RSA_PKCS1V5",
    4: "PKIX_RSA_PSS",
    5: "PKIX_ECDSA_P256_SHA_256",
    6: "PKIX_ECDSA_P256_HMAC_SHA_256",
    7: "PKIX_ED25519",
    8: "PKIX_ED25519_PH",
    9: "PKIX_RSA_PKCS1V15_2048_SHA256",
    10: "PKIX_RSA_PKCS1V15_3072_SHA256",
    11: "PKIX_RSA_PKCS1V15_4096_SHA256",
    12: "PKIX_ECDSA_P384_SHA_384",
    13: "PKIX_ECDSA_P521_SHA_512",
    14: "LMS_SHA256",
    15: "LMOTS_SHA256",
    16: "PKIX_RSA_PSS_2048_SHA256",
    17: "PKIX_RSA_PSS_3072_SHA256",
    18: "PKIX_RSA_PSS_4096_SHA256",
    19: "PKIX_ECDSA_P384_SHA_256",
    20: "PKIX_ECDSA_P521_SHA_256",
    21: "ML_DSA_65",
    22: "ML_DSA_87",
    23: "ML_DSA_44",
  },
};

const LOG_ID = message({ keyId: SCALAR });
const TIME_RANGE = message({ start: SCALAR, end: SCALAR });
const X509_CERTIFICATE = message({ rawBytes: SCALAR });
const X509_CERTIFICATE_CHAIN = message({ certificates: X509_CERTIFICATE });

const TRANSPARENCY_LOG_INSTANCE = message({
  baseUrl: SCALAR,
  hashAlgorithm: HASH_ALGORITHM,
  publicKey: message({ rawBytes: SCALAR, keyDetails: PUBLIC_KEY_DETAILS, validFor: TIME_RANGE }),
  logId: LOG_ID,
  checkpointKeyId: LOG_ID,
  operator: SCALAR,
});

const CERTIFICATE_AUTHORITY = message({
  subject: message({ organization: SCALAR, commonName: SCALAR }),
  uri: SCALAR,
  certChain: X509_CERTIFICATE_CHAIN,
  validFor: TIME_RANGE,
  operator: SCALAR,
});

/** `dev.sigstore.trustroot.v1.TrustedRoot`. */
export const TRUSTED_ROOT_MESSAGE: ProtobufMessage = {
  mediaType: SCALAR,
  tlogs: TRANSPARENCY_LOG_INSTANCE,
  certificateAuthorities: CERTIFICATE_AUTHORITY,
  ctlogs: TRANSPARENCY_LOG_INSTANCE,
  timestampAuthorities: CERTIFICATE_AUTHORITY,
};

const TRANSPARENCY_LOG_ENTRY = message({
  logIndex: SCALAR,
  logId: LOG_ID,
  kindVersion: message({ kind: SCALAR, version: SCALAR }),
  integratedTime: SCALAR,
  inclusionPromise: message({ signedEntryTimestamp: SCALAR }),
  inclusionProof: message({
    logIndex: SCALAR,
    rootHash: SCALAR,
    treeSize: SCALAR,
    hashes: SCALAR,
    checkpoint: message({ envelope: SCALAR }),
  }),
  canonicalizedBody: SCALAR,
});

/** `dev.sigstore.bundle.v1.Bundle` (with the DSSE `io.intoto.Envelope`, whose proto names are camelCase). */
export const BUNDLE_MESSAGE: ProtobufMessage = {
  mediaType: SCALAR,
  verificationMaterial: message({
    publicKey: message({ hint: SCALAR }),
    x509CertificateChain: X509_CERTIFICATE_CHAIN,
    certificate: X509_CERTIFICATE,
    tlogEntries: TRANSPARENCY_LOG_ENTRY,
    timestampVerificationData: message({
      rfc3161Timestamps: message({ signedTimestamp: SCALAR }),
    }),
  }),
  messageSignature: message({
    messageDigest: message({ algorithm: HASH_ALGORITHM, digest: SCALAR }),
    signature: SCALAR,
  }),
  dsseEnvelope: message({
    payload: SCALAR,
    payloadType: { kind: "scalar", protoName: "payloadType" },
    signatures: message({ sig: SCALAR, keyid: SCALAR }),
  }),
};
