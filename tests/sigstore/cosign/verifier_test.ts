/**
 * The key-based cosign verification pipeline: every dangerzone and ghcr-signer vector with its
 * expected outcome, one crafted signature per rule that passes every other check and fails only that
 * rule, and the cosign advisories whose mistakes must not be repeated.
 */
import assert from "node:assert/strict";
import { parseDigest } from "../../../src/oci/digest.ts";
import { DangerzoneError, type ErrorCode } from "../../../src/errors.ts";
import {
  MAX_PAYLOAD_BYTES,
  parseSignatureList,
  signatureEntryFromLayer,
  type UntrustedSignatureEntry,
} from "../../../src/sigstore/cosign/cosign_signature.ts";
import { loadPublicKeyFile } from "../../../src/sigstore/crypto/keys.ts";
import { pinnedRekorKeyring } from "../../../src/sigstore/crypto/rekor_keys.ts";
import { type CosignTrust, verifyCosignSignature } from "../../../src/sigstore/cosign/verifier.ts";
import { verifyCosignSignatures } from "../../../src/sigstore/cosign/policy.ts";
import { b64, crafted, createTestKey, overlongR, payloadFor, trustFor, world } from "../_craft.ts";

const VECTORS = new URL("../../testdata/vectors/", import.meta.url);
const vector = (p: string) => new URL(p, VECTORS).pathname;

interface Expectation {
  suite: string;
  path: string;
  "image_digest": string;
  expect: string;
  logIndex?: number;
  integratedTime?: number;
  "docker_reference"?: string;
}

const expectations: Expectation[] = JSON.parse(await Deno.readTextFile(vector("EXPECTATIONS.json")));
const rekorKeys = await pinnedRekorKeyring();
const testKey = await loadPublicKeyFile(vector("dangerzone/tests/assets/test.pub.key"));
const prodKey = await loadPublicKeyFile(vector("dangerzone/share/freedomofpress-dangerzone.pub"));

async function rejects(promise: Promise<unknown>, code: ErrorCode, rule?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DangerzoneError, `expected DangerzoneError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (rule !== undefined) assert.match(err.message, rule);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
}

// ---------------------------------------------------------------- vectors: dangerzone

const dangerzoneCases = expectations.filter((c) => c.suite === "dangerzone");
assert.equal(dangerzoneCases.length, 11);
for (const c of dangerzoneCases) {
  const kind = c.path.split("/")[4];
  Deno.test(`verifyCosignSignatures() dangerzone vector ${kind}/${c.image_digest.slice(7, 19)}: ${c.expect.slice(0, 4)}`, async () => {
    const digest = parseDigest(c.image_digest);
    const entries = parseSignatureList(await Deno.readFile(vector(c.path)));
    const verdict = await verifyCosignSignatures(entries, { publicKey: testKey, rekorKeys }, { digest });
    if (c.expect === "PASS") {
      assert.equal(verdict.verified.length, entries.length);
      for (const v of verdict.verified) {
        assert.equal(v.digest, digest);
        assert.equal(v.logId, "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d");
        assert.match(v.dockerReference, /^ghcr\.io\/(almet|apyrgio)\/dangerzone\/dangerzone$/);
      }
    } else {
      assert.equal(verdict.verified.length, 0);
      for (const r of verdict.results) {
        assert.ok("error" in r);
        const expected: Record<string, ErrorCode[]> = {
          invalid: ["SIGNATURE_INVALID", "PAYLOAD_INVALID", "TLOG_SET_INVALID", "TLOG_BODY_MISMATCH"],
          tampered: ["SIGNATURE_INVALID", "TLOG_SET_INVALID"],
        };
        assert.ok(expected[kind ?? ""]?.includes(r.error.code), `${r.error.code}: ${r.error.message}`);
      }
    }
  });
}

Deno.test("verifyCosignSignatures() dangerzone valid vectors fail with the production key", async () => {
  for (const c of dangerzoneCases.filter((c) => c.expect === "PASS")) {
    const entries = parseSignatureList(await Deno.readFile(vector(c.path)));
    const verdict = await verifyCosignSignatures(entries, { publicKey: prodKey, rekorKeys }, {
      digest: parseDigest(c.image_digest),
    });
    assert.equal(verdict.verified.length, 0);
    for (const r of verdict.results) assert.ok("error" in r && r.error.code === "SIGNATURE_INVALID");
  }
});

// ---------------------------------------------------------------- vectors: ghcr-signer

/** Rebuilds the cosign-download entry from a `.sig` MANIFEST and its payload blob. */
async function ghcrEntry(dir: string): Promise<UntrustedSignatureEntry> {
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/MANIFEST`));
  const layer = manifest.layers[0];
  let payload: Uint8Array | undefined;
  for (const name of ["PAYLOAD_BLOB", "BLOB"]) {
    try {
      payload = await Deno.readFile(`${dir}/${name}`);
      break;
    } catch { /* try the other name */ }
  }
  assert.ok(payload !== undefined);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", payload as Uint8Array<ArrayBuffer>));
  assert.equal(`sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`, layer.digest);
  return signatureEntryFromLayer({
    untrustedSignatureAnnotation: layer.annotations["dev.cosignproject.cosign/signature"],
    untrustedBundleAnnotation: layer.annotations["dev.sigstore.cosign/bundle"],
    untrustedPayload: payload,
  }, 0);
}

