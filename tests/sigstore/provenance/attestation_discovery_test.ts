/**
 * `discoverAttestations()`: finds legacy cosign attestations in `cosign save` layouts (also without
 * the image manifest, and through `dangerzone.json`), and Sigstore bundles through the OCI referrers
 * API and the referrers tag schema; refuses ambiguous layouts, wrong image bytes and oversize layers.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { isDangerzoneError } from "../../../src/errors.ts";
import { parseReference } from "../../../src/oci/reference.ts";
import { RegistryClient } from "../../../src/registry/client.ts";
import { discoverAttestations } from "../../../src/sigstore/provenance/attestation_discovery.ts";
import {
  blobResponse,
  errorResponse,
  type FaultRoute,
  manifestResponse,
  startFaultServer,
} from "../../_helpers/fault_server.ts";
import { makeTempDir } from "../../_helpers/process.ts";
import { CASES_DIR } from "../crypto/_conformance_cases.ts";
import { imageDigestOf, layoutOf, readLayout, writeVariant } from "./_provenance_vectors.ts";

const encoder = new TextEncoder();
const BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function rejects(fn: () => Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(isDangerzoneError(e), String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

Deno.test("discoverAttestations() finds the cosign attestation of a cosign save layout", async () => {
  for (const version of ["v1.4.0", "v1.10.0"]) {
    const found = await discoverAttestations({ kind: "layout", path: layoutOf(version) });
    assert.equal(found.imageDigest, imageDigestOf(version));
    assert.equal(found.name, `oci:${layoutOf(version)}`);
    assert.equal(found.tag, undefined);
    assert.equal(found.attestations.length, 1);
    const att = found.attestations[0];
    assert.ok(att?.kind === "cosign");
    assert.deepEqual(att.layer.envelope, readLayout(version).envelope);
    assert.ok(att.layer.annotations["dev.sigstore.cosign/certificate"]?.startsWith("-----BEGIN CERTIFICATE"));
  }
});

Deno.test("discoverAttestations() needs only the image digest, but checks image manifest bytes present", async () => {
  await using tmp = makeTempDir("discover");
  const bare = await writeVariant("v2.1.0", join(tmp.path, "bare"), { dropImageManifest: true });
  const found = await discoverAttestations({ kind: "layout", path: bare });
  assert.equal(found.imageDigest, imageDigestOf("v2.1.0"));
  assert.equal(found.attestations.length, 1);

  const wrong = await writeVariant("v2.1.0", join(tmp.path, "wrong"));
  const imagePath = `${wrong}/blobs/sha256/${imageDigestOf("v2.1.0").slice(7)}`;
  const bytes = await Deno.readFile(imagePath);
  bytes[10] = (bytes[10] ?? 0) ^ 1;
  await Deno.writeFile(imagePath, bytes);
  await rejects(() => discoverAttestations({ kind: "layout", path: wrong }), "DIGEST_MISMATCH");
});

Deno.test("discoverAttestations() reads dangerzone.json (the full index) and refuses two images", async () => {
  await using tmp = makeTempDir("discover");
  const dir = await writeVariant("v1.9.0", join(tmp.path, "dz"));
  const full = await Deno.readFile(`${dir}/index.json`);
  const index = JSON.parse(new TextDecoder().decode(full));
  await Deno.writeFile(`${dir}/dangerzone.json`, full);
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({ ...index, manifests: [index.manifests[0]] }),
  );
  const found = await discoverAttestations({ kind: "layout", path: dir });
  assert.equal(found.attestations.length, 1);

  const two = await writeVariant("v1.9.0", join(tmp.path, "two"));
  const twoIndex = JSON.parse(await Deno.readTextFile(`${two}/index.json`));
  twoIndex.manifests.push(readLayout("v2.1.0").image);
  await Deno.writeTextFile(`${two}/index.json`, JSON.stringify(twoIndex));
  await rejects(() => discoverAttestations({ kind: "layout", path: two }), "ARCHIVE_INVALID");
  await rejects(
    () => discoverAttestations({ kind: "layout", path: join(tmp.path, "absent") }),
    "ARCHIVE_INVALID",
  );
});

/** A registry with one image, no `.att` tag, and a GitHub-style bundle attestation as a referrer. */
function bundleRegistry(referrersApi: boolean, extra: (imageDigest: string) => FaultRoute[] = () => []) {
  const parts = readLayout("v2.1.0");
  const imageRaw = new Uint8Array(parts.blob(parts.image["digest"]));
  const imageDigest = sha256(imageRaw);
  const bundle = new Uint8Array(
    Deno.readFileSync(`${CASES_DIR}happy-path-intoto-in-dsse-v3/bundle.sigstore.json`),
  );
  const empty = encoder.encode("{}");
  const bundleManifest = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: BUNDLE_TYPE,
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(empty), size: empty.length },
    layers: [{ mediaType: BUNDLE_TYPE, digest: sha256(bundle), size: bundle.length }],
    subject: { mediaType: String(parts.image["mediaType"]), digest: imageDigest, size: imageRaw.length },
  }));
  const referrers = encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: BUNDLE_TYPE,
        digest: sha256(bundleManifest),
        size: bundleManifest.length,
      },
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: "application/spdx+json",
        digest: `sha256:${"0".repeat(64)}`,
        size: 2,
      },
    ],
  }));
  const routes: FaultRoute[] = [
    ...extra(imageDigest),
    { path: "/v2/", handler: () => new Response("{}") },
    {
      path: "/v2/gh/app/manifests/v1",
      handler: () => manifestResponse(imageRaw, String(parts.image["mediaType"])),
    },
    {
      path: `/v2/gh/app/manifests/${sha256(bundleManifest)}`,
      handler: () => manifestResponse(bundleManifest, "application/vnd.oci.image.manifest.v1+json"),
    },
    { path: `/v2/gh/app/blobs/${sha256(bundle)}`, handler: (req) => blobResponse(req, bundle) },
    referrersApi
      ? {
        path: `/v2/gh/app/referrers/${imageDigest}`,
        handler: () => manifestResponse(referrers, "application/vnd.oci.image.index.v1+json"),
      }
      : {
        path: `/v2/gh/app/manifests/sha256-${imageDigest.slice(7)}`,
        handler: () => manifestResponse(referrers, "application/vnd.oci.image.index.v1+json"),
      },
    { path: /./, handler: () => errorResponse(404, "MANIFEST_UNKNOWN") },
  ];
  return { server: startFaultServer(routes), imageDigest, bundle };
}

