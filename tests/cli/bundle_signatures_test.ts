/**
 * Images signed only with cosign v3 Sigstore bundles, end to end through the CLI against the real
 * registry (distribution 2.8: the bundles are found through the referrers tag schema) and real podman:
 * `check`, `store-signatures` (bundles stored in `<digest hex>.bundles.json`, never in Dangerzone's
 * legacy file), `verify-local`, with `--trusted-root` listing the test logs. Every broken bundle (tampered,
 * another digest, another key, a bad inclusion proof, a checkpoint by another key) exits 10 with one
 * line; a lower index in the same log exits 11; a Rekor v2-style shard restarting at index 0 under its
 * own log ID is not a rollback.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { oneLine, pathExists as exists, runCli } from "../_helpers/cli.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import type { BuiltImage } from "../_helpers/images.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  type SignImageBundleOptions,
  TestRekorLog,
  testShardLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { startSignedRegistry } from "../update/_fixture.ts";

const REPO = "sandbox/v3";

function field(doc: unknown, ...path: (string | number)[]): unknown {
  let cur = doc;
  for (const p of path) cur = typeof cur === "object" && cur !== null ? Reflect.get(cur, p) : undefined;
  return cur;
}

Deno.test("cosign v3 bundle-only images: check, store-signatures, verify-local, refusals and rollback", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("bundle-data");
  const v1 = new TestRekorLog({ key: createTestKey(), indexOffset: 90_000, prefill: 5 });
  // The same v1 log seen earlier in its life: lower global indexes.
  const v1Earlier = new TestRekorLog({ key: v1.key, indexOffset: 10, prefill: 2 });
  const shard = testShardLog(); // a Rekor v2-style shard: its own log ID, indexes from 0
  const rootFile = join(sr.dir, "trusted_root.json");
  await Deno.writeTextFile(rootFile, testTrustedRoot([v1, shard]));
  const dataDir = join(data.path, "data");
  const env = { ...pm.env, ...sr.env };
  const args = (image: string) => [
    "--image",
    image,
    "--pubkey",
    sr.pubkeyFile,
    "--trusted-root",
    rootFile,
    "--data-dir",
    dataDir,
    "--runtime",
    "podman",
  ];
  const keyDir = join(
    dataDir,
    "signatures",
    createHash("sha256").update(sr.publisher.publicPem).digest("hex"),
  );
  const publish = async (img: BuiltImage, bundles: Omit<SignImageBundleOptions, "publisher">[]) => {
    const signed = bundles.map((b) => signImageBundle({ publisher: sr.publisher, ...b }));
    await pushBundleReferrers(
      sr.clientOptions,
      `${sr.reg.host}/${REPO}`,
      { mediaType: img.mediaType, digest: img.digest, size: img.size },
      signed.map((s) => s.json),
    );
    return signed;
  };

  const img1 = await sr.pushBusybox(REPO, "latest", "v3 bundle one");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const [first] = await publish(img1, [{ digest: img1.digest, log: v1, integratedTime: 1_800_000_000 }]);
  assert.ok(first !== undefined);

  await t.step("check: the bundle verifies; nothing installed, so an update (exit 3)", async () => {
    const r = await runCli(["check", ...args(image), "--json"], { env });
    assert.equal(r.code, 3, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(field(doc, "status"), "update-available");
    assert.equal(field(doc, "remote", "digest"), img1.digest);
    assert.equal(field(doc, "remote", "verified"), 1);
    const sigs = field(doc, "remote", "signatures");
    assert.equal(field(sigs, 0, "kind"), "bundle");
    assert.equal(field(sigs, 0, "source"), "referrer");
    assert.equal(field(sigs, 0, "verdict"), "verified");
    assert.equal(field(sigs, 0, "logId"), v1.logId);
    assert.equal(field(sigs, 0, "logIndex"), first.logIndex);
    assert.equal(field(sigs, 0, "dockerReference"), null);
  });

  await t.step("store-signatures: the bundle goes to <digest>.bundles.json, state per log ID", async () => {
    const r = await runCli(["store-signatures", ...args(image)], { env });
    assert.equal(r.code, 0, r.stderr);
    const hex = img1.digest.slice(7);
    assert.equal(await exists(join(keyDir, `${hex}.json`)), false, "Dangerzone's legacy file is not faked");
    const stored = JSON.parse(await Deno.readTextFile(join(keyDir, `${hex}.bundles.json`)));
    assert.deepEqual(stored, [JSON.parse(first.json)]);
    const state = JSON.parse(await Deno.readTextFile(join(dataDir, "signatures", "log_state.json")));
    assert.equal(field(state, "logs", v1.logId, "logIndex"), first.logIndex);
    assert.equal(field(state, "logs", v1.logId, "digest"), img1.digest);
    // The test log is not the production Rekor log: Dangerzone's last_log_index is left alone.
    assert.equal(await exists(join(dataDir, "signatures", "last_log_index")), false);
  });

  await pm.podman(["pull", "-q", "--tls-verify=false", image]);

  await t.step("verify-local: the runtime's image verifies from the stored bundles (exit 0)", async () => {
    const r = await runCli(["verify-local", ...args(image), "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(field(doc, "digest"), img1.digest);
    assert.equal(field(doc, "verified"), 1);
    assert.equal(field(doc, "signatures", 0, "logIndex"), first.logIndex);
  });

  await t.step("check again: same verified index and the runtime holds it: up to date (exit 0)", async () => {
    const r = await runCli(["check", ...args(image)], { env });
    assert.equal(r.code, 0, r.stderr);
  });

  await t.step("verify-local with a tampered stored bundle: exit 10", async () => {
    const path = join(keyDir, `${img1.digest.slice(7)}.bundles.json`);
    const good = await Deno.readTextFile(path);
    const doc = JSON.parse(good);
    const tampered = JSON.stringify(doc).replace(
      /"logIndex":"(\d+)"/,
      (_m, n) => `"logIndex":"${Number(n) + 1}"`,
    );
    await Deno.writeTextFile(path, tampered);
    try {
      const r = await runCli(["verify-local", ...args(image)], { env });
      assert.equal(r.code, 10, r.stderr);
      assert.match(oneLine(r.stderr), /^error: stored signatures of sha256:.* do not verify/);
    } finally {
      await Deno.writeTextFile(path, good);
    }
  });

  // Broken bundles for a second image, each alone in its referrers index: check exits 10, one line.
  const img2 = await sr.pushBusybox(REPO, "broken", "v3 bundle broken");
  const broken = `${sr.reg.host}/${REPO}:broken`;
  const base = { digest: img2.digest, log: v1, integratedTime: 1_800_000_100 };
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ["tampered bundle", async () => {
      const [b] = await publish(img2, [base]);
      const doc = JSON.parse(b?.json ?? "{}");
      doc.dsseEnvelope.payload = btoa(JSON.stringify({ _type: "https://in-toto.io/Statement/v1" }));
      await pushBundleReferrers(
        sr.clientOptions,
        `${sr.reg.host}/${REPO}`,
        { mediaType: img2.mediaType, digest: img2.digest, size: img2.size },
        [JSON.stringify(doc)],
      );
    }, /^(SIGNATURE_INVALID|TLOG_BODY_MISMATCH)$/],
    [
      "bundle for another digest",
      () => publish(img2, [{ ...base, digest: img1.digest }]),
      /^POLICY_DIGEST_MISMATCH$/,
    ],
    ["wrong key", async () => {
      const other = createTestKey();
      const b = signImageBundle({ ...base, publisher: other });
      await pushBundleReferrers(
        sr.clientOptions,
        `${sr.reg.host}/${REPO}`,
        { mediaType: img2.mediaType, digest: img2.digest, size: img2.size },
        [b.json],
      );
    }, /^SIGNATURE_INVALID$/],
    ["bad inclusion proof", () => publish(img2, [{ ...base, badProof: true }]), /^TLOG_INCLUSION_INVALID$/],
    [
      "checkpoint by another key",
      () => publish(img2, [{ ...base, checkpointSigner: createTestKey().privateKey }]),
      /^TLOG_INCLUSION_INVALID$/,
    ],
  ];
  for (const [name, setup, code] of cases) {
    await t.step(`check refuses a ${name}: exit 10 with one line`, async () => {
      await setup();
      const r = await runCli(["check", ...args(broken), "--json"], { env });
      assert.equal(r.code, 10, r.stderr);
      assert.match(String(field(JSON.parse(r.stdout), "error", "code")), code);
      const h = await runCli(["check", ...args(broken)], { env });
      assert.equal(h.code, 10);
      assert.match(oneLine(h.stderr), /^error: the signature: /);
    });
  }

  await t.step("a lower index in the same log (bundle entries): rollback refused (exit 11)", async () => {
    const img3 = await sr.pushBusybox(REPO, "older", "v3 bundle older");
    await publish(img3, [{ digest: img3.digest, log: v1Earlier, integratedTime: 1_700_000_000 }]);
    const older = `${sr.reg.host}/${REPO}:older`;
    const r = await runCli(["store-signatures", ...args(older)], { env });
    assert.equal(r.code, 11, r.stderr);
    assert.match(oneLine(r.stderr), /rollback refused: log index \d+ is lower than the installed 90\d+/);
    assert.equal(await exists(join(keyDir, `${img3.digest.slice(7)}.bundles.json`)), false);
  });

  await t.step("a Rekor v2-style shard restarting at 0 under its own log ID is not a rollback", async () => {
    const img4 = await sr.pushBusybox(REPO, "shard", "v3 bundle shard");
    const [s] = await publish(img4, [{ digest: img4.digest, log: shard, integratedTime: 1_900_000_000 }]);
    assert.ok(s !== undefined);
    assert.ok(s.logIndex < first.logIndex, "the shard's index is lower than the installed one");
    const shardImage = `${sr.reg.host}/${REPO}:shard`;
    const c = await runCli(["check", ...args(shardImage)], { env });
    assert.equal(c.code, 3, c.stderr);
    const r = await runCli(["store-signatures", ...args(shardImage)], { env });
    assert.equal(r.code, 0, r.stderr);
    const state = JSON.parse(await Deno.readTextFile(join(dataDir, "signatures", "log_state.json")));
    assert.equal(field(state, "logs", shard.logId, "logIndex"), s.logIndex);
    assert.equal(field(state, "logs", v1.logId, "logIndex"), first.logIndex);
  });

  await t.step("upgrade: a newer bundle-only image installs, and verify-local verifies it", async () => {
    const img5 = await sr.pushBusybox(REPO, "latest", "v3 bundle five");
    const [b] = await publish(img5, [{ digest: img5.digest, log: v1, integratedTime: 1_950_000_000 }]);
    assert.ok(b !== undefined && b.logIndex > first.logIndex);
    const u = await runCli(["upgrade", ...args(image), "--json"], { env });
    assert.equal(u.code, 0, u.stderr);
    assert.equal(field(JSON.parse(u.stdout), "digest"), img5.digest);
    assert.equal(await exists(join(keyDir, `${img5.digest.slice(7)}.bundles.json`)), true);
    const l = await runCli(["verify-local", ...args(image), "--json"], { env });
    assert.equal(l.code, 0, l.stderr);
    assert.equal(field(JSON.parse(l.stdout), "signatures", 0, "logIndex"), b.logIndex);
  });
});
