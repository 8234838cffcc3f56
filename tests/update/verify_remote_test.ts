/**
 * `verifyRemoteImage()` and the reference policy: normalisation on both sides, `--identity`, and that
 * only verified signatures count for the log positions and the signature age.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isDangerzoneError } from "../../src/errors.ts";
import { parseReference } from "../../src/oci/reference.ts";
import {
  expectedRepository,
  normaliseRepository,
  verifyRemoteImage,
} from "../../src/update/verify_remote.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { makeTempDir } from "../_helpers/process.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { startSignedRegistry } from "./_fixture.ts";

Deno.test("normaliseRepository() normalises Docker Hub aliases, case and tags; rejects junk", () => {
  assert.equal(normaliseRepository("index.docker.io/library/ubuntu"), "docker.io/library/ubuntu");
  assert.equal(normaliseRepository("ubuntu:22.04"), "docker.io/library/ubuntu");
  assert.equal(
    normaliseRepository("GHCR.io/freedomofpress/dangerzone/v1"),
    "ghcr.io/freedomofpress/dangerzone/v1",
  );
  assert.equal(normaliseRepository("ghcr.io/a/b@sha256:" + "0".repeat(64)), "ghcr.io/a/b");
  assert.equal(normaliseRepository("not a ref"), null);
});

Deno.test("expectedRepository() is the fetched repository unless --identity names another", () => {
  const fetched = parseReference("mirror.example:5000/dz/v1:latest");
  assert.equal(expectedRepository({ identity: undefined }, fetched), "mirror.example:5000/dz/v1");
  assert.equal(
    expectedRepository({ identity: "ghcr.io/freedomofpress/dangerzone/v1:latest" }, fetched),
    "ghcr.io/freedomofpress/dangerzone/v1",
  );
  assert.throws(
    () => expectedRepository({ identity: "bad ref" }, fetched),
    (e) => isDangerzoneError(e, "USAGE"),
  );
});

Deno.test("verifyRemoteImage() counts only verified signatures for positions and age", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("remote-lib");
  const img = await sr.pushBusybox("sandbox/app", "v1", "remote");
  const t0 = Math.floor(Date.now() / 1000) - 1000;
  await sr.sign(img.digest, { repository: "sandbox/app", logIndex: 7, integratedTime: t0, count: 2 });
  using ctx = await sr.context(`${sr.reg.host}/sandbox/app:v1`, data.path);
  const remote = await verifyRemoteImage(ctx);
  assert.equal(remote.digest, img.digest);
  assert.equal(remote.freshness, "not-installed");
  assert.deepEqual(remote.positions.map((p) => [p.logId, p.logIndex]), [[sr.rekor.spkiSha256, 8]]);
  assert.equal(remote.newestIntegratedTime, t0);
  assert.equal(remote.verifiedEntries.length, 2);
  assert.equal(remote.expectedReference, `${sr.reg.host}/sandbox/app`);

  // With another identity every signature fails the reference rule: refused, code names the rule.
  using mirrored = await sr.context(`${sr.reg.host}/sandbox/app:v1`, data.path, { identity: "ghcr.io/x/y" });
  await assert.rejects(verifyRemoteImage(mirrored), (e) => isDangerzoneError(e, "POLICY_REFERENCE_MISMATCH"));
});

Deno.test("verifyRemoteImage() counts legacy signatures and cosign v3 bundles alike, per log", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("remote-bundles");
  const img = await sr.pushBusybox("sandbox/both", "v1", "both formats");
  const t0 = Math.floor(Date.now() / 1000) - 1000;
  await sr.sign(img.digest, { repository: "sandbox/both", logIndex: 7, integratedTime: t0 });
  const log = new TestRekorLog({ key: createTestKey(), indexOffset: 300 });
  const good = signImageBundle({ digest: img.digest, publisher: sr.publisher, log, integratedTime: t0 + 10 });
  const stranger = signImageBundle({ digest: img.digest, publisher: createTestKey(), log });
  const subject = { mediaType: img.mediaType, digest: img.digest, size: img.size };
  await pushBundleReferrers(sr.clientOptions, `${sr.reg.host}/sandbox/both`, subject, [
    good.json,
    stranger.json,
  ]);
  const trustedRoot = parseTrustedRoot(testTrustedRoot([log]));
  using ctx = await sr.context(`${sr.reg.host}/sandbox/both:v1`, data.path, { trustedRoot });
  const remote = await verifyRemoteImage(ctx);
  assert.equal(remote.verified.length, 2);
  assert.equal(remote.verifiedBundles.length, 1);
  assert.equal(remote.verifiedEntries.length, 1);
  assert.deepEqual(
    remote.reports.map((r) => [r.kind, r.verdict, r.error?.code ?? null]),
    [["cosign", "verified", null], ["bundle", "verified", null], ["bundle", "rejected", "SIGNATURE_INVALID"]],
  );
  assert.deepEqual(
    remote.positions.map((p) => [p.logId, p.logIndex]).sort(),
    [[sr.rekor.spkiSha256, 7], [log.logId, good.logIndex]].sort(),
  );
  assert.equal(remote.newestIntegratedTime, t0 + 10);

  // Without the bundle's log in the trust root, only the legacy signature counts.
  using production = await sr.context(`${sr.reg.host}/sandbox/both:v1`, data.path);
  const legacyOnly = await verifyRemoteImage(production);
  assert.equal(legacyOnly.verified.length, 1);
  assert.deepEqual(legacyOnly.positions.map((p) => p.logIndex), [7]);
});