for (const referrersApi of [true, false]) {
  Deno.test(`discoverAttestations() finds a Sigstore bundle via ${referrersApi ? "the referrers API" : "the referrers tag schema"}`, async () => {
    const { server, imageDigest, bundle } = bundleRegistry(referrersApi);
    await using _ = server;
    using client = new RegistryClient();
    const found = await discoverAttestations({
      kind: "registry",
      client,
      ref: parseReference(`${server.host}/gh/app:v1`),
    });
    assert.equal(found.imageDigest, imageDigest);
    assert.equal(found.tag, "v1");
    assert.equal(found.attestations.length, 1);
    const att = found.attestations[0];
    assert.ok(att?.kind === "bundle");
    assert.deepEqual(att.bundle, bundle);
    // The SPDX referrer was not fetched.
    assert.ok(!server.requests.some((r) => r.url.includes("0000000000")));
  });
}

Deno.test("discoverAttestations() refuses an oversize attestation layer without downloading it", async () => {
  const parts = readLayout("v1.10.0");
  const imageRaw = new Uint8Array(parts.blob(parts.image["digest"]));
  const imageDigest = sha256(imageRaw);
  const att = encoder.encode(JSON.stringify({
    ...parts.attManifest,
    layers: [{ ...parts.layer, size: 64 * 1024 * 1024 }],
  }));
  const routes: FaultRoute[] = [
    { path: "/v2/", handler: () => new Response("{}") },
    {
      path: "/v2/a/b/manifests/v1",
      handler: () => manifestResponse(imageRaw, String(parts.image["mediaType"])),
    },
    {
      path: `/v2/a/b/manifests/sha256-${imageDigest.slice(7)}.att`,
      handler: () => manifestResponse(att, "application/vnd.oci.image.manifest.v1+json"),
    },
    { path: /./, handler: () => errorResponse(404, "MANIFEST_UNKNOWN") },
  ];
  await using server = startFaultServer(routes);
  using client = new RegistryClient();
  await rejects(
    () => discoverAttestations({ kind: "registry", client, ref: parseReference(`${server.host}/a/b:v1`) }),
    "ATTESTATION_INVALID",
  );
  assert.ok(!server.requests.some((r) => r.url.includes("/blobs/")));
});

Deno.test("discoverAttestations() judges each attestation alone: a malformed .att next to a valid bundle", async () => {
  // The legacy `.att` tag holds a malformed manifest (no config, layers nested 40 deep); the bundle
  // referrer beside it is fine.
  const deep = encoder.encode(`{"schemaVersion":2,"layers":${"[".repeat(40)}${"]".repeat(40)}}`);
  const { server, bundle } = bundleRegistry(true, (imageDigest) => [{
    path: `/v2/gh/app/manifests/sha256-${imageDigest.slice(7)}.att`,
    handler: () => manifestResponse(deep, "application/vnd.oci.image.manifest.v1+json"),
  }]);
  await using _ = server;
  using client = new RegistryClient();
  const ref = parseReference(`${server.host}/gh/app:v1`);
  const found = await discoverAttestations({ kind: "registry", client, ref });
  assert.equal(found.attestations.length, 1);
  const att = found.attestations[0];
  assert.ok(att?.kind === "bundle");
  assert.deepEqual(att.bundle, bundle);
  assert.equal(found.rejected.length, 1);
  assert.match(found.rejected[0]?.message ?? "", /\.att is malformed/);
});
