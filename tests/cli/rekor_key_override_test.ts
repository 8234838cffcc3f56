/**
 * The Rekor key override (`SIGSTORE_REKOR_PUBLIC_KEY`, `--rekor-key`) applies to cosign v3 bundle-only
 * images, end to end through the CLI against the real registry and real podman: with the override and no
 * `--trusted-root`, `check` and `upgrade` verify the bundle's SET, checkpoint and inclusion proof against
 * the override key; without it the production root refuses the bundle (exit 10); with the override set to
 * another key, a bundle from the other log is refused (exit 10). A malformed `--trusted-root` is one
 * line, exit 10.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { field, oneLine, runCli } from "../_helpers/cli.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import type { BuiltImage } from "../_helpers/images.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { pushBundleReferrers, signImageBundle, TestRekorLog } from "../_helpers/sigstore_signer.ts";
import { startSignedRegistry } from "../update/_fixture.ts";

const REPO = "sandbox/override";

Deno.test("Rekor key override: check and upgrade of a bundle-only image use the override key", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("override-data");
  // A new Rekor shard only the override trusts, and a log standing in for the production one.
  const shard = new TestRekorLog({ key: createTestKey(), name: "log2026-1.rekor.test.local", prefill: 4 });
  const productionLike = new TestRekorLog({
    key: createTestKey(),
    name: "rekor.test.local",
    indexOffset: 1000,
  });
  const shardKeyFile = join(data.path, "shard.pub");
  const productionLikeKeyFile = join(data.path, "production-like.pub");
  await Deno.writeTextFile(shardKeyFile, shard.key.publicPem);
  await Deno.writeTextFile(productionLikeKeyFile, productionLike.key.publicPem);
  const dataDir = join(data.path, "data");
  const env = { ...pm.env, ...sr.env };
  const withOverride = { ...env, SIGSTORE_REKOR_PUBLIC_KEY: shardKeyFile };
  const args = (image: string) => [
    "--image",
    image,
    "--pubkey",
    sr.pubkeyFile,
    "--data-dir",
    dataDir,
    "--runtime",
    "podman",
  ];
  const publish = async (img: BuiltImage, log: TestRekorLog, integratedTime: number) => {
    const signed = signImageBundle({ digest: img.digest, publisher: sr.publisher, log, integratedTime });
    await pushBundleReferrers(
      sr.clientOptions,
      `${sr.reg.host}/${REPO}`,
      { mediaType: img.mediaType, digest: img.digest, size: img.size },
      [signed.json],
    );
    return signed;
  };

  const img = await sr.pushBusybox(REPO, "latest", "override one");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const signed = await publish(img, shard, 1_800_000_000);

  await t.step("check without the override: the production root refuses the bundle (exit 10)", async () => {
    const r = await runCli(["check", ...args(image)], { env });
    assert.equal(r.code, 10, r.stderr);
    assert.match(oneLine(r.stderr), /^error: the signature: .*inclusion promise/);
  });

  await t.step("check with SIGSTORE_REKOR_PUBLIC_KEY: verified against the shard key (exit 3)", async () => {
    const r = await runCli(["check", ...args(image), "--json"], { env: withOverride });
    assert.equal(r.code, 3, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(field(doc, "remote", "digest"), img.digest);
    assert.equal(field(doc, "remote", "verified"), 1);
    assert.equal(field(doc, "remote", "signatures", "0", "kind"), "bundle");
    assert.equal(field(doc, "remote", "signatures", "0", "logId"), shard.logId);
    assert.equal(field(doc, "remote", "signatures", "0", "logIndex"), signed.logIndex);
  });

  await t.step("upgrade without the override: refused, nothing installed (exit 10)", async () => {
    const r = await runCli(["upgrade", ...args(image)], { env });
    assert.equal(r.code, 10, r.stderr);
    assert.match(oneLine(r.stderr), /^error: the signature: /);
  });

  await t.step("upgrade with --rekor-key: installs the verified image (exit 0)", async () => {
    const r = await runCli(["upgrade", ...args(image), "--rekor-key", shardKeyFile, "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(field(JSON.parse(r.stdout), "digest"), img.digest);
    const c = await runCli(["check", ...args(image), "--rekor-key", shardKeyFile], { env });
    assert.equal(c.code, 0, c.stderr);
  });

  const other = await sr.pushBusybox(REPO, "other", "override other");
  const otherImage = `${sr.reg.host}/${REPO}:other`;
  await publish(other, productionLike, 1_900_000_000);

  await t.step("with the override set to the shard, a bundle from the other log is refused", async () => {
    const c = await runCli(["check", ...args(otherImage)], { env: withOverride });
    assert.equal(c.code, 10, c.stderr);
    assert.match(oneLine(c.stderr), /^error: the signature: /);
    const u = await runCli(["upgrade", ...args(otherImage), "--rekor-key", shardKeyFile], { env });
    assert.equal(u.code, 10, u.stderr);
    const ok = await runCli(["check", ...args(otherImage), "--rekor-key", productionLikeKeyFile], { env });
    assert.equal(ok.code, 3, ok.stderr);
  });

  await t.step("a malformed --trusted-root (a field given twice) is one line, exit 10", async () => {
    const root = JSON.parse(
      await Deno.readTextFile(
        new URL(
          "../testdata/vectors/sigstore-root-signing/targets/trusted_root.json",
          import.meta.url,
        ),
      ),
    );
    root.tlogs[0].base_url = root.tlogs[0].baseUrl;
    const rootFile = join(data.path, "bad_root.json");
    await Deno.writeTextFile(rootFile, JSON.stringify(root));
    const r = await runCli(["check", ...args(image), "--trusted-root", rootFile], { env: withOverride });
    assert.equal(r.code, 10, r.stderr);
    assert.match(oneLine(r.stderr), /trusted root .* is invalid: .*tlogs\[0\]\.baseUrl \(given twice/);
  });
});
