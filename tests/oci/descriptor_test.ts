import assert from "node:assert/strict";
import { assertDescriptor, describeDescriptor } from "../../src/oci/descriptor.ts";
import { isDangerzoneError } from "../../src/errors.ts";

const D = `sha256:${"b".repeat(64)}`;

Deno.test("assertDescriptor() accepts a full descriptor", () => {
  const x: unknown = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: D,
    size: 10,
    annotations: { a: "b" },
    platform: { os: "linux", architecture: "arm64", variant: "v8" },
    artifactType: "x/y",
    urls: ["https://example.com"],
  };
  assertDescriptor(x);
  assert.equal(x.size, 10);
  assert.match(describeDescriptor(x), /10 bytes/);
});

Deno.test("assertDescriptor() rejects bad fields with MANIFEST_INVALID naming the path", () => {
  const bad: unknown[] = [
    null,
    [],
    { mediaType: "x", digest: D },
    { mediaType: "x", digest: D, size: -1 },
    { mediaType: "x", digest: D, size: 1.5 },
    { mediaType: "x", digest: D, size: "1" },
    { mediaType: "x", digest: "sha256:abc", size: 1 },
    { mediaType: 1, digest: D, size: 1 },
    { mediaType: "x", digest: D, size: 1, annotations: { a: 1 } },
    { mediaType: "x", digest: D, size: 1, platform: { os: "linux" } },
    { mediaType: "x", digest: D, size: 1, urls: "u" },
  ];
  for (const x of bad) {
    assert.throws(() => assertDescriptor(x, "m.layers[0]"), (e: unknown) => {
      assert.ok(isDangerzoneError(e, "MANIFEST_INVALID"), JSON.stringify(x));
      assert.match(e.message, /^m\.layers\[0\]/);
      return true;
    });
  }
});
