/**
 * `mirrorImage()` against real registries (CNCF distribution 2.8): an index with two platforms, a legacy
 * `.sig` signature on the index and a cosign v3 bundle referrer, mirrored into another repository of the
 * same registry (blobs mounted: the registry's own log shows it) and into a second registry behind
 * htpasswd auth; digests and bytes preserved, the referrers tag schema written, clients verify the
 * mirror with `--identity` naming the publisher's repository; a second run copies nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import { sha256Digest } from "../../src/oci/digest.ts";
import { parseManifest } from "../../src/oci/manifest.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { mirrorImage } from "../../src/update/mirror.ts";
import { verifyRemoteImage } from "../../src/update/verify_remote.ts";
import { buildMultiArchImage } from "../_helpers/images.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { startSignedRegistry } from "./_fixture.ts";
import { destinationCredentials } from "./_mirror_fixture.ts";

Deno.test("mirrorImage() copies an index, its platforms, .sig and bundle referrers; mounts on the same registry", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("mirror-lib");
  const idx = await buildMultiArchImage(join(sr.dir, "multi"));
  const digest = await sr.push(idx, "pub/dz", "latest");
  const t0 = Math.floor(Date.now() / 1000) - 1000;
  await sr.sign(digest, { repository: "pub/dz", logIndex: 40, integratedTime: t0 });
  const log = new TestRekorLog({ key: createTestKey(), indexOffset: 500 });
  const bundle = signImageBundle({ digest, publisher: sr.publisher, log, integratedTime: t0 + 5 });
  const subject = { mediaType: "application/vnd.oci.image.index.v1+json", digest, size: idx.size };
  await pushBundleReferrers(sr.clientOptions, `${sr.reg.host}/pub/dz`, subject, [bundle.json]);
  const trustedRoot = parseTrustedRoot(testTrustedRoot([log]));
  using ctx = await sr.context(`${sr.reg.host}/pub/dz:latest`, data.path, { trustedRoot });

  const to = parseReference(`${sr.reg.host}/mirror/dz`);
  const first = await mirrorImage(ctx, { to });
  assert.equal(first.digest, digest);
  assert.equal(first.destination, `${sr.reg.host}/mirror/dz:latest`);
  assert.equal(first.previousDigest, null);
  assert.deepEqual(first.platforms.map((p) => p.platform).sort(), ["linux/amd64", "linux/arm64"]);
  assert.equal(first.signatures.legacySignatures, 1);
  assert.equal(first.signatures.referrers, 1);
  assert.deepEqual(first.signatures.referrersListedVia, ["tag-schema"]);
  // same registry: every blob mounted, none uploaded (the registry's own log says so too)
  assert.equal(first.stats.uploadedBlobs, 0);
  assert.ok(first.stats.mountedBlobs >= 4, `mounted ${first.stats.mountedBlobs}`);
  const registryLog = await Deno.readTextFile(sr.reg.logFile);
  assert.match(registryLog, /POST \/v2\/mirror\/dz\/blobs\/uploads\/\?mount=sha256/);
  assert.doesNotMatch(registryLog, /PUT \/v2\/mirror\/dz\/blobs\/uploads\//);

  // byte for byte: the index, each platform manifest, the .sig manifest and the bundle referrer
  using client = new RegistryClient(sr.clientOptions);
  const src = parseReference(`${sr.reg.host}/pub/dz`);
  const dst = parseReference(`${sr.reg.host}/mirror/dz`);
  const hex = digest.slice(7);
  for (const ref of [`:latest`, `:sha256-${hex}.sig`, ...idx.platforms.map((p) => `@${p.digest}`)]) {
    const a = await client.getManifest(parseReference(`${src.name()}${ref}`));
    const b = await client.getManifest(parseReference(`${dst.name()}${ref}`));
    assert.deepEqual(b.raw, a.raw, ref);
  }
  const referrers = await client.referrers(dst, digest);
  assert.equal(referrers.length, 1);
  assert.equal(referrers[0]?.artifactType, "application/vnd.dev.sigstore.bundle.v0.3+json");

  // a client of the mirror verifies it as the publisher's image, both signature forms
  using client1 = await sr.context(`${dst.name()}:latest`, join(data.path, "client"), {
    trustedRoot,
    identity: src.name(),
  });
  const seen = await verifyRemoteImage(client1);
  assert.equal(seen.digest, digest);
  assert.equal(seen.verified.length, 2);
  assert.equal(seen.verifiedBundles.length, 1);

  // a second run copies nothing and adds no duplicate referrer
  const second = await mirrorImage(ctx, { to });
  assert.equal(second.copiedBytes, 0);
  assert.equal(second.stats.uploadedBlobs + second.stats.mountedBlobs, 0);
  assert.equal(second.previousDigest, digest);
  assert.equal((await client.referrers(dst, digest)).length, 1);

  // a mirror of the mirror: its source names the publisher's repository with --identity
  using fromMirror = await sr.context(`${dst.name()}:latest`, join(data.path, "second-mirror"), {
    trustedRoot,
    identity: src.name(),
  });
  const chained = await mirrorImage(fromMirror, { to: parseReference(`${sr.reg.host}/edge/dz`) });
  assert.equal(chained.digest, digest);
  assert.equal(chained.verifiedSignatures, 2);
  assert.equal(
    (await client.getManifest(parseReference(`${sr.reg.host}/edge/dz:sha256-${hex}.sig`))).raw.byteLength > 0,
    true,
  );

  // --arch: an architecture the index lacks is a usage problem before anything is copied
  await assert.rejects(
    mirrorImage(ctx, { to: parseReference(`${sr.reg.host}/mirror/arch`), architectures: ["s390x"] }),
    (e) => isDangerzoneError(e, "PLATFORM_NOT_FOUND"),
  );
  // one platform of an index (--arch arm64): distribution refuses an index whose children are missing, so the
  // tag names that platform's manifest itself (its bytes verified inside the verified index); a client of the
  // mirror verifies it through the platform's own signature, copied with it
  const armPlatform = idx.platforms.find((p) => p.platform === "linux/arm64");
  assert.ok(armPlatform !== undefined);
  await sr.sign(armPlatform.digest, { repository: "pub/dz", logIndex: 41, integratedTime: t0 + 1 });
  const arm = parseReference(`${sr.reg.host}/mirror/arm`);
  const one = await mirrorImage(ctx, { to: arm, architectures: ["arm64"] });
  assert.equal(one.digest, armPlatform.digest);
  assert.deepEqual(one.platforms.map((p) => p.platform), ["linux/arm64"]);
  assert.equal((await client.getManifest(arm)).descriptor.digest, armPlatform.digest);
  assert.deepEqual(
    (await client.getManifest(arm)).raw,
    (await client.getManifest(src.withDigest(armPlatform.digest))).raw,
  );
  using armClient = await sr.context(arm.format(), join(data.path, "arm-client"), {
    trustedRoot,
    identity: src.name(),
  });
  const armSeen = await verifyRemoteImage(armClient);
  assert.equal(armSeen.digest, armPlatform.digest);
  assert.equal(armSeen.verified.length, 1);
  // the same again: nothing copied, no rollback against itself
  assert.equal((await mirrorImage(ctx, { to: arm, architectures: ["arm64"] })).copiedBytes, 0);
});

Deno.test("mirrorImage() pushes into another registry with htpasswd auth; the source's tag is the default", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "htpasswd" });
  await using data = makeTempDir("mirror-htpasswd");
  const img = await sr.pushBusybox("pub/single", "v2", "to htpasswd");
  await sr.sign(img.digest, { repository: "pub/single", logIndex: 3 });
  const registry = (await destinationCredentials(data.path, dest)).client();
  using ctx = await sr.context(`${sr.reg.host}/pub/single:v2`, data.path, { registry });
  const result = await mirrorImage(ctx, { to: parseReference(`${dest.host}/dz/sandbox`) });
  registry.close();
  assert.equal(result.destination, `${dest.host}/dz/sandbox:v2`);
  assert.equal(result.stats.mountedBlobs, 0);
  assert.equal(result.stats.uploadedBlobs, img.layerDigests.length + 1 + 2); // + the .sig config and payload
  const res = await dest.fetch(`/v2/dz/sandbox/manifests/v2`, {
    headers: { ...await dest.authHeaders("dz/sandbox"), Accept: img.mediaType },
  });
  const raw = new Uint8Array(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.equal(parseManifest(raw).kind, "manifest");
  assert.equal(await sha256Digest(raw), img.digest);
});

Deno.test("mirrorImage() refuses the source repository as destination", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("mirror-self");
  using ctx = await sr.context(`${sr.reg.host}/pub/x:latest`, data.path);
  await assert.rejects(
    mirrorImage(ctx, { to: parseReference(`${sr.reg.host}/pub/x:other`) }),
    (e) => isDangerzoneError(e, "USAGE"),
  );
});

Deno.test("mirrorImage() mounts across repositories of a token-auth registry (one token for both scopes)", async () => {
  await using sr = await startSignedRegistry("token");
  await using data = makeTempDir("mirror-token-mount");
  const img = await sr.pushBusybox("pub/tok", "latest", "token mount");
  await sr.sign(img.digest, { repository: "pub/tok", logIndex: 2 });
  using ctx = await sr.context(`${sr.reg.host}/pub/tok:latest`, data.path);
  const r = await mirrorImage(ctx, { to: parseReference(`${sr.reg.host}/mirror/tok`) });
  assert.equal(r.stats.uploadedBlobs, 0);
  assert.equal(r.stats.mountedBlobs, img.layerDigests.length + 1 + 2); // + the .sig config and payload
  const scopes = sr.reg.tokenServer?.requests.flatMap((q) => q.scopes) ?? [];
  assert.ok(scopes.includes("repository:pub/tok:pull"), scopes.join(" "));
});
