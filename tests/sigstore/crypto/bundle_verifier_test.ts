/**
 * `verifyBundle()`: the checks DESIGN rule 9 leaves to the caller, each with a crafted bundle that
 * passes every other check (a control case verifies), plus error mapping and digest mode.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { isDangerzoneError } from "../../../src/errors.ts";
import { parseDigest } from "../../../src/oci/digest.ts";
import { type BundlePolicy, verifyBundle } from "../../../src/sigstore/crypto/bundle_verifier.ts";
import { parseTrustedRoot, productionTrustedRoot } from "../../../src/sigstore/crypto/trusted_root.ts";
import {
  ACTIONS_ISSUER,
  BEACON_IDENTITY,
  bundleJson,
  CASES_DIR,
  defaultArtifact,
  PRODUCTION_ROOT_FILE,
} from "./_conformance_cases.ts";

const IDENTITY: BundlePolicy = { kind: "identity", identity: BEACON_IDENTITY, issuer: ACTIONS_ISSUER };
const A_TXT_DIGEST = parseDigest("sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf");

function rejects(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isDangerzoneError(err), `not a DangerzoneError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** The production Fulcio chain: [intermediate, root] of the current CA. */
function fulcioChain(): { intermediate: string; root: string } {
  const root: unknown = JSON.parse(Deno.readTextFileSync(PRODUCTION_ROOT_FILE));
  const cas = (root as { certificateAuthorities: { certChain: { certificates: { rawBytes: string }[] } }[] })
    .certificateAuthorities;
  const certs = cas[cas.length - 1]?.certChain.certificates ?? [];
  const [intermediate, self] = [certs[0]?.rawBytes, certs[1]?.rawBytes];
  if (intermediate === undefined || self === undefined) throw new Error("fixture: no Fulcio chain");
  return { intermediate, root: self };
}

/** happy-path-v0.1 with extra certificates appended to its shipped chain. */
function v01WithChain(extra: string[]): Uint8Array {
  const b = bundleJson("happy-path-v0.1");
  const vm = b["verificationMaterial"] as { x509CertificateChain: { certificates: { rawBytes: string }[] } };
  vm.x509CertificateChain.certificates.push(...extra.map((rawBytes) => ({ rawBytes })));
  return encode(b);
}

Deno.test("verifyBundle() verifies a v0.1 message-signature bundle and reports the signer", () => {
  const v = verifyBundle(v01WithChain([]), { artifact: defaultArtifact(), policy: IDENTITY });
  assert.deepEqual(v.signer, { kind: "certificate", identity: BEACON_IDENTITY, issuer: ACTIONS_ISSUER });
  assert.equal(v.artifactDigest, A_TXT_DIGEST);
  assert.equal(v.tlogEntries[0]?.kind, "hashedrekord/0.0.1");
});

Deno.test("verifyBundle() rule 9: a shipped chain with an intermediate verifies (control)", () => {
  const v = verifyBundle(v01WithChain([fulcioChain().intermediate]), {
    artifact: defaultArtifact(),
    policy: IDENTITY,
  });
  assert.equal(v.content, "messageSignature");
});

Deno.test("verifyBundle() rule 9: a shipped chain containing a root certificate is refused", () => {
  const { intermediate, root } = fulcioChain();
  rejects(
    () => verifyBundle(v01WithChain([intermediate, root]), { artifact: defaultArtifact(), policy: IDENTITY }),
    "CERTIFICATE_INVALID",
    /root/,
  );
});

Deno.test("verifyBundle() rule 9: the conformance bundle-with-root-cert case fails on the root check", () => {
  const dir = `${CASES_DIR}bundle-with-root-cert_fail/`;
  rejects(
    () =>
      verifyBundle(Deno.readFileSync(`${dir}bundle.sigstore.json`), {
        artifact: Deno.readFileSync(`${dir}artifact`),
        policy: IDENTITY,
      }),
    "CERTIFICATE_INVALID",
    /root/,
  );
});

