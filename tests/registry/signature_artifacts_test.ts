/**
 * The one listing of signature artifacts, against the real registry (distribution 2.8, so referrers
 * come through the referrers tag schema): verification (`discoverSignatures`), attestations
 * (`discoverAttestations`) and the mirror and archives (`listSignatureArtifacts`) see the same
 * artifacts; the subject rule, the bound and an unusable legacy tag are judged once, here.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isDangerzoneError } from "../../src/errors.ts";
import { type Digest, parseDigest } from "../../src/oci/digest.ts";
import { parseReference, type Reference } from "../../src/oci/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { addToReferrersTag } from "../../src/registry/referrers_tag.ts";
import {
  listArtifactsOf,
  listSignatureArtifacts,
  MAX_ARTIFACTS_PER_DIGEST,
} from "../../src/registry/signature_artifacts.ts";
import { discoverSignatures } from "../../src/sigstore/cosign/discovery.ts";
import { discoverAttestations } from "../../src/sigstore/provenance/attestation_discovery.ts";
import { pushBundleReferrers, type ReferrerSubject } from "../_helpers/sigstore_signer.ts";
import { type SignedRegistry, startSignedRegistry } from "../update/_fixture.ts";

const enc = new TextEncoder();
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY = enc.encode("{}");
const BUNDLE_JSON = `{"mediaType":"${BUNDLE_TYPE}"}`;

function digestOf(bytes: Uint8Array): Digest {
  return parseDigest(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
}

/** A bundle-typed referrer manifest about `subject` (its one layer is the empty blob); pushed, listed nowhere. */
async function pushReferrer(client: RegistryClient, ref: Reference, subject: ReferrerSubject, note: string) {
  const empty = {
    mediaType: "application/vnd.oci.empty.v1+json",
    digest: digestOf(EMPTY),
    size: EMPTY.length,
  };
  await client.putBlob(ref, empty, EMPTY);
  const raw = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_TYPE,
    config: empty,
    layers: [{ ...empty, mediaType: BUNDLE_TYPE }],
    subject,
    annotations: { note },
  }));
  return { ...await client.putManifest(ref, raw), artifactType: BUNDLE_TYPE };
}

async function signedImage(sr: SignedRegistry, repository: string) {
  const img = await sr.pushBusybox(repository, "v1", repository);
  await sr.sign(img.digest, { repository, logIndex: 1 });
  const subject: ReferrerSubject = { mediaType: img.mediaType, digest: img.digest, size: img.size };
  await pushBundleReferrers(sr.clientOptions, `${sr.reg.host}/${repository}`, subject, [BUNDLE_JSON]);
  return { img, subject, ref: parseReference(`${sr.reg.host}/${repository}:v1`) };
}

Deno.test("verification, attestations and the mirror see one listing: a .sig, a bundle referrer, a stranger's referrer", async () => {
  await using sr = await startSignedRegistry("plain");
  const { img, ref } = await signedImage(sr, "sandbox/one");
  using client = new RegistryClient(sr.clientOptions);
  // A referrer listed in the image's referrers index whose own manifest is about another image.
  const other = await sr.pushBusybox("sandbox/one", "other", "another image");
  const stranger = await pushReferrer(client, ref, {
    mediaType: other.mediaType,
    digest: other.digest,
    size: other.size,
  }, "stranger");
  assert.equal(await addToReferrersTag(client, ref, img.digest, [stranger]), "merged");

  const listing = await listArtifactsOf(client, ref, img.digest);
  assert.equal(listing.listedReferrers, 2);
  assert.deepEqual(listing.ignored.map((i) => i.descriptor.digest), [stranger.digest]);
  assert.match(listing.ignored[0]?.reason ?? "", /subject/);
  const mirrored = await listSignatureArtifacts(client, ref, [img.digest]);
  assert.deepEqual(mirrored.map((a) => a.kind), ["legacy-signature", "referrer"]);
  assert.deepEqual(
    mirrored.map((a) => a.descriptor.digest),
    listing.artifacts.map((a) => a.descriptor.digest),
  );
  assert.ok(!mirrored.some((a) => a.descriptor.digest === stranger.digest));
  const [legacy, bundleReferrer] = mirrored;
  assert.ok(legacy !== undefined && bundleReferrer !== undefined);

  // Verification reads exactly these: the .sig's one payload and the one bundle referrer.
  const found = await discoverSignatures(client, ref, img.digest);
  assert.equal(found.referrerCount, listing.listedReferrers);
  assert.deepEqual(found.cosign.map((c) => c.source), ["legacy-tag"]);
  assert.equal(found.cosign.length, legacy.manifest.layers.length);
  assert.deepEqual(found.bundles.map((b) => b.manifestDigest), [bundleReferrer.descriptor.digest]);
  assert.deepEqual(found.bundles.map((b) => new TextDecoder().decode(b.untrustedBytes)), [BUNDLE_JSON]);

  // Attestations follow the same subject rule: the stranger's bundle is not this image's.
  const atts = await discoverAttestations({ kind: "registry", client, ref });
  assert.deepEqual(atts.attestations.map((a) => a.source.split(" ")[0]), [
    `${ref.name()}@${bundleReferrer.descriptor.digest}`,
  ]);
});

