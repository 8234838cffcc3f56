import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { DangerzoneError } from "../../../src/errors.ts";
import {
  loadPublicKeyFile,
  parsePublicKeyPem,
  pinnedPublisherKey,
  sameKey,
} from "../../../src/sigstore/crypto/keys.ts";
import {
  DANGERZONE_PUBLISHER_KEY_PEM,
  REKOR_PUBLIC_KEY_PEM,
} from "../../../src/sigstore/crypto/_pinned_keys.ts";

const VECTORS = new URL("../../testdata/vectors/", import.meta.url);
const enc = new TextEncoder();

function isCode(code: string) {
  return (err: unknown) => err instanceof DangerzoneError && err.code === code;
}

Deno.test("parsePublicKeyPem() gives the store folder name (file sha256) and the log ID (SPKI sha256)", async () => {
  const test = await loadPublicKeyFile(new URL("dangerzone/tests/assets/test.pub.key", VECTORS).pathname);
  assert.equal(test.fileSha256, "95b432860b272938246b10e1cfc89a24e1db352b3aebaa799c4284c42c46bd95");
  assert.equal(test.algorithm, "ecdsa-p256");
  const rekor = await loadPublicKeyFile(new URL("dangerzone/share/rekor.pub", VECTORS).pathname);
  assert.equal(rekor.spkiSha256, "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d");
});

Deno.test("parsePublicKeyPem() accepts P-256, P-384 and Ed25519 SPKI keys", async () => {
  const pairs = [
    ["ecdsa-p256", generateKeyPairSync("ec", { namedCurve: "prime256v1" })],
    ["ecdsa-p384", generateKeyPairSync("ec", { namedCurve: "secp384r1" })],
    ["ed25519", generateKeyPairSync("ed25519")],
  ] as const;
  for (const [algorithm, pair] of pairs) {
    const pem = String(pair.publicKey.export({ type: "spki", format: "pem" }));
    const key = await parsePublicKeyPem(enc.encode(pem));
    assert.equal(key.algorithm, algorithm);
    assert.ok(sameKey(key, new Uint8Array(pair.publicKey.export({ type: "spki", format: "der" }))));
  }
});

Deno.test("parsePublicKeyPem() refuses RSA, P-521, certificates, garbage and two blocks with KEY_INVALID", async () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({
    type: "spki",
    format: "pem",
  });
  const p521 = generateKeyPairSync("ec", { namedCurve: "secp521r1" }).publicKey.export({
    type: "spki",
    format: "pem",
  });
  const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  for (
    const text of [
      String(rsa),
      String(p521),
      cert,
      "hello",
      DANGERZONE_PUBLISHER_KEY_PEM + REKOR_PUBLIC_KEY_PEM,
    ]
  ) {
    await assert.rejects(parsePublicKeyPem(enc.encode(text)), isCode("KEY_INVALID"));
  }
  // A point not on the curve.
  const bad = DANGERZONE_PUBLISHER_KEY_PEM.replace("3CUlnwh8", "AAAAAAAA");
  await assert.rejects(parsePublicKeyPem(enc.encode(bad)), isCode("KEY_INVALID"));
});

Deno.test("pinned keys are byte-exact copies of the shipped files", async () => {
  const vec = (p: string) => Deno.readTextFile(new URL(p, VECTORS));
  const assets = (p: string) => Deno.readTextFile(new URL(`../../../assets/${p}`, import.meta.url));
  assert.equal(DANGERZONE_PUBLISHER_KEY_PEM, await vec("dangerzone/share/freedomofpress-dangerzone.pub"));
  assert.equal(REKOR_PUBLIC_KEY_PEM, await vec("dangerzone/share/rekor.pub"));
  assert.equal(DANGERZONE_PUBLISHER_KEY_PEM, await assets("freedomofpress-dangerzone.pub"));
  assert.equal(REKOR_PUBLIC_KEY_PEM, await assets("rekor.pub"));
  const key = await pinnedPublisherKey();
  assert.equal(key.fileSha256, "f8d4fdda2a40d010a1d7d4024e78cecc14d9ab48c89301a901df960a0c47a074");
});
