import assert from "node:assert/strict";
import { parseReference } from "../../src/oci/reference.ts";
import { DangerzoneError } from "../../src/errors.ts";

const D = `sha256:${"a".repeat(64)}`;

Deno.test("parseReference() splits host with port, multi-segment repository, tag and digest", () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    [
      "ghcr.io/freedomofpress/dangerzone/v1:latest",
      "ghcr.io",
      "freedomofpress/dangerzone/v1",
      "latest",
      undefined,
    ],
    ["127.0.0.1:5000/test/busybox", "127.0.0.1:5000", "test/busybox", undefined, undefined],
    ["localhost/busybox:1.0", "localhost", "busybox", "1.0", undefined],
    ["localhost:5000/a/b/c@" + D, "localhost:5000", "a/b/c", undefined, D],
    ["registry.example.com:443/x/y:t-1.2_3@" + D, "registry.example.com:443", "x/y", "t-1.2_3", D],
    ["[::1]:5000/x:y", "[::1]:5000", "x", "y", undefined],
    ["quay.io/a__b/c-d.e", "quay.io", "a__b/c-d.e", undefined, undefined],
  ];
  for (const [text, registry, repository, tag, digest] of cases) {
    const ref = parseReference(text);
    assert.equal(ref.registry, registry, text);
    assert.equal(ref.repository, repository, text);
    assert.equal(ref.tag, tag, text);
    assert.equal(ref.digest, digest, text);
  }
});

Deno.test("parseReference() normalises Docker Hub names", () => {
  assert.equal(parseReference("ubuntu").format(), "docker.io/library/ubuntu");
  assert.equal(parseReference("ubuntu:22.04").format(), "docker.io/library/ubuntu:22.04");
  assert.equal(parseReference("user/app").format(), "docker.io/user/app");
  assert.equal(parseReference("index.docker.io/ubuntu").format(), "docker.io/library/ubuntu");
  assert.equal(parseReference("registry-1.docker.io/library/ubuntu").format(), "docker.io/library/ubuntu");
  assert.equal(parseReference("docker.io/library/ubuntu").registry, "docker.io");
});

Deno.test("format() round-trips canonical references", () => {
  for (const text of ["ghcr.io/a/b:c", "127.0.0.1:5000/x@" + D, "example.com/x:y@" + D]) {
    assert.equal(parseReference(text).format(), text);
  }
  const ref = parseReference("ghcr.io/a/b:c");
  assert.equal(
    ref.withDigest(parseReference("x@" + D).digest ?? assert.fail()).format(),
    `ghcr.io/a/b:c@${D}`,
  );
  assert.equal(ref.identifier(), "c");
  assert.equal(parseReference("ghcr.io/a/b").identifier(), "latest");
});

Deno.test("parseReference() rejects malformed references with REFERENCE_INVALID", () => {
  const bad = [
    "",
    "UPPER/case",
    "ghcr.io/Upper",
    "ghcr.io/a//b",
    "ghcr.io/a/b:",
    "ghcr.io/a/b:-tag",
    "ghcr.io/a/b@sha256:abc",
    "ghcr.io/a/b@sha512:" + "a".repeat(128),
    "ghcr.io/a b",
    "-host.io/a",
    "ghcr.io:99999/a",
    "ghcr.io/",
    "a/" + "b".repeat(300),
    "ghcr.io/a/b:" + "t".repeat(129),
    "ghcr.io/a/b@" + D.toUpperCase(),
  ];
  for (const text of bad) {
    assert.throws(() => parseReference(text), (e: unknown) => {
      assert.ok(e instanceof DangerzoneError, text);
      assert.equal(e.code, "REFERENCE_INVALID", text);
      return true;
    });
  }
});
