/**
 * `discoverSignatures()` all three ways: the legacy `.sig` tag and the referrers tag schema against the
 * real registry (distribution 2.8), the OCI 1.1 referrers API through the fault server (distribution 2.8
 * lacks it); bounds, decoys and wrong bytes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { isDangerzoneError } from "../../../src/errors.ts";
import { type Digest, parseDigest } from "../../../src/oci/digest.ts";
import { parseReference } from "../../../src/oci/reference.ts";
import { RegistryClient } from "../../../src/registry/client.ts";
import { discoverSignatures } from "../../../src/sigstore/cosign/discovery.ts";
import { verifyCosignSignatures } from "../../../src/sigstore/cosign/policy.ts";
import { verifyRemoteImage } from "../../../src/update/verify_remote.ts";
import { signImage } from "../../_helpers/cosign_signer.ts";
import { MAX_PAYLOAD_BYTES } from "../../../src/sigstore/cosign/cosign_signature.ts";
import { errorResponse, manifestResponse, startFaultServer } from "../../_helpers/fault_server.ts";
import { startSignedRegistry } from "../../update/_fixture.ts";

const enc = new TextEncoder();
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const EMPTY_CONFIG = enc.encode("{}");

function digestOf(bytes: Uint8Array): Digest {
  return parseDigest(`sha256:${createHash("sha256").update(bytes).digest("hex")}`);
}

/** Content for an in-memory registry: blobs and manifests by digest, tags. */
class Content {
  readonly blobs = new Map<string, Uint8Array>();
  readonly manifests = new Map<string, { raw: Uint8Array; mediaType: string }>();
  readonly tags = new Map<string, string>();

  blob(bytes: Uint8Array, mediaType: string, annotations?: Record<string, string>): Record<string, unknown> {
    const digest = digestOf(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length, ...(annotations === undefined ? {} : { annotations }) };
  }

  manifest(doc: Record<string, unknown>, tag?: string): Record<string, unknown> {
    const raw = enc.encode(JSON.stringify(doc));
    const digest = digestOf(raw);
    const mediaType = String(doc.mediaType);
    this.manifests.set(digest, { raw, mediaType });
    if (tag !== undefined) this.tags.set(tag, digest);
    return {
      mediaType,
      digest,
      size: raw.length,
      ...(doc.artifactType === undefined ? {} : { artifactType: doc.artifactType }),
    };
  }

  /** An OCI 1.1 referrer manifest with `subject`, `artifactType` and layers. */
  referrer(subject: Record<string, unknown>, artifactType: string, layers: Record<string, unknown>[]) {
    return this.manifest({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: this.blob(EMPTY_CONFIG, "application/vnd.oci.empty.v1+json"),
      layers,
      subject,
    });
  }
}

