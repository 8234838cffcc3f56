import assert from "node:assert/strict";
import { formatPlatform, normalizePlatform, parsePlatform, selectPlatform } from "../../src/oci/platform.ts";
import type { ImageIndex } from "../../src/oci/manifest.ts";
import type { Descriptor, Platform } from "../../src/oci/descriptor.ts";
import { isDangerzoneError } from "../../src/errors.ts";
import { digestFromHex } from "../../src/oci/digest.ts";

function entry(ch: string, platform?: Platform): Descriptor {
  const d: Descriptor = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: digestFromHex(ch.repeat(64)),
    size: 1,
  };
  if (platform) d.platform = platform;
  return d;
}
function index(...manifests: Descriptor[]): ImageIndex {
  return { kind: "index", mediaType: "application/vnd.oci.image.index.v1+json", manifests };
}

Deno.test("normalizePlatform() folds aliases and default variants", () => {
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "x86_64" }), {
    os: "linux",
    architecture: "amd64",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "aarch64" }), {
    os: "linux",
    architecture: "arm64",
    variant: "v8",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "arm" }), {
    os: "linux",
    architecture: "arm",
    variant: "v7",
  });
  assert.deepEqual(normalizePlatform({ os: "linux", architecture: "amd64", variant: "v1" }), {
    os: "linux",
    architecture: "amd64",
  });
  assert.equal(formatPlatform(parsePlatform("arm64")), "linux/arm64/v8");
  assert.equal(formatPlatform(parsePlatform("linux/amd64")), "linux/amd64");
  assert.throws(() => parsePlatform("linux/amd64/v1/x"), (e: unknown) => isDangerzoneError(e, "USAGE"));
});

Deno.test("selectPlatform() picks by os/arch/variant and skips unknown/unknown", () => {
  const idx = index(
    entry("a", { os: "linux", architecture: "amd64" }),
    entry("b", { os: "linux", architecture: "arm64", variant: "v8" }),
    entry("c", { os: "unknown", architecture: "unknown" }),
    entry("d"),
  );
  assert.equal(selectPlatform(idx, parsePlatform("linux/amd64")).digest, digestFromHex("a".repeat(64)));
  assert.equal(
    selectPlatform(idx, { os: "linux", architecture: "arm64" }).digest,
    digestFromHex("b".repeat(64)),
  );
  assert.equal(
    selectPlatform(idx, { os: "linux", architecture: "aarch64" }).digest,
    digestFromHex("b".repeat(64)),
  );
  // arm64 without variant in the index matches a v8 request
  const idx2 = index(entry("e", { os: "linux", architecture: "arm64" }));
  assert.equal(selectPlatform(idx2, parsePlatform("linux/arm64/v8")).digest, digestFromHex("e".repeat(64)));
});

Deno.test("selectPlatform() reports PLATFORM_NOT_FOUND listing what exists", () => {
  const idx = index(
    entry("a", { os: "linux", architecture: "amd64" }),
    entry("c", { os: "unknown", architecture: "unknown" }),
  );
  assert.throws(() => selectPlatform(idx, parsePlatform("linux/arm64")), (e: unknown) => {
    assert.ok(isDangerzoneError(e, "PLATFORM_NOT_FOUND"));
    assert.match(e.message, /available: linux\/amd64$/);
    assert.doesNotMatch(e.message, /unknown/);
    return true;
  });
});

Deno.test("selectPlatform() reports PLATFORM_AMBIGUOUS for two distinct matches", () => {
  const idx = index(
    entry("a", { os: "linux", architecture: "amd64" }),
    entry("b", { os: "linux", architecture: "amd64", variant: "v3" }),
  );
  assert.throws(() => selectPlatform(idx, parsePlatform("linux/amd64")), (e: unknown) => {
    assert.ok(isDangerzoneError(e, "PLATFORM_AMBIGUOUS"));
    assert.match(e.message, /2 entries/);
    return true;
  });
  // identical duplicates are not ambiguous
  const dup = index(
    entry("a", { os: "linux", architecture: "amd64" }),
    entry("a", { os: "linux", architecture: "amd64" }),
  );
  assert.equal(selectPlatform(dup, parsePlatform("linux/amd64")).digest, digestFromHex("a".repeat(64)));
});
