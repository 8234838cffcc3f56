import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { archiveRoots, CosignKind, parseArchiveIndex } from "../../src/layout/archive_index.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";

const VECTORS = new URL(
  "../testdata/vectors/slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/",
  import.meta.url,
)
  .pathname;
const enc = new TextEncoder();
const hex = (c: string) => c.repeat(64);

function entry(
  kind: string | undefined,
  c: string,
  mediaType = "application/vnd.oci.image.manifest.v1+json",
) {
  return {
    mediaType,
    size: 100,
    digest: `sha256:${hex(c)}`,
    ...(kind === undefined ? {} : { annotations: { kind } }),
  };
}

function index(manifests: unknown[], extra: Record<string, unknown> = {}): Uint8Array {
  return enc.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests,
      ...extra,
    }),
  );
}

const IMAGE = entry(CosignKind.IMAGE, "a");
const SIGS = entry(CosignKind.SIGNATURES, "b");
const ATTS = entry(CosignKind.ATTESTATIONS, "c");

function refused(files: Parameters<typeof parseArchiveIndex>[0], message: RegExp): void {
  assert.throws(() => parseArchiveIndex(files), (err: unknown) => {
    assert.ok(err instanceof DangerzoneError);
    assert.equal(err.code, "ARCHIVE_INVALID", err.message);
    assert.match(err.message, message);
    return true;
  });
}

for (const version of ["v1.4.0", "v1.9.0", "v1.10.0", "v2.1.0"]) {
  Deno.test(`parseArchiveIndex() reads the real cosign save layout of slsa-verifier ${version}`, async () => {
    const dir = await OciLayoutDir.open(`${VECTORS}${version}/container_workflow_dispatch`);
    const { raw } = await dir.readIndex();
    const idx = parseArchiveIndex({ untrustedIndexJson: raw });
    assert.equal(idx.form, "cosign-save");
    const digest = (await Deno.readTextFile(`${VECTORS}${version}/container_workflow_dispatch.digest`))
      .trim();
    assert.equal(idx.image.digest, digest);
    assert.equal(idx.attestations.length, 1);
    assert.equal(idx.signatures.length, 0);
    assert.equal(archiveRoots(idx).length, 2);
    assert.deepEqual(archiveRoots(idx, [CosignKind.ATTESTATIONS]).map((r) => r.descriptor), idx.attestations);
  });
}

Deno.test("parseArchiveIndex() accepts a Dangerzone archive made from a real cosign save index", async () => {
  const dir = await OciLayoutDir.open(`${VECTORS}v2.1.0/container_workflow_dispatch`);
  const { raw } = await dir.readIndex();
  const full: { manifests: { annotations: { kind: string } }[] } = JSON.parse(new TextDecoder().decode(raw));
  const filtered = {
    ...full,
    manifests: full.manifests.filter((m) => m.annotations.kind.includes("/image")),
  };
  const idx = parseArchiveIndex({
    untrustedIndexJson: enc.encode(JSON.stringify(filtered)),
    untrustedDangerzoneJson: raw,
  });
  assert.equal(idx.form, "dangerzone-archive");
  assert.equal(idx.image.annotations?.kind, CosignKind.IMAGE_INDEX);
  assert.equal(idx.entries.length, 2);
});

Deno.test("parseArchiveIndex() compares JSON values, not bytes (key order and spacing may differ, as in Python)", () => {
  const reordered = enc.encode(
    `{ "manifests": [ {"digest":"${IMAGE.digest}","size":100,"annotations":{"kind":"${CosignKind.IMAGE}"},"mediaType":"${IMAGE.mediaType}"} ], "mediaType": "application/vnd.oci.image.index.v1+json", "schemaVersion": 2 }`,
  );
  const idx = parseArchiveIndex({
    untrustedIndexJson: reordered,
    untrustedDangerzoneJson: index([IMAGE, SIGS, ATTS]),
  });
  // The strict parser builds prototype-less objects; compare plain JSON values.
  assert.deepEqual(JSON.parse(JSON.stringify(idx.signatures)), [SIGS]);
  assert.deepEqual(JSON.parse(JSON.stringify(idx.attestations)), [ATTS]);
});

Deno.test("parseArchiveIndex() refuses index.json that differs from dangerzone.json filtered to images", () => {
  refused(
    { untrustedIndexJson: index([IMAGE, SIGS]), untrustedDangerzoneJson: index([IMAGE, SIGS]) },
    /does not equal dangerzone\.json/,
  );
  refused({
    untrustedIndexJson: index([entry(CosignKind.IMAGE, "d")]),
    untrustedDangerzoneJson: index([IMAGE, SIGS]),
  }, /does not equal/);
  refused({
    untrustedIndexJson: index([IMAGE], { annotations: { x: "y" } }),
    untrustedDangerzoneJson: index([IMAGE, SIGS]),
  }, /does not equal/);
});

Deno.test("parseArchiveIndex() refuses two images", () => {
  const two = [IMAGE, entry(CosignKind.IMAGE_INDEX, "e", "application/vnd.oci.image.index.v1+json"), SIGS];
  refused(
    { untrustedIndexJson: index(two.slice(0, 2)), untrustedDangerzoneJson: index(two) },
    /lists 2 images; an archive must hold exactly one/,
  );
  refused({ untrustedIndexJson: index(two) }, /lists 2 images/);
});

Deno.test("parseArchiveIndex() refuses zero images", () => {
  refused({ untrustedIndexJson: index([]), untrustedDangerzoneJson: index([SIGS, ATTS]) }, /lists 0 images/);
});

Deno.test("parseArchiveIndex() refuses unknown or missing kinds, duplicates, kind/media type mismatches and bad JSON", () => {
  refused(
    { untrustedIndexJson: index([IMAGE, entry("dev.cosignproject.cosign/evil", "f")]) },
    /annotations\.kind: is unknown/,
  );
  refused({ untrustedIndexJson: index([IMAGE, entry(undefined, "f")]) }, /has no 'kind' annotation/);
  refused({ untrustedIndexJson: index([IMAGE, IMAGE]) }, /a second time/);
  refused({ untrustedIndexJson: index([entry(CosignKind.IMAGE_INDEX, "a")]) }, /is not an index type/);
  refused({
    untrustedIndexJson: index([entry(CosignKind.SIGNATURES, "a", "application/vnd.oci.image.index.v1+json")]),
  }, /is not a manifest type/);
  refused({ untrustedIndexJson: index([IMAGE], { schemaVersion: 1 }) }, /schemaVersion: must be 2/);
  refused({
    untrustedIndexJson: enc.encode(
      `{"schemaVersion":2,"manifests":[],"manifests":[${JSON.stringify(IMAGE)}]}`,
    ),
  }, /duplicate key "manifests"/);
  refused({ untrustedIndexJson: enc.encode("[]") }, /must be a JSON object/);
  refused({ untrustedIndexJson: index([{ ...IMAGE, size: -1 }]) }, /size: must be a non-negative integer/);
  refused(
    { untrustedIndexJson: index([IMAGE]), untrustedDangerzoneJson: enc.encode("\uFEFF{}") },
    /byte order mark/,
  );
});