function imageManifest(c: Content, text: string): Record<string, unknown> {
  return c.manifest({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: c.blob(
      enc.encode(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`),
      "application/vnd.oci.image.config.v1+json",
    ),
    layers: [c.blob(enc.encode(text), "application/vnd.oci.image.layer.v1.tar")],
  }, "latest");
}

function serve(c: Content, referrers: Map<string, Record<string, unknown>[]> | undefined) {
  return startFaultServer([
    {
      path: /^\/v2\/test\/app\/referrers\/(.+)$/,
      handler: (_req, ctx) => {
        if (referrers === undefined) return errorResponse(404, "NOT_FOUND");
        const digest = ctx.url.pathname.split("/").pop() ?? "";
        const body = enc.encode(JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: referrers.get(digest) ?? [],
        }));
        return manifestResponse(body, OCI_INDEX);
      },
    },
    {
      path: /^\/v2\/test\/app\/manifests\/(.+)$/,
      handler: (_req, ctx) => {
        const id = ctx.url.pathname.split("/").pop() ?? "";
        const m = c.manifests.get(c.tags.get(id) ?? id);
        return m === undefined
          ? errorResponse(404, "MANIFEST_UNKNOWN")
          : manifestResponse(new Uint8Array(m.raw), m.mediaType);
      },
    },
    {
      path: /^\/v2\/test\/app\/blobs\/(.+)$/,
      handler: (_req, ctx) => {
        const b = c.blobs.get(ctx.url.pathname.split("/").pop() ?? "");
        return b === undefined
          ? errorResponse(404, "BLOB_UNKNOWN")
          : new Response(new Uint8Array(b), { headers: { "Content-Length": String(b.length) } });
      },
    },
  ]);
}

function client(): RegistryClient {
  return new RegistryClient({ env: {}, osReleasePath: "/nonexistent", retry: { attempts: 1 } });
}

/** An image in fresh content, served with the referrers API (`referrers`: by subject); dispose `api`. */
function servedImage(text: string) {
  const c = new Content();
  const image = imageManifest(c, text);
  const digest = parseDigest(String(image.digest));
  const referrers = new Map<string, Record<string, unknown>[]>();
  const api = serve(c, referrers);
  return { c, image, digest, referrers, api, reference: `${api.host}/test/app` };
}

Deno.test("discoverSignatures() finds cosign and bundle referrers through the OCI 1.1 referrers API", async () => {
  await using sr = await startSignedRegistry("plain"); // only for its keys and the verification context
  const { c, image, digest, referrers, api, reference } = servedImage("app v1");
  await using _api = api;
  const signed = signImage({ digest, reference, publisher: sr.publisher, rekor: sr.rekor, logIndex: 9 });
  const sigLayer = c.blob(signed.payload, SIMPLE_SIGNING, {
    "dev.cosignproject.cosign/signature": signed.signatureB64,
    "dev.sigstore.cosign/bundle": JSON.stringify(signed.bundle),
  });
  const bundleBytes = enc.encode('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}');
  const other = c.manifest({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: c.blob(EMPTY_CONFIG, "x/y"),
    layers: [],
  });
  const list = [
    c.referrer(image, "application/vnd.dev.cosign.artifact.sig.v1+json", [sigLayer]),
    c.referrer(image, BUNDLE_TYPE, [c.blob(bundleBytes, BUNDLE_TYPE)]),
    // Decoys: a bundle artifactType whose layer is not a bundle; a referrer of another subject.
    c.referrer(image, BUNDLE_TYPE, [c.blob(enc.encode("not a bundle"), "application/octet-stream")]),
    c.referrer(other, BUNDLE_TYPE, [c.blob(enc.encode('{"x":1}'), BUNDLE_TYPE)]),
  ];
  // An SBOM referrer is skipped by its type without being fetched.
  const sbom = {
    mediaType: OCI_MANIFEST,
    digest: `sha256:${"e".repeat(64)}`,
    size: 10,
    artifactType: "application/spdx+json",
  };
  referrers.set(digest, [...list, sbom]);
  const ref = parseReference(`${api.host}/test/app:latest`);

  using cl = client();
  const found = await discoverSignatures(cl, ref, digest);
  assert.equal(found.legacyTagFound, false);
  assert.equal(found.referrerCount, 5);
  assert.equal(found.cosign.length, 1);
  assert.equal(found.cosign[0]?.source, "referrer");
  assert.equal(found.bundles.length, 1);
  assert.deepEqual(found.bundles[0]?.untrustedBytes, bundleBytes);
  assert.ok(!api.requests.some((r) => r.url.includes("e".repeat(64))), "the SBOM must not be fetched");
  assert.ok(api.requests.some((r) => r.url.includes(`/referrers/${digest}`)));

  // The referrer's signature verifies (it names the fault server's repository).
  using ctx = await sr.context(`${api.host}/test/app:latest`, sr.dir, { registry: cl });
  const sigEntries = found.cosign.map((x) => x.entry);
  const verdict = await verifyCosignSignatures(sigEntries, ctx, {
    digest,
    reference: `${api.host}/test/app`,
  });
  assert.equal(verdict.verified.length, 1);
  // Through verifyRemoteImage: the key-based one is trusted; the malformed bundle is reported, not fatal.
  const remote = await verifyRemoteImage(ctx);
  assert.equal(remote.verified.length, 1);
  assert.equal(remote.freshness, "not-installed");
  const bundleReport = remote.reports.find((r) => r.kind === "bundle");
  assert.equal(bundleReport?.verdict, "rejected");
  assert.equal(bundleReport?.error?.code, "BUNDLE_INVALID");
});

Deno.test("the verification path reads the .sig tag, the referrers list and each selected manifest and blob once", async () => {
  await using sr = await startSignedRegistry("plain"); // only for its keys and the verification context
  const { c, image, digest, referrers, api, reference } = servedImage("app counted");
  await using _api = api;
  const signedLayer = (logIndex: number) => {
    const s = signImage({ digest, reference, publisher: sr.publisher, rekor: sr.rekor, logIndex });
    return c.blob(s.payload, SIMPLE_SIGNING, {
      "dev.cosignproject.cosign/signature": s.signatureB64,
      "dev.sigstore.cosign/bundle": JSON.stringify(s.bundle),
    });
  };
  const legacyLayer = signedLayer(1);
  const sigTag = `sha256-${digest.slice(7)}.sig`;
  c.manifest({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: c.blob(EMPTY_CONFIG, "x/y"),
    layers: [legacyLayer],
  }, sigTag);
  const referrerLayer = signedLayer(2);
  const bundleLayer = c.blob(enc.encode(`{"mediaType":"${BUNDLE_TYPE}"}`), BUNDLE_TYPE);
  const sigReferrer = c.referrer(image, "application/vnd.dev.cosign.artifact.sig.v1+json", [referrerLayer]);
  const bundleReferrer = c.referrer(image, BUNDLE_TYPE, [bundleLayer]);
  const sbom = {
    mediaType: OCI_MANIFEST,
    digest: `sha256:${"e".repeat(64)}`,
    size: 10,
    artifactType: "application/spdx+json",
  };
  referrers.set(digest, [sigReferrer, bundleReferrer, sbom]);

  using cl = client();
  using ctx = await sr.context(`${reference}:latest`, sr.dir, { registry: cl });
  const remote = await verifyRemoteImage(ctx);
  assert.equal(remote.verified.length, 2);
  // The image, the .sig tag, the referrers list, the two signature referrers and the three layers:
  // each once; the SBOM (skipped by its listing entry) and the configs never.
  const paths = api.requests.map((r) => new URL(r.url).pathname.replace("/v2/test/app/", ""));
  assert.deepEqual(
    paths.sort(),
    [
      "manifests/latest",
      `manifests/${sigTag}`,
      `referrers/${digest}`,
      `manifests/${sigReferrer.digest}`,
      `manifests/${bundleReferrer.digest}`,
      `blobs/${legacyLayer.digest}`,
      `blobs/${referrerLayer.digest}`,
      `blobs/${bundleLayer.digest}`,
    ].sort(),
  );
});

Deno.test("discoverSignatures() reads the legacy .sig tag and the referrers tag schema on the real registry", async () => {
  await using sr = await startSignedRegistry("plain");
  const img = await sr.pushBusybox("sandbox/app", "latest", "discover");
  const legacy = await sr.sign(img.digest, { repository: "sandbox/app", logIndex: 1, count: 2 });
  // cosign's OCI 1.1 form through the tag schema: a referrer manifest, and the sha256-<hex> index.
  const ref = parseReference(`${sr.reg.host}/sandbox/app:latest`);
  const another = signImage({
    digest: img.digest,
    reference: ref.name(),
    publisher: sr.publisher,
    rekor: sr.rekor,
    logIndex: 3,
  });
  using cl = new RegistryClient(sr.clientOptions);
  const layerDesc = {
    mediaType: SIMPLE_SIGNING,
    digest: digestOf(another.payload),
    size: another.payload.length,
  };
  await cl.putBlob(ref, layerDesc, another.payload);
  await cl.putBlob(
    ref,
    { mediaType: "x", digest: digestOf(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
    EMPTY_CONFIG,
  );
  const referrer = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: digestOf(EMPTY_CONFIG),
      size: EMPTY_CONFIG.length,
    },
    layers: [{
      ...layerDesc,
      annotations: {
        "dev.cosignproject.cosign/signature": another.signatureB64,
        "dev.sigstore.cosign/bundle": JSON.stringify(another.bundle),
      },
    }],
    subject: { mediaType: img.mediaType, digest: img.digest, size: img.size },
  }));
  const rd = await cl.putManifest(ref, referrer);
  await cl.putManifest(
    ref,
    enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...rd, artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json" }],
    })),
    { tag: `sha256-${img.digest.slice(7)}` },
  );

  const found = await discoverSignatures(cl, ref, img.digest);
  assert.equal(found.legacyTagFound, true);
  assert.deepEqual(found.cosign.map((c) => c.source), ["legacy-tag", "legacy-tag", "referrer"]);
  assert.deepEqual(found.cosign.map((c) => c.entry.index), [0, 1, 2]);
  assert.deepEqual(found.cosign.slice(0, 2).map((c) => JSON.parse(c.entry.raw)), legacy.map((s) => s.entry));
  using ctx = await sr.context(ref.format(), sr.dir, { registry: cl });
  const remote = await verifyRemoteImage(ctx);
  assert.equal(remote.verified.length, 3);
  assert.deepEqual(remote.positions.map((p) => p.logIndex), [3]);
});

Deno.test("discoverSignatures() is bounded and fails closed on wrong bytes or nothing found", async (t) => {
  await using sr = await startSignedRegistry("plain");
  const c = new Content();
  const image = imageManifest(c, "bounds");
  const digest = parseDigest(String(image.digest));
  const signed = signImage({ digest, reference: "r", publisher: sr.publisher, rekor: sr.rekor, logIndex: 1 });
  const annotations = { "dev.cosignproject.cosign/signature": signed.signatureB64 };
  const sigTag = `sha256-${digest.slice(7)}.sig`;
  function sigManifest(layers: Record<string, unknown>[]): void {
    c.manifest(
      { schemaVersion: 2, mediaType: OCI_MANIFEST, config: c.blob(EMPTY_CONFIG, "x/y"), layers },
      sigTag,
    );
  }
  await using server = serve(c, undefined);
  const ref = parseReference(`${server.host}/test/app:latest`);
  using cl = client();

  await t.step("nothing anywhere: SIGNATURE_MISSING with a hint", async () => {
    await assert.rejects(discoverSignatures(cl, ref, digest), (e) => {
      assert.ok(isDangerzoneError(e, "SIGNATURE_MISSING"));
      assert.match(e.hint ?? "", /not signed/);
      return true;
    });
  });
  await t.step(
    "a payload over 64 KiB is that signature's failure, refused before it is fetched",
    async () => {
      sigManifest([{
        mediaType: SIMPLE_SIGNING,
        digest: `sha256:${"a".repeat(64)}`,
        size: 65 * 1024,
        annotations,
      }]);
      const found = await discoverSignatures(cl, ref, digest);
      assert.equal(found.cosign.length, 0);
      assert.equal(found.rejected[0]?.error.code, "PAYLOAD_INVALID");
      assert.ok(!server.requests.some((r) => r.url.includes("a".repeat(64))));
    },
  );
  await t.step("more signatures than allowed: SIGNATURE_INVALID", async () => {
    const layer = c.blob(signed.payload, SIMPLE_SIGNING, annotations);
    sigManifest([layer, layer]);
    await assert.rejects(
      discoverSignatures(cl, ref, digest, { maxSignatures: 1 }),
      (e) => isDangerzoneError(e, "SIGNATURE_INVALID"),
    );
  });
  await t.step("a payload blob that does not match its digest: DIGEST_MISMATCH", async () => {
    const layer = c.blob(signed.payload, SIMPLE_SIGNING, annotations);
    c.blobs.set(String(layer.digest), enc.encode("x".repeat(signed.payload.length)));
    sigManifest([layer]);
    await assert.rejects(discoverSignatures(cl, ref, digest), (e) => isDangerzoneError(e, "DIGEST_MISMATCH"));
  });
});

Deno.test("each signature is judged alone: a too-deep bundle annotation or oversized payload next to a valid one", async () => {
  await using sr = await startSignedRegistry("plain"); // only for its keys and the verification context
  const c = new Content();
  const image = imageManifest(c, "app isolated");
  const digest = parseDigest(String(image.digest));
  await using api = serve(c, undefined);
  const reference = `${api.host}/test/app`;
  const sig = (logIndex: number) =>
    signImage({ digest, reference, publisher: sr.publisher, rekor: sr.rekor, logIndex });
  const layer = (s: ReturnType<typeof sig>, bundle: string) =>
    c.blob(s.payload, SIMPLE_SIGNING, {
      "dev.cosignproject.cosign/signature": s.signatureB64,
      "dev.sigstore.cosign/bundle": bundle,
    });
  // 33 nested arrays: strict JSON alone (depth 32), one level too deep inside the entry.
  const deep = "[".repeat(33) + "]".repeat(33);
  const bad = layer(sig(1), deep);
  const good = sig(2);
  const oversized: Record<string, unknown> = {
    ...layer(sig(3), JSON.stringify(sig(3).bundle)),
    digest: `sha256:${"b".repeat(64)}`,
    size: MAX_PAYLOAD_BYTES + 1,
  };
  const sigManifest = (layers: Record<string, unknown>[]) =>
    c.manifest({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: c.blob(EMPTY_CONFIG, "application/vnd.oci.image.config.v1+json"),
      layers,
    }, `sha256-${digest.slice(7)}.sig`);
  sigManifest([bad, oversized, layer(good, JSON.stringify(good.bundle))]);
  using cl = client();
  using ctx = await sr.context(`${reference}:latest`, sr.dir, { registry: cl });
  const remote = await verifyRemoteImage(ctx);
  assert.equal(remote.verified.length, 1);
  // The malformed bundle fails its own Rekor rule (exit-10 code); the oversized payload is refused unread.
  assert.deepEqual(
    remote.reports.map((r) => [r.index, r.verdict, r.error?.code ?? null]),
    [[0, "rejected", "TLOG_SET_INVALID"], [1, "rejected", "PAYLOAD_INVALID"], [2, "verified", null]],
  );
  assert.ok(
    !api.requests.some((r) => r.url.includes(String(oversized["digest"]))),
    "an oversized payload is not fetched",
  );

  // Only malformed ones: a verification failure (exit 10 codes), never an exception of the parser.
  sigManifest([bad, oversized]);
  await assert.rejects(
    verifyRemoteImage(ctx),
    (e) => isDangerzoneError(e, "TLOG_SET_INVALID") && /none of the 2 signatures verified/.test(e.message),
  );
});