const ghcrCases = expectations.filter((c) => c.suite.startsWith("ghcr-signer"));
assert.equal(ghcrCases.length, 12);
for (const c of ghcrCases) {
  Deno.test(`verifyCosignSignature() ghcr-signer ${c.image_digest.slice(7, 19)} verifies at logIndex ${c.logIndex}`, async () => {
    const entry = await ghcrEntry(vector(c.path));
    const digest = parseDigest(c.image_digest);
    const v = await verifyCosignSignature(entry, { publicKey: prodKey, rekorKeys }, {
      digest,
      reference: "ghcr.io/freedomofpress/dangerzone/v1",
    });
    assert.equal(v.logIndex, c.logIndex);
    assert.equal(v.integratedTime, c.integratedTime);
    assert.equal(v.dockerReference, c.docker_reference);
    assert.equal(v.keyFileSha256, "f8d4fdda2a40d010a1d7d4024e78cecc14d9ab48c89301a901df960a0c47a074");
    await rejects(
      verifyCosignSignature(entry, { publicKey: testKey, rekorKeys }, { digest }),
      "SIGNATURE_INVALID",
    );
  });
}

// ---------------------------------------------------------------- one crafted signature per rule

async function trust(): Promise<CosignTrust> {
  return (await world()).trust;
}
async function expected(reference?: string) {
  const w = await world();
  return reference === undefined ? { digest: w.digest } : { digest: w.digest, reference };
}

Deno.test("verifyCosignSignature() crafted baseline passes every check", async () => {
  const w = await world();
  const v = await verifyCosignSignature(await crafted(), await trust(), await expected(w.reference));
  assert.equal(v.logIndex, 1000);
  assert.equal(v.logId, w.rekor.spkiSha256);
  assert.equal(v.referenceEnforced, true);
});

Deno.test("verifyCosignSignature() rule 2: a signature by another key is SIGNATURE_INVALID", async () => {
  const w = await world();
  const other = createTestKey();
  // The log entry is consistent (it names the trusted key) so only the signature check can fail.
  const entry = await crafted({
    signer: other,
    mutateBody: (b) => ({
      ...b,
      spec: {
        ...b.spec,
        signature: { ...b.spec.signature, publicKey: { content: btoa(w.publisher.publicPem) } },
      },
    }),
  });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "SIGNATURE_INVALID", /rule 2/);
});