Deno.test("verifyBundle() rule 9: a DSSE statement about another artifact is refused", () => {
  const bundle = Deno.readFileSync(`${CASES_DIR}happy-path-intoto-in-dsse-v3/bundle.sigstore.json`);
  // Control: the right artifact verifies, as bytes and as a digest.
  assert.equal(
    verifyBundle(bundle, { artifact: defaultArtifact(), policy: IDENTITY }).statement?.subject.length,
    1,
  );
  assert.ok(verifyBundle(bundle, { artifact: { digest: A_TXT_DIGEST }, policy: IDENTITY }).dsse);
  rejects(
    () => verifyBundle(bundle, { artifact: new TextEncoder().encode("another artifact"), policy: IDENTITY }),
    "POLICY_DIGEST_MISMATCH",
  );
  rejects(
    () =>
      verifyBundle(bundle, {
        artifact: { digest: parseDigest(`sha256:${"0".repeat(64)}`) },
        policy: IDENTITY,
      }),
    "POLICY_DIGEST_MISMATCH",
  );
});

Deno.test("verifyBundle() rule 9: a Rekor v2 DSSE statement about another artifact is refused", () => {
  const dir = `${CASES_DIR}rekor2-dsse-happy-path/`;
  const trustedRoot = parseTrustedRoot(Deno.readFileSync(`${dir}trusted_root.json`));
  const bundle = Deno.readFileSync(`${dir}bundle.sigstore.json`);
  assert.ok(verifyBundle(bundle, { artifact: defaultArtifact(), policy: IDENTITY, trustedRoot }));
  rejects(
    () => verifyBundle(bundle, { artifact: new Uint8Array([1]), policy: IDENTITY, trustedRoot }),
    "POLICY_DIGEST_MISMATCH",
  );
});

Deno.test("verifyBundle() rule 9: the identity is compared exactly, not as a regular expression", () => {
  const bundle = Deno.readFileSync(`${CASES_DIR}happy-path-v0.3/bundle.sigstore.json`);
  const artifact = defaultArtifact();
  const variants = [
    BEACON_IDENTITY.slice(0, -1), // prefix: an unanchored regex matches
    BEACON_IDENTITY.slice(8), // substring
    `${BEACON_IDENTITY.slice(0, -1)}.`, // "." matches any character
    `${BEACON_IDENTITY}.*`,
    `.*`,
    BEACON_IDENTITY.toUpperCase(),
  ];
  for (const identity of variants) {
    rejects(
      () =>
        verifyBundle(bundle, { artifact, policy: { kind: "identity", identity, issuer: ACTIONS_ISSUER } }),
      "POLICY_IDENTITY_MISMATCH",
    );
  }
  for (const issuer of [`${ACTIONS_ISSUER}/`, ACTIONS_ISSUER.slice(0, -1), "https://accounts.google.com"]) {
    rejects(
      () =>
        verifyBundle(bundle, { artifact, policy: { kind: "identity", identity: BEACON_IDENTITY, issuer } }),
      "POLICY_IDENTITY_MISMATCH",
    );
  }
  assert.ok(verifyBundle(bundle, { artifact, policy: IDENTITY }));
});

Deno.test("verifyBundle() rule 9: library exceptions on odd input become DangerzoneErrors", () => {
  const b = bundleJson("happy-path-v0.1");
  const vm = b["verificationMaterial"] as { x509CertificateChain: { certificates: { rawBytes: string }[] } };
  vm.x509CertificateChain.certificates = [{ rawBytes: btoa("not a certificate") }];
  rejects(
    () => verifyBundle(encode(b), { artifact: defaultArtifact(), policy: IDENTITY }),
    "CERTIFICATE_INVALID",
  );

  const d = bundleJson("happy-path-v0.3");
  (d["verificationMaterial"] as { certificate: { rawBytes: string } }).certificate.rawBytes = btoa("garbage");
  rejects(() => verifyBundle(encode(d), { artifact: defaultArtifact(), policy: IDENTITY }), "BUNDLE_INVALID");

  const c = bundleJson("happy-path-v0.3");
  const entries = (c["verificationMaterial"] as { tlogEntries: { canonicalizedBody: string }[] }).tlogEntries;
  const entry = entries[0];
  if (entry === undefined) throw new Error("fixture");
  entry.canonicalizedBody = btoa("[1,2");
  rejects(
    () => verifyBundle(encode(c), { artifact: defaultArtifact(), policy: IDENTITY }),
    "TLOG_SET_INVALID",
  );
});

Deno.test("verifyBundle() rule 9: the trusted root is validated before use", () => {
  assert.throws(() => parseTrustedRoot("{}"), (e: unknown) => isDangerzoneError(e, "TRUST_ROOT_INVALID"));
});

