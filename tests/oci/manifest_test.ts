import assert from "node:assert/strict";
import { parseManifest } from "../../src/oci/manifest.ts";
import { MediaType } from "../../src/oci/media_types.ts";
import { isDangerzoneError } from "../../src/errors.ts";

const D = `sha256:${"c".repeat(64)}`;
const enc = (x: unknown) => new TextEncoder().encode(typeof x === "string" ? x : JSON.stringify(x));
const desc = { mediaType: "application/octet-stream", digest: D, size: 3 };

Deno.test("parseManifest() parses an OCI manifest and a Docker manifest list", () => {
  const m = parseManifest(
    enc({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: desc, layers: [desc] }),
  );
  assert.equal(m.kind, "manifest");
  if (m.kind === "manifest") assert.equal(m.layers.length, 1);
  const i = parseManifest(
    enc({
      schemaVersion: 2,
      mediaType: MediaType.DOCKER_MANIFEST_LIST,
      manifests: [desc],
      annotations: { a: "b" },
    }),
  );
  assert.equal(i.kind, "index");
  assert.equal(i.mediaType, MediaType.DOCKER_MANIFEST_LIST);
  assert.deepEqual(i.annotations, { a: "b" });
});

Deno.test("parseManifest() takes the media type from Content-Type when the body has none", () => {
  const m = parseManifest(
    enc({ schemaVersion: 2, manifests: [desc] }),
    `${MediaType.OCI_INDEX}; charset=utf-8`,
  );
  assert.equal(m.kind, "index");
  const n = parseManifest(
    enc({ schemaVersion: 2, config: desc, layers: [], subject: desc, artifactType: "a/b" }),
  );
  assert.equal(n.kind, "manifest");
  assert.equal(n.artifactType, "a/b");
});

Deno.test("parseManifest() rejects malformed manifests with MANIFEST_INVALID", () => {
  const bad: [Uint8Array, string?][] = [
    [new Uint8Array([0xff, 0xfe])],
    [enc("not json")],
    [enc([])],
    [enc({ schemaVersion: 1, mediaType: MediaType.OCI_MANIFEST, config: desc, layers: [] })],
    [enc({ schemaVersion: 2, mediaType: "text/plain", config: desc, layers: [] })],
    [enc({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: desc })],
    [enc({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: desc, layers: [{}] })],
    [enc({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [desc], layers: [] })],
    [enc({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: desc, layers: [], manifests: [] })],
    [enc({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }), MediaType.OCI_MANIFEST],
    [enc({ schemaVersion: 2, config: desc, layers: [], manifests: [] })],
    [enc({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [], annotations: { a: 1 } })],
  ];
  for (const [raw, ct] of bad) {
    assert.throws(() => parseManifest(raw, ct), (e: unknown) => isDangerzoneError(e, "MANIFEST_INVALID"));
  }
});
