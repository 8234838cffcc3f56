/**
 * The pure planning of parallel Range downloads: every byte in exactly one chunk, the exact
 * `Content-Range` check, the contiguous prefix, and refusal of every resume record that does not fit.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  chunkSizeFor,
  contentRangeMatches,
  contiguousEnd,
  encodeRecord,
  parseRecord,
  planChunks,
  rangeHeader,
  receivedFromPrefix,
} from "../../src/registry/_range_plan.ts";

const MIB = 1024 * 1024;
const DIGEST = `sha256:${"ab".repeat(32)}`;

Deno.test("planChunks() covers every byte exactly once, in order", () => {
  for (const [size, chunk] of [[0, 5], [1, 5], [5, 5], [6, 5], [10, 5], [1_000_003, 4096], [7, 1]]) {
    const chunks = planChunks(size ?? 0, chunk ?? 1);
    const seen = new Uint8Array(size ?? 0);
    let next = 0;
    for (const c of chunks) {
      assert.equal(c.start, next, "no gap, no overlap");
      assert.ok(c.end > c.start && c.end - c.start <= (chunk ?? 1));
      for (let i = c.start; i < c.end; i++) seen[i] = (seen[i] ?? 0) + 1;
      next = c.end;
    }
    assert.equal(next, size);
    assert.ok(seen.every((x) => x === 1));
  }
  assert.throws(() => planChunks(10, 0), RangeError);
  assert.throws(() => planChunks(-1, 4), RangeError);
});

Deno.test("chunkSizeFor() gives about four chunks per connection within 4-64 MiB", () => {
  assert.equal(chunkSizeFor(128 * MIB, 4), 8 * MIB);
  assert.equal(chunkSizeFor(20 * MIB, 4), 4 * MIB);
  assert.equal(chunkSizeFor(8 * 1024 * MIB, 4), 64 * MIB);
  assert.equal(chunkSizeFor(100 * MIB + 1, 2) % MIB, 0);
});

Deno.test("rangeHeader() asks for a closed range; contentRangeMatches() accepts only exactly that range", () => {
  const range = { start: 100, end: 200 };
  assert.equal(rangeHeader(range.start, range.end), "bytes=100-199");
  assert.ok(contentRangeMatches("bytes 100-199/1000", range, 1000));
  assert.ok(contentRangeMatches(" bytes 100-199/1000 ", range, 1000));
  for (
    const bad of [
      null,
      "",
      "bytes 101-199/1000",
      "bytes 100-198/1000",
      "bytes 100-200/1000",
      "bytes 100-199/999",
      "bytes 100-199/*",
      "bytes */1000",
      "items 100-199/1000",
      "bytes 100-199/1000, bytes 0-1/1000",
    ]
  ) {
    assert.equal(contentRangeMatches(bad, range, 1000), false, String(bad));
  }
});

Deno.test("contiguousEnd() stops at the first missing byte; receivedFromPrefix() is its inverse", () => {
  const chunks = planChunks(25, 10);
  assert.equal(contiguousEnd(chunks, [0, 10, 5]), 0);
  assert.equal(contiguousEnd(chunks, [10, 3, 5]), 13);
  assert.equal(contiguousEnd(chunks, [10, 10, 5]), 25);
  assert.equal(contiguousEnd(chunks, [10, 10, 4], 20), 24);
  assert.deepEqual(receivedFromPrefix(chunks, 13), [10, 3, 0]);
  assert.equal(contiguousEnd(chunks, receivedFromPrefix(chunks, 13)), 13);
});

Deno.test("parseRecord() accepts its own record and refuses every record that does not fit", () => {
  const size = 25;
  const good = encodeRecord(DIGEST, 10, size, [10, 4, 0]);
  const expected = { digest: DIGEST, size, fileSize: 14 };
  assert.deepEqual(parseRecord(good, expected), { chunkSize: 10, received: [10, 4, 0] });
  const record = (fields: Record<string, unknown>) =>
    JSON.stringify({ version: 1, digest: DIGEST, size, chunkSize: 10, received: [10, 4, 0], ...fields });
  const refused: [string, string][] = [
    ["not JSON", "{"],
    ["an array", "[]"],
    ["null", "null"],
    ["another version", record({ version: 2 })],
    ["another blob", record({ digest: `sha256:${"cd".repeat(32)}` })],
    ["another size", record({ size: 26 })],
    ["a zero chunk size", record({ chunkSize: 0 })],
    ["a fractional chunk size", record({ chunkSize: 2.5 })],
    ["a chunk size as text", record({ chunkSize: "10" })],
    ["too few chunks", record({ received: [10, 4] })],
    ["too many chunks", record({ received: [10, 4, 0, 0] })],
    ["a negative count", record({ received: [10, -1, 0] })],
    ["more than a chunk holds", record({ received: [11, 4, 0] })],
    ["a fractional count", record({ received: [10, 1.5, 0] })],
    ["a count as text", record({ received: ["10", 4, 0] })],
    ["bytes past the file's end", record({ received: [10, 4, 2] })],
  ];
  for (const [name, text] of refused) assert.equal(parseRecord(text, expected), undefined, name);
  const manyChunks = JSON.stringify({
    version: 1,
    digest: DIGEST,
    size: 10 * MIB,
    chunkSize: 1,
    received: [],
  });
  assert.equal(parseRecord(manyChunks, { digest: DIGEST, size: 10 * MIB, fileSize: 0 }), undefined);
  assert.equal(
    parseRecord(good, { ...expected, fileSize: 13 }),
    undefined,
    "the file is shorter than claimed",
  );
});