Deno.test("verifyBundle() binds a message signature to the artifact (bytes and digest)", () => {
  const bundle = Deno.readFileSync(`${CASES_DIR}happy-path-v0.2/bundle.sigstore.json`);
  assert.ok(verifyBundle(bundle, { artifact: { digest: A_TXT_DIGEST }, policy: IDENTITY }));
  rejects(
    () => verifyBundle(bundle, { artifact: new TextEncoder().encode("other"), policy: IDENTITY }),
    "SIGNATURE_INVALID",
  );
  rejects(
    () =>
      verifyBundle(bundle, {
        artifact: { digest: parseDigest(`sha256:${"1".repeat(64)}`) },
        policy: IDENTITY,
      }),
    "SIGNATURE_INVALID",
  );
});

Deno.test("verifyBundle() digest mode checks the signature itself, not only the digest", () => {
  const b = bundleJson("happy-path-v0.3");
  const sig = b["messageSignature"] as { signature: string };
  const bytes = Buffer.from(sig.signature, "base64");
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
  sig.signature = bytes.toString("base64");
  rejects(
    () => verifyBundle(encode(b), { artifact: { digest: A_TXT_DIGEST }, policy: IDENTITY }),
    "TLOG_BODY_MISMATCH",
  );
});

Deno.test("verifyBundle() key policy: verifies a key-signed bundle, refuses a certificate bundle", () => {
  const dir = `${CASES_DIR}managed-key-happy-path/`;
  const publicKeyPem = Deno.readTextFileSync(`${dir}key.pub`);
  const v = verifyBundle(Deno.readFileSync(`${dir}bundle.sigstore.json`), {
    artifact: defaultArtifact(),
    policy: { kind: "key", publicKeyPem },
  });
  assert.equal(v.signer.kind, "key");
  assert.ok(verifyBundle(Deno.readFileSync(`${dir}bundle.sigstore.json`), {
    artifact: { digest: A_TXT_DIGEST },
    policy: { kind: "key", publicKeyPem },
  }));
  rejects(
    () =>
      verifyBundle(Deno.readFileSync(`${CASES_DIR}happy-path-v0.3/bundle.sigstore.json`), {
        artifact: defaultArtifact(),
        policy: { kind: "key", publicKeyPem },
      }),
    "POLICY_IDENTITY_MISMATCH",
  );
  rejects(
    () =>
      verifyBundle(Deno.readFileSync(`${dir}bundle.sigstore.json`), {
        artifact: defaultArtifact(),
        policy: IDENTITY,
      }),
    "POLICY_IDENTITY_MISMATCH",
  );
  rejects(
    () =>
      verifyBundle(Deno.readFileSync(`${dir}bundle.sigstore.json`), {
        artifact: defaultArtifact(),
        policy: {
          kind: "key",
          publicKeyPem: Deno.readTextFileSync(`${CASES_DIR}managed-key-wrong-key_fail/key.pub`),
        },
      }),
    "KEY_INVALID",
  );
});

Deno.test("verifyBundle() key policy: another valid key is refused", async () => {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const pem = `-----BEGIN PUBLIC KEY-----\n${
    Buffer.from(spki).toString("base64")
  }\n-----END PUBLIC KEY-----\n`;
  rejects(
    () =>
      verifyBundle(Deno.readFileSync(`${CASES_DIR}managed-key-happy-path/bundle.sigstore.json`), {
        artifact: defaultArtifact(),
        policy: { kind: "key", publicKeyPem: pem },
      }),
    "SIGNATURE_INVALID",
  );
});

Deno.test("verifyBundle() needs a transparency-log entry", () => {
  const b = bundleJson("happy-path-v0.3");
  (b["verificationMaterial"] as { tlogEntries: unknown[] }).tlogEntries = [];
  rejects(
    () => verifyBundle(encode(b), { artifact: defaultArtifact(), policy: IDENTITY }),
    "SIGNATURE_INVALID",
  );
});

Deno.test("verifyBundle() refuses a bundle under another trusted root", () => {
  const staging = parseTrustedRoot(Deno.readFileSync(`${CASES_DIR}rekor2-happy-path/trusted_root.json`));
  rejects(
    () =>
      verifyBundle(Deno.readFileSync(`${CASES_DIR}happy-path-v0.3/bundle.sigstore.json`), {
        artifact: defaultArtifact(),
        policy: IDENTITY,
        trustedRoot: staging,
      }),
    "CERTIFICATE_INVALID",
  );
  assert.ok(productionTrustedRoot().rekorLogs.length >= 1);
});