Deno.test("verifyCosignSignature() rule 2: a payload altered after signing is SIGNATURE_INVALID", async () => {
  const w = await world();
  const entry = await crafted({ shippedPayload: payloadFor(w.digest, "ghcr.io/h4xx0r/sandbox") });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "SIGNATURE_INVALID", /rule 2/);
});

Deno.test("verifyCosignSignature() rule 2: DER signature with trailing bytes is SIGNATURE_INVALID", async () => {
  const entry = await crafted({ mutateSignature: (der) => new Uint8Array([...der, 0x00]) });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "SIGNATURE_INVALID", /rule 2/);
});

Deno.test("verifyCosignSignature() rule 2: DER signature with an overlong integer is SIGNATURE_INVALID", async () => {
  const entry = await crafted({ mutateSignature: overlongR });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "SIGNATURE_INVALID", /rule 2/);
});

Deno.test("verifyCosignSignature() rule 2: critical.type of another kind is PAYLOAD_INVALID", async () => {
  const entry = await crafted({ type: "cosign container image attestation" });
  await rejects(
    verifyCosignSignature(entry, await trust(), await expected()),
    "PAYLOAD_INVALID",
    /critical\.type/,
  );
});

Deno.test("verifyCosignSignature() rule 2: payload for another digest is POLICY_DIGEST_MISMATCH", async () => {
  const entry = await crafted({ digest: `sha256:${"cd".repeat(32)}` });
  await rejects(
    verifyCosignSignature(entry, await trust(), await expected()),
    "POLICY_DIGEST_MISMATCH",
    /rule 2/,
  );
});

Deno.test("verifyCosignSignature() rule 2: digest comparison is exact (uppercase hex refused)", async () => {
  const w = await world();
  const entry = await crafted({ digest: w.digest.toUpperCase().replace("SHA256", "sha256") });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "POLICY_DIGEST_MISMATCH");
});

Deno.test("verifyCosignSignature() rule 2: another docker-reference is POLICY_REFERENCE_MISMATCH when enforced", async () => {
  const entry = await crafted({ reference: "ghcr.io/h4xx0r/sandbox" });
  await rejects(
    verifyCosignSignature(entry, await trust(), await expected("ghcr.io/example/sandbox:latest")),
    "POLICY_REFERENCE_MISMATCH",
  );
  // Without an expected reference it is reported, not enforced.
  const v = await verifyCosignSignature(entry, await trust(), await expected());
  assert.equal(v.dockerReference, "ghcr.io/h4xx0r/sandbox");
  assert.equal(v.referenceEnforced, false);
});

Deno.test("verifyCosignSignature() rule 2: duplicate keys in the signed payload are PAYLOAD_INVALID", async () => {
  const w = await world();
  const payload = new TextEncoder().encode(
    `{"critical":{"identity":{"docker-reference":"${w.reference}"},"image":{"docker-manifest-digest":` +
      `"sha256:${
        "cd".repeat(32)
      }","docker-manifest-digest":"${w.digest}"},"type":"cosign container image signature"},"optional":null}`,
  );
  await rejects(
    verifyCosignSignature(await crafted({ payload }), await trust(), await expected()),
    "PAYLOAD_INVALID",
    /duplicate/,
  );
});

Deno.test("verifyCosignSignature() rule 2: an unknown key in critical is PAYLOAD_INVALID", async () => {
  const w = await world();
  const payload = new TextEncoder().encode(
    `{"critical":{"identity":{"docker-reference":"${w.reference}"},"image":{"docker-manifest-digest":"${w.digest}"},` +
      `"type":"cosign container image signature","extra":1},"optional":null}`,
  );
  await rejects(
    verifyCosignSignature(await crafted({ payload }), await trust(), await expected()),
    "PAYLOAD_INVALID",
    /unknown key/,
  );
});

