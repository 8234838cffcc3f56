/**
 * Archives carry every signature form (issue 10, item 3): `prepareArchive()` includes an image's cosign
 * v3 Sigstore bundles (its referrers, listed with `kind` referrer and their `artifactType`), so a
 * bundle-only image can be archived, and `loadArchive()` verifies and stores them (real registry, real
 * podman).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { loadArchive } from "../../src/update/load_archive.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { runCommand } from "../_helpers/process.ts";
import {
  BUNDLE_V03_MEDIA_TYPE,
  pushBundleReferrers,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { imageSnapshot, startArchiveWorld, treeSnapshot } from "./_archive_fixture.ts";

const AMD64 = parsePlatform("linux/amd64");

Deno.test("prepareArchive() archives a bundle-only image with its bundles; loadArchive() verifies and stores them", async () => {
  await using w = await startArchiveWorld();
  const img = await w.sr.pushBusybox("sandbox/bundled", "latest", "bundle only");
  const log = new TestRekorLog({ key: createTestKey(), indexOffset: 900 });
  const bundle = signImageBundle({ digest: img.digest, publisher: w.sr.publisher, log });
  await pushBundleReferrers(w.sr.clientOptions, `${w.sr.reg.host}/sandbox/bundled`, {
    mediaType: img.mediaType,
    digest: img.digest,
    size: img.size,
  }, [bundle.json]);
  const trustedRoot = parseTrustedRoot(testTrustedRoot([log]));
  const image = parseReference(`${w.sr.reg.host}/sandbox/bundled:latest`);
  const out = join(w.tmp.path, "bundled.tar");
  {
    using ctx = await w.context(await w.dataDir("prep"), { image, trustedRoot });
    const prepared = await prepareArchive(ctx, { platform: AMD64, output: out });
    assert.equal(prepared.signatures, 1);
    assert.deepEqual(prepared.positions.map((p) => [p.logId, p.logIndex]), [[log.logId, bundle.logIndex]]);
  }
  const dir = join(w.tmp.path, "unpacked");
  await Deno.mkdir(dir);
  await runCommand("tar", ["-xf", out, "-C", dir]);
  const dz = JSON.parse(await Deno.readTextFile(join(dir, "dangerzone.json")));
  assert.deepEqual(dz.manifests.map((m: { annotations: { kind: string } }) => m.annotations.kind), [
    "dev.cosignproject.cosign/image",
    "dev.dangerzone.image/referrer",
  ]);
  assert.equal(dz.manifests[1].artifactType, BUNDLE_V03_MEDIA_TYPE);
  // index.json is still the image alone (what Dangerzone's Python tool checks)
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  assert.deepEqual(index.manifests, dz.manifests.slice(0, 1));

  // without the bundle's log in the trust root the bundle is refused: the archive is not loaded
  const refusedDir = await w.dataDir("refused");
  {
    using ctx = await w.context(refusedDir, { image });
    const before = await imageSnapshot(w.pm);
    await assert.rejects(
      loadArchive(ctx, out),
      (e) => isDangerzoneError(e) && e.code !== "SIGNATURE_MISSING" && e.code !== "ARCHIVE_INVALID",
    );
    assert.deepEqual(await imageSnapshot(w.pm), before);
    assert.deepEqual(await treeSnapshot(join(refusedDir, "signatures")), []);
  }
  const dataDir = await w.dataDir("load");
  using ctx = await w.context(dataDir, { image, trustedRoot });
  const loaded = await loadArchive(ctx, out);
  assert.equal(loaded.digest, img.digest);
  assert.deepEqual(loaded.positions.map((p) => [p.logId, p.logIndex]), [[log.logId, bundle.logIndex]]);
  // the bundle is stored as it was signed, in the store's bundle file
  assert.ok(loaded.signaturesPath.endsWith(`${img.digest.slice(7)}.bundles.json`), loaded.signaturesPath);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(loaded.signaturesPath)), [JSON.parse(bundle.json)]);
});
