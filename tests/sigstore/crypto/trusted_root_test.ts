/** `parseTrustedRoot()`: the production and custom roots parse; malformed roots are refused with every path. */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { isDangerzoneError } from "../../../src/errors.ts";
import {
  PRODUCTION_TRUSTED_ROOT_JSON,
  PRODUCTION_TRUSTED_ROOT_SHA256,
} from "../../../src/sigstore/crypto/_production_trusted_root.ts";
import {
  parseTrustedRoot,
  productionTrustedRoot,
  trustMaterialFor,
} from "../../../src/sigstore/crypto/trusted_root.ts";
import { CASES_DIR, PRODUCTION_ROOT_FILE } from "./_conformance_cases.ts";

type Json = Record<string, unknown>;
// deno-lint-ignore no-explicit-any
type Loose = any;

function production(): Loose {
  return JSON.parse(Deno.readTextFileSync(PRODUCTION_ROOT_FILE));
}

function refuses(root: unknown, message?: RegExp): void {
  assert.throws(
    () => parseTrustedRoot(typeof root === "string" ? root : JSON.stringify(root)),
    (e: unknown) => {
      assert.ok(isDangerzoneError(e, "TRUST_ROOT_INVALID"), String(e));
      if (message !== undefined) assert.match(e.message, message);
      return true;
    },
  );
}

Deno.test("PRODUCTION_TRUSTED_ROOT_JSON is the vector file, byte for byte", () => {
  const file = Deno.readFileSync(PRODUCTION_ROOT_FILE);
  assert.deepEqual(new TextEncoder().encode(PRODUCTION_TRUSTED_ROOT_JSON), file);
  assert.equal(crypto.createHash("sha256").update(file).digest("hex"), PRODUCTION_TRUSTED_ROOT_SHA256);
});

Deno.test("productionTrustedRoot() exports the Rekor v1 and v2 log keys", () => {
  const root = productionTrustedRoot();
  assert.equal(root.source, "production");
  const rekor = root.rekorLogs.map((l) => [l.baseUrl, l.logIdHex, l.keyDetails]);
  assert.deepEqual(rekor[0], [
    "https://rekor.sigstore.dev",
    "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
    "PKIX_ECDSA_P256_SHA_256",
  ]);
  assert.equal(rekor[1]?.[2], "PKIX_ED25519");
  const v1 = root.rekorLogs[0];
  assert.ok(v1 !== undefined);
  assert.equal(crypto.createHash("sha256").update(v1.publicKeyDer).digest("hex"), v1.logIdHex);
  assert.equal(v1.validFrom.toISOString(), "2021-01-12T11:53:27.000Z");
  assert.equal(v1.validUntil, undefined);
  assert.equal(root.ctLogs.length, 2);
  assert.equal(trustMaterialFor(root).certificateAuthorities.length, 2);
});

Deno.test("parseTrustedRoot() accepts the conformance cases' custom roots", () => {
  for (const c of ["rekor2-happy-path", "rekor2-dsse-happy-path", "intoto-with-custom-trust-root"]) {
    const root = parseTrustedRoot(Deno.readFileSync(`${CASES_DIR}${c}/trusted_root.json`), { source: c });
    assert.ok(root.rekorLogs.length >= 1, c);
  }
});

Deno.test("parseTrustedRoot() refuses non-JSON, non-objects and oversized input", () => {
  refuses("{", /JSON/);
  refuses("[]", /object/);
  refuses(`{"pad":"${"x".repeat(1024 * 1024)}"}`, /larger/);
  assert.throws(
    () => parseTrustedRoot(new Uint8Array([0xff, 0xfe])),
    (e: unknown) => isDangerzoneError(e, "TRUST_ROOT_INVALID"),
  );
});

Deno.test("parseTrustedRoot() refuses an unknown media type and unknown fields", () => {
  const r = production();
  r.mediaType = "application/vnd.dev.sigstore.trustedroot+json;version=9.9";
  refuses(r, /mediaType/);
  const s = production();
  s.revoked = [];
  refuses(s, /revoked \(unknown field\)/);
});

Deno.test("parseTrustedRoot() refuses a root without transparency logs", () => {
  const r = production();
  r.tlogs = [];
  refuses(r, /tlogs/);
  const s = production();
  delete s.tlogs;
  refuses(s, /tlogs/);
});

Deno.test("parseTrustedRoot() refuses undecodable keys and keys of another type than declared", () => {
  const r = production();
  r.tlogs[0].publicKey.rawBytes = btoa("not a key");
  refuses(r, /tlogs\[0\]\.publicKey\.rawBytes/);
  const s = production();
  s.tlogs[1].publicKey.keyDetails = "PKIX_ECDSA_P256_SHA_256"; // an Ed25519 key
  refuses(s, /tlogs\[1\]\.publicKey\.rawBytes \(not a PKIX_ECDSA_P256_SHA_256 key\)/);
  const t = production();
  t.ctlogs[0].publicKey.keyDetails = "PKIX_MADE_UP";
  refuses(t, /ctlogs\[0\]\.publicKey\.keyDetails/);
  const u = production();
  u.tlogs[0].logId.keyId = "!!";
  refuses(u, /tlogs\[0\]\.logId\.keyId/);
});

Deno.test("parseTrustedRoot() refuses insane validity ranges", () => {
  const r = production();
  r.tlogs[0].publicKey.validFor = { start: "2024-01-01T00:00:00Z", end: "2020-01-01T00:00:00Z" };
  refuses(r, /end before start/);
  const s = production();
  s.certificateAuthorities[0].validFor.start = "yesterday";
  refuses(s, /certificateAuthorities\[0\]\.validFor\.start/);
  const t = production();
  delete t.tlogs[0].publicKey.validFor;
  refuses(t, /tlogs\[0\]\.publicKey\.validFor/);
});

Deno.test("parseTrustedRoot() refuses certificate chains that do not parse or do not chain", () => {
  const r = production();
  r.certificateAuthorities[1].certChain.certificates[0].rawBytes = btoa("garbage");
  refuses(r, /certificateAuthorities\[1\]\.certChain\.certificates\[0\]\.rawBytes/);
  const s = production();
  s.certificateAuthorities[1].certChain.certificates.reverse();
  refuses(s, /not signed by the next certificate/);
  const t = production();
  t.timestampAuthorities[0].certChain.certificates = [];
  refuses(t, /timestampAuthorities\[0\]\.certChain\.certificates/);
});

Deno.test("parseTrustedRoot() lists every invalid path in one error", () => {
  const r = production() as Json & Loose;
  r.mediaType = 1;
  r.tlogs[0].hashAlgorithm = "MD5";
  r.ctlogs[1].baseUrl = 7;
  refuses(r, /mediaType, tlogs\[0\]\.hashAlgorithm, ctlogs\[1\]\.baseUrl/);
});

Deno.test("parseTrustedRoot() refuses duplicate log IDs", () => {
  const r = production();
  r.tlogs.push(structuredClone(r.tlogs[0]));
  refuses(r, /duplicate/);
});