Deno.test("verifyCosignSignature() rule 2: wrong types and non-integer timestamps are PAYLOAD_INVALID", async () => {
  const w = await world();
  for (
    const text of [
      `{"critical":{"identity":{"docker-reference":5},"image":{"docker-manifest-digest":"${w.digest}"},"type":"cosign container image signature"}}`,
      `{"critical":{"identity":{"docker-reference":"${w.reference}"},"image":{"docker-manifest-digest":"${w.digest}"},"type":"cosign container image signature"},"optional":{"timestamp":1.5}}`,
      `{"critical":{"identity":{"docker-reference":"${w.reference}"},"image":{"docker-manifest-digest":"${w.digest}"},"type":"cosign container image signature"},"optional":[]}`,
      `{"critical":{"identity":{"docker-reference":"${w.reference}"},"image":{"docker-manifest-digest":"${w.digest}"},"type":"cosign container image signature"}} x`,
      `not json`,
    ]
  ) {
    const payload = new TextEncoder().encode(text);
    await rejects(
      verifyCosignSignature(await crafted({ payload }), await trust(), await expected()),
      "PAYLOAD_INVALID",
    );
  }
});

Deno.test("verifyCosignSignature() rule 2: optional null, absent or with annotations is tolerated", async () => {
  const w = await world();
  const c =
    `"critical":{"identity":{"docker-reference":"${w.reference}"},"image":{"docker-manifest-digest":"${w.digest}"},"type":"cosign container image signature"}`;
  for (
    const text of [
      `{${c},"optional":null}`,
      `{${c}}`,
      `{${c},"optional":{"creator":"x","timestamp":5,"sig":"y"}}`,
    ]
  ) {
    const payload = new TextEncoder().encode(text);
    await verifyCosignSignature(await crafted({ payload }), await trust(), await expected());
  }
});

Deno.test("verifyCosignSignature() rule 3: no transparency-log proof is TLOG_MISSING", async () => {
  await rejects(
    verifyCosignSignature(await crafted({ noBundle: true }), await trust(), await expected()),
    "TLOG_MISSING",
  );
});

Deno.test("verifyCosignSignature() rule 3: a SET by another key is TLOG_SET_INVALID", async () => {
  const w = await world();
  const entry = await crafted({ setSigner: createTestKey(), logId: w.rekor.spkiSha256 });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "TLOG_SET_INVALID", /rule 3/);
});

Deno.test("verifyCosignSignature() rule 3: the log ID of an untrusted log is TLOG_UNKNOWN_LOG", async () => {
  const entry = await crafted({ setSigner: createTestKey() });
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "TLOG_UNKNOWN_LOG", /rule 3/);
});

Deno.test("verifyCosignSignature() rule 3: a log index changed after the SET is TLOG_SET_INVALID", async () => {
  const raw = JSON.parse((await crafted()).raw);
  raw.Bundle.Payload.logIndex = 999999;
  const [entry] = parseSignatureList(new TextEncoder().encode(JSON.stringify([raw])));
  assert.ok(entry !== undefined);
  await rejects(verifyCosignSignature(entry, await trust(), await expected()), "TLOG_SET_INVALID");
});

Deno.test("verifyCosignSignature() rule 3: integrated time outside the log key's validity is TLOG_SET_INVALID", async () => {
  const w = await world();
  const key = (await trust()).rekorKeys.get(w.rekor.spkiSha256);
  assert.ok(key !== undefined);
  const { RekorKeyring } = await import("../../../src/sigstore/crypto/rekor_keys.ts");
  const bounded = {
    publicKey: (await trust()).publicKey,
    rekorKeys: new RekorKeyring([{ ...key, validFrom: 1800000000 }]),
  };
  await rejects(
    verifyCosignSignature(await crafted(), bounded, await expected()),
    "TLOG_SET_INVALID",
    /validity/,
  );
});