Deno.test(`listArtifactsOf() is bounded: at most ${MAX_ARTIFACTS_PER_DIGEST} artifacts per digest, legacy tags included`, async () => {
  await using sr = await startSignedRegistry("plain");
  const img = await sr.pushBusybox("sandbox/many", "v1", "many referrers");
  const ref = parseReference(`${sr.reg.host}/sandbox/many:v1`);
  const subject = { mediaType: img.mediaType, digest: img.digest, size: img.size };
  using client = new RegistryClient(sr.clientOptions);
  const referrers = [];
  for (let i = 0; i < MAX_ARTIFACTS_PER_DIGEST; i++) {
    referrers.push(await pushReferrer(client, ref, subject, `r${i}`));
  }
  await addToReferrersTag(client, ref, img.digest, referrers);

  // Exactly the bound: listed (each manifest fetched, each names the subject).
  const atBound = await listArtifactsOf(client, ref, img.digest, { sources: ["referrers"] });
  assert.equal(atBound.artifacts.length, MAX_ARTIFACTS_PER_DIGEST);
  // One `.sig` more: refused for every consumer, before any referrer manifest is read.
  await sr.sign(img.digest, { repository: "sandbox/many", logIndex: 1 });
  const overBound = (e: unknown) =>
    isDangerzoneError(e, "SIGNATURE_INVALID") && /at most 256 are looked at/.test(e.message);
  await assert.rejects(listArtifactsOf(client, ref, img.digest), overBound);
  await assert.rejects(listSignatureArtifacts(client, ref, [img.digest]), overBound);
  await assert.rejects(discoverSignatures(client, ref, img.digest), overBound);
});

Deno.test("a legacy tag holding an index is that artifact's failure: verification goes on, the mirror stops", async () => {
  await using sr = await startSignedRegistry("plain");
  const { img, ref } = await signedImage(sr, "sandbox/badsig");
  using client = new RegistryClient(sr.clientOptions);
  const index = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: img.mediaType, digest: img.digest, size: img.size }],
  }));
  const sigTag = `sha256-${img.digest.slice("sha256:".length)}.sig`;
  await client.putManifest(ref, index, { mediaType: OCI_INDEX, tag: sigTag });

  const listing = await listArtifactsOf(client, ref, img.digest);
  assert.deepEqual(listing.unreadable.map((u) => [u.kind, u.tag, u.error.code]), [
    ["legacy-signature", sigTag, "MANIFEST_INVALID"],
  ]);
  assert.deepEqual(listing.artifacts.map((a) => a.kind), ["referrer"]);

  const found = await discoverSignatures(client, ref, img.digest);
  assert.equal(found.legacyTagFound, true);
  assert.deepEqual(found.rejected.map((r) => [r.index, r.source, r.error.code]), [
    [0, "legacy-tag", "SIGNATURE_INVALID"],
  ]);
  assert.match(found.rejected[0]?.error.message ?? "", /is an index, not a manifest/);
  assert.equal(found.bundles.length, 1);

  // A byte-for-byte copy cannot carry it: the mirror and archives stop with its error.
  await assert.rejects(
    listSignatureArtifacts(client, ref, [img.digest]),
    (e) => isDangerzoneError(e, "MANIFEST_INVALID") && e.message.includes(sigTag),
  );
});
