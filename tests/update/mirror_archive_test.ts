/**
 * `mirrorArchive()` (issue 10, item 2): an air-gapped archive made by `prepareArchive()` (legacy `.sig`
 * and a cosign v3 bundle) is verified completely, then pushed with all its signatures into a registry of
 * the air-gapped network, where a client verifies it with `--identity`; a tampered archive pushes nothing
 * and moves no tag (real registries).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { mirrorArchive } from "../../src/update/mirror.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { verifyRemoteImage } from "../../src/update/verify_remote.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { startSignedRegistry } from "./_fixture.ts";

Deno.test("mirrorArchive() verifies an archive, then pushes the image, its .sig and its bundle; clients verify it", async () => {
  await using sr = await startSignedRegistry("plain");
  await using airgap = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("mirror-archive");
  const img = await sr.pushBusybox("pub/dz", "latest", "air-gapped");
  await sr.sign(img.digest, { repository: "pub/dz", logIndex: 12 });
  const log = new TestRekorLog({ key: createTestKey(), indexOffset: 40 });
  const bundle = signImageBundle({ digest: img.digest, publisher: sr.publisher, log });
  await pushBundleReferrers(sr.clientOptions, `${sr.reg.host}/pub/dz`, {
    mediaType: img.mediaType,
    digest: img.digest,
    size: img.size,
  }, [bundle.json]);
  const trustedRoot = parseTrustedRoot(testTrustedRoot([log]));
  const archive = join(tmp.path, "dz.tar");
  {
    using ctx = await sr.context(`${sr.reg.host}/pub/dz:latest`, join(tmp.path, "prep"), { trustedRoot });
    await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: archive });
  }

  // on the air-gapped side: the signed repository is named by --image (no network to it)
  using ctx = await sr.context(`${sr.reg.host}/pub/dz:latest`, join(tmp.path, "mirror"), { trustedRoot });
  const to = parseReference(`${airgap.host}/dz/sandbox`);
  const r = await mirrorArchive(ctx, archive, { to });
  assert.equal(r.digest, img.digest);
  assert.equal(r.source, archive);
  assert.equal(r.remote, null);
  assert.equal(r.verifiedSignatures, 2);
  assert.equal(r.signatures.legacySignatures, 1);
  assert.equal(r.signatures.referrers, 1);
  assert.equal(r.destination, `${airgap.host}/dz/sandbox:latest`);

  using client = await sr.context(`${airgap.host}/dz/sandbox:latest`, join(tmp.path, "client"), {
    trustedRoot,
    identity: `${sr.reg.host}/pub/dz`,
  });
  const seen = await verifyRemoteImage(client);
  assert.equal(seen.digest, img.digest);
  assert.equal(seen.verified.length, 2);
  assert.equal(seen.verifiedBundles.length, 1);

  // a second run pushes nothing new
  const again = await mirrorArchive(ctx, archive, { to });
  assert.equal(again.copiedBytes, 0);
  assert.equal(again.stats.uploadedBlobs, 0);
});

Deno.test("mirrorArchive() of a tampered archive pushes nothing (ARCHIVE_INVALID) and moves no tag", async () => {
  await using sr = await startSignedRegistry("plain");
  await using airgap = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("mirror-archive-bad");
  const img = await sr.pushBusybox("pub/dz", "latest", "tamper me");
  await sr.sign(img.digest, { repository: "pub/dz", logIndex: 3 });
  const archive = join(tmp.path, "dz.tar");
  using ctx = await sr.context(`${sr.reg.host}/pub/dz:latest`, join(tmp.path, "data"));
  await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: archive });
  // flip one byte inside the largest layer (a blob only hashed while it streams)
  const bytes = await Deno.readFile(archive);
  const layer = img.layerDigests[0]?.slice(7) ?? "";
  const at = new TextDecoder("latin1").decode(bytes).indexOf(`blobs/sha256/${layer}`) + 512 + 100;
  assert.ok(at > 612);
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  await Deno.writeFile(archive, bytes);

  await assert.rejects(
    mirrorArchive(ctx, archive, { to: parseReference(`${airgap.host}/dz/sandbox`) }),
    (e) => isDangerzoneError(e, "ARCHIVE_INVALID"),
  );
  using client = new RegistryClient({});
  await assert.rejects(
    client.getManifest(parseReference(`${airgap.host}/dz/sandbox:latest`)),
    (e) => isDangerzoneError(e, "REGISTRY_NOT_FOUND"),
  );
  assert.equal(
    await client.hasBlob(parseReference(`${airgap.host}/dz/sandbox`), {
      mediaType: "application/octet-stream",
      digest: img.layerDigests[0] ?? img.digest,
      size: 0,
    }),
    false,
  );
});
