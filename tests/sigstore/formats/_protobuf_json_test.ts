/**
 * The protobuf JSON mapping of Sigstore inputs: trusted roots in the newest published shape (v0.2 media
 * type, `operator`, `checkpointKeyId`), written with proto field names, `null` defaults and enum numbers,
 * parse to the same trust as the canonical form and verify real bundles; bundles written that way verify
 * too. What the mapping does not allow (a field given twice, duplicate keys, unknown enum numbers, a
 * `null` list item, wrong types, unknown fields) is still refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isDangerzoneError } from "../../../src/errors.ts";
import { bundleFromObject, parseBundle } from "../../../src/sigstore/formats/bundle.ts";
import { verifyBundle } from "../../../src/sigstore/crypto/bundle_verifier.ts";
import {
  describeLogKeys,
  parseTrustedRoot,
  trustMaterialFor,
} from "../../../src/sigstore/crypto/trusted_root.ts";

// deno-lint-ignore no-explicit-any
type Loose = any;

const VECTORS = new URL("../../testdata/vectors/", import.meta.url);
const CASES = new URL("sigstore-conformance/test/assets/bundle-verify/", VECTORS);
const ROOT_FILE = new URL("sigstore-root-signing/targets/trusted_root.json", VECTORS);
const ARTIFACT = Deno.readFileSync(new URL("sigstore-conformance/test/assets/a.txt", VECTORS));
const IDENTITY = {
  kind: "identity",
  identity:
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
  issuer: "https://token.actions.githubusercontent.com",
} as const;

function json(url: URL): Loose {
  return JSON.parse(Deno.readTextFileSync(url));
}

/** Every key renamed to its proto field name (lowerCamelCase to snake_case). */
function snakeCase(value: unknown): Loose {
  if (Array.isArray(value)) return value.map(snakeCase);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeCase(v)]),
  );
}

