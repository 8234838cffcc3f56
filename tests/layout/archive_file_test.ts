/**
 * `OciArchiveFile`: the single pass over an archive's headers (seeking over large blobs, hashing
 * small ones, every refusal of the shared walk) and verified reads by offset afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { OciArchiveFile, SMALL_BLOB_BYTES } from "../../src/layout/archive_file.ts";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { digestFromHex } from "../../src/oci/digest.ts";
import { type RawEntry, rawTar, sha256Hex } from "./_tar_fixture.ts";

const enc = new TextEncoder();
const LAYOUT = enc.encode('{"imageLayoutVersion":"1.0.0"}');
const INDEX = enc.encode('{"schemaVersion":2,"manifests":[]}');

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(off + 65536, n)));
  }
  return out;
}

async function blobEntry(
  body: Uint8Array,
  nameOf?: Uint8Array,
): Promise<{ entry: RawEntry; desc: Descriptor }> {
  const hex = await sha256Hex(nameOf ?? body);
  return {
    entry: { name: `./blobs/sha256/${hex}`, body },
    desc: { mediaType: "application/octet-stream", digest: digestFromHex(hex), size: body.length },
  };
}

function archive(blobs: RawEntry[], extra: RawEntry[] = []): Uint8Array {
  return rawTar([
    { name: "./", type: "5" },
    { name: "./blobs/", type: "5" },
    { name: "./blobs/sha256/", type: "5" },
    ...blobs,
    ...extra,
    { name: "./index.json", body: INDEX },
    { name: "./oci-layout", body: LAYOUT },
  ]);
}

async function write(bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dz-archive-file-" });
  const path = join(dir, "a.tar");
  await Deno.writeFile(path, bytes);
  return path;
}

function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof DangerzoneError && e.code === code;
}

Deno.test("OciArchiveFile.open() walks in place: small blobs hashed, a large one located; reads are verified", async () => {
  const small = await blobEntry(enc.encode('{"small":true}'));
  const large = await blobEntry(random(SMALL_BLOB_BYTES + 3000));
  const path = await write(archive([small.entry, large.entry]));
  using file = await OciArchiveFile.open(path);
  assert.equal(file.blobCount, 2);
  assert.deepEqual(file.untrustedIndexJson, INDEX);
  assert.equal(await file.statBlob(large.desc.digest), large.desc.size);
  assert.deepEqual(await file.getManifest(small.desc), small.entry.body);
  const read = new Uint8Array(await new Response(await file.getBlob(large.desc)).arrayBuffer());
  assert.deepEqual(read, large.entry.body);
  assert.equal(await file.hasBlob(large.desc), true);
  await Deno.remove(join(path, ".."), { recursive: true });
});

Deno.test("OciArchiveFile.open() does not read a large blob: wrong bytes are caught when it is read (DIGEST_MISMATCH)", async () => {
  const body = random(SMALL_BLOB_BYTES + 10);
  const wrong = await blobEntry(body, enc.encode("other content"));
  const path = await write(archive([wrong.entry]));
  using file = await OciArchiveFile.open(path);
  await assert.rejects(
    new Response(await file.getBlob(wrong.desc)).arrayBuffer(),
    isCode("DIGEST_MISMATCH"),
  );
  assert.equal(await file.hasBlob(wrong.desc), false);
  await Deno.remove(join(path, ".."), { recursive: true });
});

Deno.test("OciArchiveFile.open() refuses a small blob whose bytes do not hash to its name (ARCHIVE_INVALID)", async () => {
  const wrong = await blobEntry(enc.encode("abc"), enc.encode("abd"));
  const path = await write(archive([wrong.entry]));
  await assert.rejects(OciArchiveFile.open(path), isCode("ARCHIVE_INVALID"));
  await Deno.remove(join(path, ".."), { recursive: true });
});

Deno.test("OciArchiveFile.open() refuses an archive truncated inside a large (seeked-over) blob", async () => {
  const large = await blobEntry(random(SMALL_BLOB_BYTES + 4096));
  const whole = archive([large.entry]);
  const path = await write(whole.subarray(0, 3 * 512 + 512 + SMALL_BLOB_BYTES));
  await assert.rejects(OciArchiveFile.open(path), isCode("ARCHIVE_INVALID"));
  await Deno.remove(join(path, ".."), { recursive: true });
});

Deno.test("OciArchiveFile.open() applies the walk's refusals (a symlink, a duplicate) and refuses a non-file", async () => {
  const small = await blobEntry(enc.encode("x"));
  for (
    const extra of [
      [{ name: "./blobs/sha256/" + "a".repeat(64), type: "2", linkname: "/etc/passwd" }],
      [small.entry],
    ]
  ) {
    const path = await write(archive([small.entry], extra));
    await assert.rejects(OciArchiveFile.open(path), isCode("ARCHIVE_INVALID"));
    await Deno.remove(join(path, ".."), { recursive: true });
  }
  const dir = await Deno.makeTempDir();
  await assert.rejects(OciArchiveFile.open(dir), isCode("ARCHIVE_INVALID"));
  await Deno.remove(dir);
});
