import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BlobVerifier, CountingVerifier, verifyStream } from "../../src/oci/verify_stream.ts";
import { sha256Digest } from "../../src/oci/digest.ts";
import { isDangerzoneError } from "../../src/errors.ts";

const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7919 + 13) % 251);

function chunks(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= data.length) return c.close();
      c.enqueue(data.slice(off, off + size));
      off += size;
    },
  });
}

Deno.test("verifyStream() passes matching bytes through unchanged", async () => {
  const digest = await sha256Digest(bytes);
  const out = new Uint8Array(
    await new Response(chunks(bytes, 7777).pipeThrough(verifyStream({ digest, size: bytes.length })))
      .arrayBuffer(),
  );
  assert.deepEqual(out, bytes);
});

Deno.test("verifyStream() errors with DIGEST_MISMATCH at the end for wrong bytes", async () => {
  const digest = await sha256Digest(bytes);
  const wrong = bytes.slice();
  wrong[500] = (wrong[500] ?? 0) ^ 1;
  await assert.rejects(
    new Response(chunks(wrong, 4096).pipeThrough(verifyStream({ digest, size: bytes.length }))).arrayBuffer(),
    (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"),
  );
});

Deno.test("verifyStream() errors with SIZE_MISMATCH for a short body", async () => {
  const digest = await sha256Digest(bytes);
  await assert.rejects(
    new Response(
      chunks(bytes.subarray(0, 1000), 100).pipeThrough(verifyStream({ digest, size: bytes.length })),
    )
      .arrayBuffer(),
    (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"),
  );
});

Deno.test("verifyStream() errors with SIZE_MISMATCH as soon as bytes exceed the size", async () => {
  const digest = await sha256Digest(bytes);
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled++;
      c.enqueue(new Uint8Array(10_000));
    },
  });
  await assert.rejects(
    new Response(endless.pipeThrough(verifyStream({ digest, size: 25_000 }))).arrayBuffer(),
    (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"),
  );
  assert.ok(pulled < 10, `pulled ${pulled} chunks`);
});

Deno.test("BlobVerifier accepts bytes fed in pieces (resume) and rejects a second finish", async () => {
  const v = new BlobVerifier({ digest: await sha256Digest(bytes), size: bytes.length });
  v.update(bytes.subarray(0, 12345));
  v.update(bytes.subarray(12345));
  assert.equal(v.count, bytes.length);
  v.finish();
  assert.throws(() => v.finish(), (e: unknown) => isDangerzoneError(e, "INTERNAL"));
});

Deno.test("CountingVerifier fails SIZE_MISMATCH as soon as the count exceeds the size", async () => {
  const hello = new TextEncoder().encode("hello");
  const v = new CountingVerifier({ digest: await sha256Digest(hello), size: hello.length });
  v.add(3);
  assert.throws(() => v.add(3), (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"));
});

Deno.test("CountingVerifier checks size and the externally computed digest at the end", async () => {
  const hello = new TextEncoder().encode("hello");
  const expected = { digest: await sha256Digest(hello), size: hello.length };
  const hex = createHash("sha256").update(hello).digest("hex");
  const ok = new CountingVerifier(expected);
  ok.add(5);
  ok.finish(hex);
  const short = new CountingVerifier(expected);
  short.add(4);
  assert.throws(() => short.finish(hex), (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"));
  const wrong = new CountingVerifier(expected);
  wrong.add(5);
  assert.throws(() => wrong.finish("0".repeat(64)), (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"));
});
