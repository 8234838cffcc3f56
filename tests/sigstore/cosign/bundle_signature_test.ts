/**
 * `verifyCosignBundleSignature()`: cosign v3 image signatures (DSSE statement in a Sigstore bundle) made
 * by `tests/_helpers/sigstore_signer.ts` against a test Rekor log and trusted root. The positive case
 * and, for each rule, a bundle that passes every other check and fails only that one.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseDigest } from "../../../src/oci/digest.ts";
import { DangerzoneError } from "../../../src/errors.ts";
import {
  isVerifiedBundleSignature,
  verifyCosignBundleSignature,
} from "../../../src/sigstore/cosign/bundle_signature.ts";
import { parsePublicKeyPem, type PublicKey } from "../../../src/sigstore/crypto/keys.ts";
import { verifiedLogPositions } from "../../../src/sigstore/cosign/policy.ts";
import { parseTrustedRoot, type SigstoreTrustedRoot } from "../../../src/sigstore/crypto/trusted_root.ts";
import { createTestKey, type TestKey } from "../../_helpers/cosign_signer.ts";
import {
  cosignSignStatement,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../../_helpers/sigstore_signer.ts";

const DIGEST = parseDigest(`sha256:${"ab".repeat(32)}`);
const OTHER = parseDigest(`sha256:${"cd".repeat(32)}`);
const enc = new TextEncoder();

interface World {
  publisher: TestKey;
  publicKey: PublicKey;
  log: TestRekorLog;
  root: SigstoreTrustedRoot;
}

async function world(): Promise<World> {
  const publisher = createTestKey();
  const log = new TestRekorLog({ key: createTestKey(), indexOffset: 7000 });
  return {
    publisher,
    publicKey: await parsePublicKeyPem(enc.encode(publisher.publicPem)),
    log,
    root: parseTrustedRoot(testTrustedRoot([log])),
  };
}

function verify(w: World, raw: string, digest = DIGEST, reference?: string) {
  return verifyCosignBundleSignature(
    { index: 0, raw },
    { publicKey: w.publicKey, trustedRoot: w.root },
    { digest, reference },
  );
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DangerzoneError, String(err));
    return err.code;
  }
  assert.fail("expected a refusal");
}

function withStatement(statement: unknown): Uint8Array {
  return enc.encode(JSON.stringify(statement));
}

Deno.test("verifyCosignBundleSignature() accepts a cosign v3 bundle and takes positions from signed data", async () => {
  const w = await world();
  const b = signImageBundle({
    digest: DIGEST,
    publisher: w.publisher,
    log: w.log,
    integratedTime: 1_800_000_000,
  });
  const v = verify(w, b.json);
  assert.ok(isVerifiedBundleSignature(v));
  assert.equal(v.digest, DIGEST);
  assert.equal(v.dockerReference, null); // cosign v3 signs no docker-reference
  assert.equal(v.raw, b.json);
  assert.deepEqual(v.logEntries, [{
    logId: w.log.logId,
    logIndex: 7000 + b.treeIndex, // the SET-covered global index, not the tree index
    integratedTime: 1_800_000_000,
    kind: "dsse/0.0.1",
  }]);
  assert.deepEqual(verifiedLogPositions([v]), [{
    logId: w.log.logId,
    logIndex: 7000 + b.treeIndex,
    integratedTime: 1_800_000_000,
  }]);
});

Deno.test("verifyCosignBundleSignature() uses the trusted root's declared log ID (Rekor v2 shard)", async () => {
  const w = await world();
  const shard = new TestRekorLog({
    key: createTestKey(),
    logId: "5e".repeat(32),
    name: "log2025-1.test.local",
  });
  const root = parseTrustedRoot(testTrustedRoot([w.log, shard]));
  const b = signImageBundle({ digest: DIGEST, publisher: w.publisher, log: shard });
  const v = verifyCosignBundleSignature({ index: 0, raw: b.json }, {
    publicKey: w.publicKey,
    trustedRoot: root,
  }, {
    digest: DIGEST,
  });
  assert.equal(v.logId, "5e".repeat(32));
  assert.equal(v.logIndex, b.treeIndex);
});

Deno.test("verifyCosignBundleSignature() refuses each broken rule with its code", async (t) => {
  const w = await world();
  const good = signImageBundle({ digest: DIGEST, publisher: w.publisher, log: w.log });

  await t.step("tampered payload: SIGNATURE_INVALID (or body mismatch)", () => {
    const env = Reflect.get(good.doc, "dsseEnvelope");
    assert.ok(typeof env === "object" && env !== null);
    const forged = { ...env, payload: btoa(new TextDecoder().decode(cosignSignStatement(OTHER))) };
    const raw = JSON.stringify({ ...good.doc, dsseEnvelope: forged });
    assert.match(codeOf(() => verify(w, raw)), /^(SIGNATURE_INVALID|TLOG_BODY_MISMATCH)$/);
  });
  await t.step("a bundle for another digest: POLICY_DIGEST_MISMATCH", () => {
    const b = signImageBundle({ digest: OTHER, publisher: w.publisher, log: w.log });
    assert.equal(codeOf(() => verify(w, b.json)), "POLICY_DIGEST_MISMATCH");
  });
  await t.step("signed by another key: SIGNATURE_INVALID", () => {
    const b = signImageBundle({ digest: DIGEST, publisher: createTestKey(), log: w.log });
    assert.equal(codeOf(() => verify(w, b.json)), "SIGNATURE_INVALID");
  });
  await t.step("a bad inclusion proof: TLOG_INCLUSION_INVALID", () => {
    const b = signImageBundle({ digest: DIGEST, publisher: w.publisher, log: w.log, badProof: true });
    assert.equal(codeOf(() => verify(w, b.json)), "TLOG_INCLUSION_INVALID");
  });
  await t.step("a checkpoint signed by another key: TLOG_INCLUSION_INVALID", () => {
    const b = signImageBundle({
      digest: DIGEST,
      publisher: w.publisher,
      log: w.log,
      checkpointSigner: createTestKey().privateKey,
    });
    assert.equal(codeOf(() => verify(w, b.json)), "TLOG_INCLUSION_INVALID");
  });
  await t.step("a log the trusted root does not list: refused", () => {
    const stranger = new TestRekorLog({ key: createTestKey() });
    const b = signImageBundle({ digest: DIGEST, publisher: w.publisher, log: stranger });
    assert.match(codeOf(() => verify(w, b.json)), /^TLOG_/);
  });
  await t.step("no SET and no timestamp authority: refused (no signed time)", () => {
    const b = signImageBundle({ digest: DIGEST, publisher: w.publisher, log: w.log, noSet: true });
    assert.match(
      codeOf(() => verify(w, b.json)),
      /^(SIGNATURE_INVALID|TLOG_MISSING|TLOG_INCLUSION_INVALID)$/,
    );
  });
  const statement = (over: Record<string, unknown>) => ({
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ digest: { sha256: DIGEST.slice(7) } }],
    predicateType: "https://sigstore.dev/cosign/sign/v1",
    predicate: {},
    ...over,
  });
  await t.step("another predicate type: PAYLOAD_INVALID", () => {
    const b = signImageBundle({
      digest: DIGEST,
      publisher: w.publisher,
      log: w.log,
      statement: withStatement(statement({ predicateType: "https://slsa.dev/provenance/v1" })),
    });
    assert.equal(codeOf(() => verify(w, b.json)), "PAYLOAD_INVALID");
  });
  await t.step("two subjects: PAYLOAD_INVALID", () => {
    const subject = [{ digest: { sha256: DIGEST.slice(7) } }, { digest: { sha256: OTHER.slice(7) } }];
    const b = signImageBundle({
      digest: DIGEST,
      publisher: w.publisher,
      log: w.log,
      statement: withStatement(statement({ subject })),
    });
    assert.equal(codeOf(() => verify(w, b.json)), "PAYLOAD_INVALID");
  });
  await t.step("an uppercase digest is not the digest: POLICY_DIGEST_MISMATCH", () => {
    const subject = [{ digest: { sha256: DIGEST.slice(7).toUpperCase() } }];
    const b = signImageBundle({
      digest: DIGEST,
      publisher: w.publisher,
      log: w.log,
      statement: withStatement(statement({ subject })),
    });
    assert.equal(codeOf(() => verify(w, b.json)), "POLICY_DIGEST_MISMATCH");
  });
  await t.step("a subject name of another repository: POLICY_REFERENCE_MISMATCH", () => {
    const subject = [{ name: "ghcr.io/evil/app", digest: { sha256: DIGEST.slice(7) } }];
    const b = signImageBundle({
      digest: DIGEST,
      publisher: w.publisher,
      log: w.log,
      statement: withStatement(statement({ subject })),
    });
    assert.equal(codeOf(() => verify(w, b.json, DIGEST, "ghcr.io/good/app")), "POLICY_REFERENCE_MISMATCH");
    assert.equal(verify(w, b.json, DIGEST, "ghcr.io/evil/app:1").dockerReference, "ghcr.io/evil/app");
  });
  await t.step("duplicate keys in the bundle: BUNDLE_INVALID", () => {
    const raw = good.json.replace('{"mediaType"', '{"mediaType":"x","mediaType"');
    assert.equal(codeOf(() => verify(w, raw)), "BUNDLE_INVALID");
  });
  await t.step("not JSON: BUNDLE_INVALID", () => {
    assert.equal(codeOf(() => verify(w, "{")), "BUNDLE_INVALID");
  });
});
