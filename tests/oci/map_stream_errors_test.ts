/**
 * `mapStreamErrors()`: the same chunks, errors mapped, the self-verifying mark kept only when the source had it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DangerzoneError, isDangerzoneError } from "../../src/errors.ts";
import { parseDigest } from "../../src/oci/digest.ts";
import { mapStreamErrors } from "../../src/oci/map_stream_errors.ts";
import { isSelfVerifying, markSelfVerifying } from "../../src/oci/verify_stream.ts";

const expected = { digest: parseDigest(`sha256:${"a".repeat(64)}`), size: 3 };

function failingAfter(chunks: Uint8Array[], error: unknown): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[i++];
      if (chunk === undefined) controller.error(error);
      else controller.enqueue(chunk);
    },
  });
}

Deno.test("mapStreamErrors() passes the chunks through and maps the source's error", async () => {
  const source = failingAfter([new Uint8Array([1, 2]), new Uint8Array([3])], new Error("boom"));
  const seen: unknown[] = [];
  const out = mapStreamErrors(source, expected, (err) => {
    seen.push(err);
    return new DangerzoneError("ARCHIVE_INVALID", "renamed", { cause: err });
  });
  const reader = out.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1, 2]));
  assert.deepEqual((await reader.read()).value, new Uint8Array([3]));
  await assert.rejects(reader.read(), (e) => isDangerzoneError(e, "ARCHIVE_INVALID"));
  assert.equal(seen.length, 1);
  assert.equal((seen[0] as Error).message, "boom");
});

Deno.test("mapStreamErrors() keeps a self-verifying mark for the same descriptor, and adds none", () => {
  const marked = markSelfVerifying(failingAfter([], new Error("x")), expected);
  assert.equal(isSelfVerifying(mapStreamErrors(marked, expected, (e) => e), expected), true);
  assert.equal(
    isSelfVerifying(mapStreamErrors(failingAfter([], new Error("x")), expected, (e) => e), expected),
    false,
  );
});
