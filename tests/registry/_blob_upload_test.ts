/**
 * `releasedChunks()`: an upload body made of our own buffers, each released (detached) once the next-but-one
 * chunk is asked for, so that a 1 GiB upload does not leave ~64 MB of sent chunks to a later garbage
 * collection; a stream that is not a byte stream passes through, its errors reported.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseDigest } from "../../src/oci/digest.ts";
import { releasedChunks } from "../../src/registry/_blob_upload.ts";

const MiB = 1024 * 1024;
const desc = {
  mediaType: "application/octet-stream",
  digest: parseDigest(`sha256:${"b".repeat(64)}`),
  size: 3 * MiB,
};

function byteSource(total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const view = controller.byobRequest?.view;
      if (view === null || view === undefined || sent >= total) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const n = Math.min(view.byteLength, total - sent);
      new Uint8Array(view.buffer, view.byteOffset, n).fill(7);
      sent += n;
      controller.byobRequest?.respond(n);
    },
  });
}

Deno.test("releasedChunks() releases each chunk once the one after it was taken; the bytes are intact", async () => {
  const reader = releasedChunks(byteSource(3 * MiB), desc, undefined).getReader();
  const first = (await reader.read()).value;
  const second = (await reader.read()).value;
  assert.ok(first !== undefined && second !== undefined);
  assert.equal(first.byteLength, MiB);
  assert.ok(first.every((b) => b === 7));
  const third = (await reader.read()).value;
  assert.equal(third?.byteLength, MiB);
  // by the third pull the first chunk had long been handed over: released
  assert.equal(first.buffer.byteLength, 0);
  assert.equal(second.byteLength, MiB);
  assert.equal((await reader.read()).done, true);
});

Deno.test("releasedChunks() passes a non-byte stream through and reports its error", async () => {
  const boom = new Error("source failed");
  let pulls = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulls++ === 0) controller.enqueue(new Uint8Array([1]));
      else controller.error(boom);
    },
  });
  const seen: unknown[] = [];
  const reader = releasedChunks(source, desc, (e) => seen.push(e)).getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
  await assert.rejects(reader.read(), (e) => e === boom);
  assert.deepEqual(seen, [boom]);
});
