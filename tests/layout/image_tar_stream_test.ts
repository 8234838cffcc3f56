/**
 * `ImageTarStream`: blobs copied by offset from an archive file and hashed once on the way out; a
 * blob that changed since the archive was walked errors the tar before its last chunk and before
 * the tar's end.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { OciArchiveFile } from "../../src/layout/archive_file.ts";
import { ImageTarStream } from "../../src/layout/image_tar_stream.ts";
import { readOciArchive } from "../../src/layout/tar_reader.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { digestFromHex } from "../../src/oci/digest.ts";
import { rawTar, sha256Hex } from "./_tar_fixture.ts";

const enc = new TextEncoder();
const MiB = 1024 * 1024;

async function fixture(
  size: number,
): Promise<{ dir: string; path: string; desc: Descriptor; body: Uint8Array }> {
  const body = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(body.subarray(off, Math.min(off + 65536, size)));
  }
  const hex = await sha256Hex(body);
  const dir = await Deno.makeTempDir({ prefix: "dz-image-tar-" });
  const path = join(dir, "a.tar");
  await Deno.writeFile(
    path,
    rawTar([
      { name: `./blobs/sha256/${hex}`, body },
      { name: "./index.json", body: enc.encode('{"schemaVersion":2,"manifests":[]}') },
      { name: "./oci-layout", body: enc.encode('{"imageLayoutVersion":"1.0.0"}') },
    ]),
  );
  return {
    dir,
    path,
    body,
    desc: { mediaType: "application/octet-stream", digest: digestFromHex(hex), size },
  };
}

async function manifestFor(layer: Descriptor): Promise<{ desc: Descriptor; raw: Uint8Array }> {
  const raw = enc.encode(JSON.stringify({ schemaVersion: 2, layers: [layer] }));
  return {
    raw,
    desc: {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: digestFromHex(await sha256Hex(raw)),
      size: raw.length,
    },
  };
}

async function drain(
  stream: ReadableStream<Uint8Array>,
): Promise<{ bytes: number; copy: Uint8Array[]; error: unknown }> {
  const reader = stream.getReader();
  const copy: Uint8Array[] = [];
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes, copy, error: undefined };
      bytes += value.byteLength;
      copy.push(value.slice()); // chunks are valid only until the next read
    }
  } catch (error) {
    return { bytes, copy, error };
  }
}

Deno.test("ImageTarStream copies a blob from the archive by offset into a tar the strict reader accepts", async () => {
  const f = await fixture(2 * MiB + 123);
  using archive = await OciArchiveFile.open(f.path);
  const progress: number[] = [];
  const tar = new ImageTarStream(archive, { onProgress: (n) => progress.push(n) });
  const out = drain(tar.readable);
  await tar.putBlob(f.desc, await archive.getBlob(f.desc));
  const m = await manifestFor(f.desc);
  await tar.putManifest(m.desc, m.raw, "localhost/app:staging");
  await tar.finish();
  const { copy, error } = await out;
  assert.equal(error, undefined);
  assert.equal(progress.at(-1), f.desc.size);
  const staging = await OciLayoutDir.create(join(f.dir, "staging"));
  const contents = await readOciArchive(new Blob(copy as Uint8Array<ArrayBuffer>[]).stream(), staging);
  assert.equal(contents.blobs.get(f.desc.digest), f.desc.size);
  assert.match(new TextDecoder().decode(contents.untrustedIndexJson), /localhost\/app:staging/);
  await Deno.remove(f.dir, { recursive: true });
});

Deno.test("ImageTarStream errors with DIGEST_MISMATCH before a changed blob's last chunk and the tar's end", async () => {
  const f = await fixture(3 * MiB);
  using archive = await OciArchiveFile.open(f.path); // pass 1 saw the original bytes
  // The blob changes between the walk and the load: its last byte is flipped in place.
  {
    using file = await Deno.open(f.path, { read: true, write: true });
    await file.seek(512 + f.desc.size - 1, Deno.SeekMode.Start);
    await file.write(Uint8Array.of((f.body[f.desc.size - 1] ?? 0) ^ 1));
  }
  const tar = new ImageTarStream(archive);
  const out = drain(tar.readable);
  const put = tar.putBlob(f.desc, await archive.getBlob(f.desc));
  await assert.rejects(put, (e: unknown) => e instanceof DangerzoneError && e.code === "DIGEST_MISMATCH");
  const { bytes, error } = await out;
  assert.ok(error instanceof DangerzoneError && error.code === "DIGEST_MISMATCH", String(error));
  // 2 directory headers + the blob header + all but the last 1 MiB chunk: the runtime never saw the blob's end.
  assert.equal(bytes, 3 * 512 + 2 * MiB);
  await assert.rejects(
    tar.finish(),
    (e: unknown) => e instanceof DangerzoneError && e.code === "DIGEST_MISMATCH",
  );
  await Deno.remove(f.dir, { recursive: true });
});