Deno.test("verifyCosignSignature() rule 4: a body that is not hashedrekord 0.0.1 is TLOG_BODY_MISMATCH", async () => {
  for (const change of [{ kind: "intoto" }, { apiVersion: "6.6.6" }]) {
    const entry = await crafted({ mutateBody: (b) => ({ ...b, ...change }) });
    await rejects(
      verifyCosignSignature(entry, await trust(), await expected()),
      "TLOG_BODY_MISMATCH",
      /rule 4/,
    );
  }
});

Deno.test("verifyCosignSignature() rule 4: a body hash of another payload is TLOG_BODY_MISMATCH", async () => {
  const entry = await crafted({
    mutateBody: (b) => ({
      ...b,
      spec: { ...b.spec, data: { hash: { algorithm: "sha256", value: "00".repeat(32) } } },
    }),
  });
  await rejects(
    verifyCosignSignature(entry, await trust(), await expected()),
    "TLOG_BODY_MISMATCH",
    /payload/,
  );
});

Deno.test("verifyCosignSignature() rule 4: a body hash algorithm other than sha256 is TLOG_BODY_MISMATCH", async () => {
  const entry = await crafted({
    mutateBody: (b) => ({
      ...b,
      spec: { ...b.spec, data: { hash: { ...b.spec.data.hash, algorithm: "sha512" } } },
    }),
  });
  await rejects(
    verifyCosignSignature(entry, await trust(), await expected()),
    "TLOG_BODY_MISMATCH",
    /sha256/,
  );
});

Deno.test("verifyCosignSignature() rule 4: a body that is not base64 or not strict JSON is TLOG_BODY_MISMATCH", async () => {
  for (const bodyText of ["not base64!", btoa('{"apiVersion":"0.0.1","apiVersion":"0.0.1"}')]) {
    await rejects(
      verifyCosignSignature(await crafted({ bodyText }), await trust(), await expected()),
      "TLOG_BODY_MISMATCH",
    );
  }
});

Deno.test("verifyCosignSignature() rule 4: the same key in a differently formatted PEM is accepted (keys compared parsed)", async () => {
  const w = await world();
  const pem = w.publisher.publicPem.replace(/\n/g, "\r\n");
  const entry = await crafted({
    mutateBody: (b) => ({
      ...b,
      spec: { ...b.spec, signature: { ...b.spec.signature, publicKey: { content: btoa(pem) } } },
    }),
  });
  await verifyCosignSignature(entry, await trust(), await expected());
});

// ---------------------------------------------------------------- advisories

Deno.test("verifyCosignSignature() CVE-2022-23649: a valid SET over an entry for another signature and key is refused", async () => {
  const w = await world();
  const attacker = createTestKey();
  // The attacker logs their own signature (a real, SET-valid Rekor entry), then ships it with our
  // signature: the SET verifies, but the entry does not describe this signature or key.
  const theirs = JSON.parse((await crafted({ signer: attacker })).raw);
  const ours = JSON.parse((await crafted()).raw);
  ours.Bundle = theirs.Bundle;
  const [entry] = parseSignatureList(new TextEncoder().encode(JSON.stringify([ours])));
  assert.ok(entry !== undefined);
  await rejects(
    verifyCosignSignature(entry, w.trust, await expected()),
    "TLOG_BODY_MISMATCH",
    /another signature/,
  );
  // And the entry's key alone (signature content equal, key different) is caught too.
  const keyOnly = await crafted({
    mutateBody: (b) => ({
      ...b,
      spec: {
        ...b.spec,
        signature: { ...b.spec.signature, publicKey: { content: btoa(attacker.publicPem) } },
      },
    }),
  });
  await rejects(
    verifyCosignSignature(keyOnly, w.trust, await expected()),
    "TLOG_BODY_MISMATCH",
    /another key/,
  );
});