function refusesRoot(root: unknown, message: RegExp): void {
  assert.throws(
    () => parseTrustedRoot(typeof root === "string" ? root : JSON.stringify(root), { source: "t" }),
    (e: unknown) => {
      assert.ok(isDangerzoneError(e, "TRUST_ROOT_INVALID"), String(e));
      assert.match(e.message, message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );
}

function refusesBundle(bundle: unknown, message: RegExp): void {
  assert.throws(
    () => typeof bundle === "string" ? parseBundle(bundle) : bundleFromObject(bundle),
    (e: unknown) => {
      assert.ok(isDangerzoneError(e, "BUNDLE_INVALID"), String(e));
      assert.match(e.message, message);
      return true;
    },
  );
}

const canonical = parseTrustedRoot(Deno.readFileSync(ROOT_FILE), { source: "canonical" });

Deno.test("parseTrustedRoot() reads the newest published shape: v0.2 media type, operator, checkpointKeyId", () => {
  const r = json(ROOT_FILE);
  r.mediaType = "application/vnd.dev.sigstore.trustedroot.v0.2+json";
  for (const log of [...r.tlogs, ...r.ctlogs]) log.operator = "sigstore.dev";
  r.tlogs[1].checkpointKeyId = r.tlogs[1].logId;
  for (const ca of [...r.certificateAuthorities, ...r.timestampAuthorities]) ca.operator = "sigstore.dev";
  const root = parseTrustedRoot(JSON.stringify(r), { source: "newest" });
  assert.equal(root.mediaType, "application/vnd.dev.sigstore.trustedroot.v0.2+json");
  assert.deepEqual(describeLogKeys(root.rekorLogs), describeLogKeys(canonical.rekorLogs));
  assert.deepEqual(describeLogKeys(root.ctLogs), describeLogKeys(canonical.ctLogs));
  assert.equal(root.protobuf.tlogs[1]?.operator, "sigstore.dev");
  assert.deepEqual(root.protobuf.tlogs[1]?.checkpointKeyId?.keyId, canonical.protobuf.tlogs[1]?.logId?.keyId);
});

Deno.test("parseTrustedRoot() reads proto field names, null defaults and enum numbers as the canonical form", () => {
  const r = snakeCase(json(ROOT_FILE));
  assert.ok("certificate_authorities" in r && "base_url" in r.tlogs[0]);
  r.tlogs[0].hash_algorithm = 1; // SHA2_256
  r.tlogs[0].public_key.key_details = 5; // PKIX_ECDSA_P256_SHA_256
  r.tlogs[1].public_key.key_details = 7; // PKIX_ED25519
  r.tlogs[0].operator = null;
  r.tlogs[0].checkpoint_key_id = null;
  r.tlogs[0].public_key.valid_for.end = null;
  r.ctlogs[0].public_key.key_details = "PKIX_ECDSA_P256_SHA_256"; // names and numbers mix
  r.certificate_authorities[0].subject.common_name = null;
  r.timestamp_authorities = null; // the default: none
  const root = parseTrustedRoot(JSON.stringify(r), { source: "snake" });
  assert.equal(root.mediaType, canonical.mediaType);
  assert.deepEqual(describeLogKeys(root.rekorLogs), describeLogKeys(canonical.rekorLogs));
  assert.deepEqual(describeLogKeys(root.ctLogs), describeLogKeys(canonical.ctLogs));
  const trust = trustMaterialFor(root);
  assert.equal(trust.certificateAuthorities.length, canonical.protobuf.certificateAuthorities.length);
  assert.equal(trust.timestampAuthorities.length, 0);
});

Deno.test("a Rekor v2 bundle verifies under its root rewritten with proto names, numbers and checkpointKeyId", () => {
  const r = snakeCase(json(new URL("rekor2-happy-path/trusted_root.json", CASES)));
  for (const log of r.tlogs) {
    log.hash_algorithm = 1;
    log.checkpoint_key_id = log.log_id;
    log.operator = "sigstage.dev";
  }
  r.media_type = "application/vnd.dev.sigstore.trustedroot.v0.2+json";
  const trustedRoot = parseTrustedRoot(JSON.stringify(r), { source: "rekor2" });
  const bundle = Deno.readFileSync(new URL("rekor2-happy-path/bundle.sigstore.json", CASES));
  const verified = verifyBundle(bundle, { artifact: ARTIFACT, policy: IDENTITY, trustedRoot });
  assert.equal(verified.tlogEntries[0]?.kind, "hashedrekord/0.0.2");
});

Deno.test("a bundle written with proto names, null defaults and an enum number verifies", () => {
  const b = snakeCase(json(new URL("happy-path-v0.3/bundle.sigstore.json", CASES)));
  b.message_signature.message_digest.algorithm = 1; // SHA2_256
  b.dsse_envelope = null; // the other member of the oneof, unset
  b.verification_material.timestamp_verification_data = null;
  b.verification_material.tlog_entries[0].inclusion_proof.checkpoint.envelope ??= null;
  const verified = verifyBundle(JSON.stringify(b), { artifact: ARTIFACT, policy: IDENTITY });
  assert.equal(verified.content, "messageSignature");
  assert.equal(verified.signer.kind, "certificate");
});

Deno.test("parseTrustedRoot() refuses what the mapping does not allow, with one line", () => {
  const twice = json(ROOT_FILE);
  twice.tlogs[0].base_url = twice.tlogs[0].baseUrl;
  refusesRoot(twice, /tlogs\[0\]\.baseUrl \(given twice, as baseUrl and base_url\)/);
  const text = Deno.readTextFileSync(ROOT_FILE).replace(
    /"mediaType": ("[^"]+")/,
    `"mediaType": $1, "mediaType": "application/vnd.dev.sigstore.trustedroot.v0.2+json"`,
  );
  refusesRoot(text, /not valid JSON \(duplicate key "mediaType"/);
  const unknownEnum = json(ROOT_FILE);
  unknownEnum.tlogs[0].publicKey.keyDetails = 99;
  refusesRoot(unknownEnum, /tlogs\[0\]\.publicKey\.keyDetails/);
  const wrongEnum = json(ROOT_FILE);
  wrongEnum.tlogs[0].publicKey.keyDetails = 7; // PKIX_ED25519, for a P-256 key
  refusesRoot(wrongEnum, /tlogs\[0\]\.publicKey\.rawBytes \(not a PKIX_ED25519 key\)/);
  const nullItem = json(ROOT_FILE);
  nullItem.ctlogs.push(null);
  refusesRoot(nullItem, /ctlogs\[2\]/);
  const nullRequired = json(ROOT_FILE);
  nullRequired.tlogs = null;
  refusesRoot(nullRequired, /tlogs/);
  const wrongType = snakeCase(json(ROOT_FILE));
  wrongType.tlogs[0].hash_algorithm = true;
  refusesRoot(wrongType, /tlogs\[0\]\.hashAlgorithm/);
  const unknown = json(ROOT_FILE);
  unknown.tlogs[0].log_identifier = unknown.tlogs[0].logId;
  refusesRoot(unknown, /tlogs\[0\]\.log_identifier \(unknown field\)/);
  const nullUnknown = json(ROOT_FILE);
  nullUnknown.revoked = null;
  refusesRoot(nullUnknown, /revoked \(unknown field\)/);
});

Deno.test("parseBundle() refuses what the mapping does not allow", () => {
  const twice = json(new URL("happy-path-v0.3/bundle.sigstore.json", CASES));
  twice.message_signature = twice.messageSignature;
  refusesBundle(twice, /messageSignature \(given twice, as messageSignature and message_signature\)/);
  const text = Deno.readTextFileSync(new URL("happy-path-v0.3/bundle.sigstore.json", CASES));
  refusesBundle(text.replace(/^\{/, `{"mediaType": "x",`), /duplicate key "mediaType"/);
  const unknownEnum = json(new URL("happy-path-v0.3/bundle.sigstore.json", CASES));
  unknownEnum.messageSignature.messageDigest.algorithm = 42;
  refusesBundle(unknownEnum, /messageSignature\.messageDigest\.algorithm/);
  const nullEntry = json(new URL("happy-path-v0.3/bundle.sigstore.json", CASES));
  nullEntry.verificationMaterial.tlogEntries.push(null);
  refusesBundle(nullEntry, /tlogEntries\[1\]/);
  const neither = json(new URL("happy-path-v0.3/bundle.sigstore.json", CASES));
  neither.messageSignature = null;
  refusesBundle(neither, /exactly one is required/);
});