Deno.test("verifyCosignSignature() GHSA-whqx-f9j3-ch6m: a tlog body that does not match the signature or payload is refused", async () => {
  const w = await world();
  // Body logged for a different payload (a hash mismatch) with our signature: SET valid.
  const otherPayload = payloadFor(`sha256:${"ef".repeat(32)}`, w.reference);
  const hashOfOther = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", otherPayload as Uint8Array<ArrayBuffer>)),
  )
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const wrongHash = await crafted({
    mutateBody: (b) => ({
      ...b,
      spec: { ...b.spec, data: { hash: { algorithm: "sha256", value: hashOfOther } } },
    }),
  });
  await rejects(verifyCosignSignature(wrongHash, w.trust, await expected()), "TLOG_BODY_MISMATCH");
  // Body naming another signature over the same payload.
  const otherSig = await crafted({
    mutateBody: (b) => ({
      ...b,
      spec: { ...b.spec, signature: { ...b.spec.signature, content: b64(new Uint8Array(70)) } },
    }),
  });
  await rejects(verifyCosignSignature(otherSig, w.trust, await expected()), "TLOG_BODY_MISMATCH");
});

Deno.test("verifyCosignSignature() CVE-2023-46737: oversized payloads are refused before any work", async () => {
  const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1).fill(0x20);
  await rejects(
    verifyCosignSignature(await crafted({ payload: big }), await trust(), await expected()),
    "PAYLOAD_INVALID",
    /rule 7/,
  );
});

Deno.test("verifyCosignSignature() rule 8: malformed entries never fail open", async () => {
  const bad: unknown[] = [
    5,
    null,
    [],
    {},
    { Base64Signature: 5, Payload: "" },
    { Base64Signature: "AAAA", Payload: "e30=", Bundle: "x" },
    { Base64Signature: "AAAA", Payload: "e30=", Bundle: { SignedEntryTimestamp: "AAAA", Payload: {} } },
    { Base64Signature: "AAAA", Payload: "e30=", Unknown: 1 },
  ];
  const entries = parseSignatureList(new TextEncoder().encode(JSON.stringify(bad)));
  for (const entry of entries) {
    await assert.rejects(verifyCosignSignature(entry, await trust(), await expected()), (err: unknown) => {
      assert.ok(err instanceof DangerzoneError);
      assert.notEqual(err.code, "INTERNAL");
      return true;
    });
  }
});

Deno.test("verifyCosignSignature() P-384 and Ed25519 publisher keys verify their own signatures", async () => {
  const { generateKeyPairSync, sign, createHash } = await import("node:crypto");
  const w = await world();
  for (
    const [type, opts, hash] of [["ec", { namedCurve: "secp384r1" }, "sha384"], [
      "ed25519",
      {},
      null,
    ]] as const
  ) {
    const pair = type === "ec"
      ? generateKeyPairSync("ec", opts as { namedCurve: string })
      : generateKeyPairSync("ed25519");
    const publicPem = String(pair.publicKey.export({ type: "spki", format: "pem" }));
    const spki = pair.publicKey.export({ type: "spki", format: "der" });
    const signer = {
      privateKey: pair.privateKey,
      publicPem,
      spkiSha256: createHash("sha256").update(spki).digest("hex"),
    };
    const payload = payloadFor(w.digest, w.reference);
    const der = new Uint8Array(sign(hash, payload, pair.privateKey));
    const t = await trustFor(signer, w.rekor);
    const entry = await crafted({ signer: w.publisher, payload, mutateSignature: () => der });
    const fixed = JSON.parse(entry.raw);
    // Re-log with the right key so only the algorithm under test matters.
    const relogged = await crafted({
      payload,
      mutateSignature: () => der,
      mutateBody: (b) => ({
        ...b,
        spec: { ...b.spec, signature: { ...b.spec.signature, publicKey: { content: btoa(publicPem) } } },
      }),
    });
    assert.equal(JSON.parse(relogged.raw).Base64Signature, fixed.Base64Signature);
    const v = await verifyCosignSignature(relogged, t, await expected());
    assert.equal(v.keySpkiSha256, signer.spkiSha256);
  }
});
