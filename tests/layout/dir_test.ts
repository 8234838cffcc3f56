import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";
import { sha256Digest } from "../../src/oci/digest.ts";
import { isSelfVerifying } from "../../src/oci/verify_stream.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { makeSampleLayout } from "./_sample_layout.ts";

const enc = new TextEncoder();

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dz-dir-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function code(c: string): (err: unknown) => boolean {
  return (err: unknown) => err instanceof DangerzoneError && err.code === c;
}

async function entries(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) out.push(e.name);
  return out.sort();
}

async function blobDesc(bytes: Uint8Array) {
  return { mediaType: "application/octet-stream", digest: await sha256Digest(bytes), size: bytes.length };
}

Deno.test("OciLayoutDir.create() writes oci-layout and an empty index.json exactly like cosign save", async () => {
  await withTemp(async (tmp) => {
    await OciLayoutDir.create(tmp);
    assert.equal(await Deno.readTextFile(`${tmp}/oci-layout`), '{\n    "imageLayoutVersion": "1.0.0"\n}');
    const dir = await OciLayoutDir.open(tmp);
    assert.deepEqual((await dir.readIndex()).index.manifests, []);
    assert.deepEqual(await entries(tmp), ["blobs", "index.json", "oci-layout"]);
  });
});

Deno.test("OciLayoutDir.open() refuses a directory without a valid oci-layout", async () => {
  await withTemp(async (tmp) => {
    await assert.rejects(OciLayoutDir.open(tmp), code("ARCHIVE_INVALID"));
    await Deno.writeTextFile(`${tmp}/oci-layout`, '{"imageLayoutVersion":"9"}');
    await assert.rejects(OciLayoutDir.open(tmp), code("ARCHIVE_INVALID"));
  });
});

Deno.test("OciLayoutDir.putBlob() verifies the stream and leaves nothing behind on a digest mismatch", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const desc = await blobDesc(enc.encode("right"));
    await assert.rejects(
      dir.putBlob(desc, new Blob([enc.encode("wrong")]).stream()),
      code("DIGEST_MISMATCH"),
    );
    await assert.rejects(dir.putBlob(desc, new Blob([enc.encode("right!")]).stream()), code("SIZE_MISMATCH"));
    await assert.rejects(dir.putBlob(desc, new Blob([enc.encode("rig")]).stream()), code("SIZE_MISMATCH"));
    assert.deepEqual(await entries(`${tmp}/blobs/sha256`), []);
  });
});

Deno.test("OciLayoutDir.putBlob() replaces an existing same-size blob with wrong bytes (never trusts size)", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const bytes = enc.encode("the real content");
    const desc = await blobDesc(bytes);
    await Deno.writeFile(dir.blobPath(desc.digest), enc.encode("the fake content"));
    assert.equal(await dir.hasBlob(desc), false);
    await dir.putBlob(desc, new Blob([bytes]).stream());
    assert.deepEqual(await Deno.readFile(dir.blobPath(desc.digest)), bytes);
    assert.equal(await dir.hasBlob(desc), true);
    assert.deepEqual(await entries(`${tmp}/blobs/sha256`), [desc.digest.slice(7)]);
  });
});

Deno.test("OciLayoutDir.getBlob() streams verified bytes and errors at EOF on tampered content", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).fill(9);
    const desc = await blobDesc(bytes);
    await dir.putBlob(desc, new Blob([bytes]).stream());
    assert.deepEqual(new Uint8Array(await new Response(await dir.getBlob(desc)).arrayBuffer()), bytes);
    const tampered = bytes.slice();
    tampered[tampered.length - 1] = 0;
    await Deno.writeFile(dir.blobPath(desc.digest), tampered);
    const chunks: Uint8Array[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of await dir.getBlob(desc)) chunks.push(c);
      })(),
      code("DIGEST_MISMATCH"),
    );
    assert.ok(chunks.length > 0, "bytes flow before the EOF check");
    await Deno.writeFile(dir.blobPath(desc.digest), bytes.subarray(1));
    await assert.rejects(dir.getBlob(desc), code("SIZE_MISMATCH"));
    await Deno.remove(dir.blobPath(desc.digest));
    await assert.rejects(dir.getBlob(desc), code("ARCHIVE_INVALID"));
  });
});

Deno.test("OciLayoutDir.getBlob() carries the shared self-verifying mark for its descriptor only", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const bytes = enc.encode("marked blob");
    const desc = await blobDesc(bytes);
    await dir.putBlob(desc, new Blob([bytes]).stream());
    const stream = await dir.getBlob(desc);
    // the mark the archive stream and OciArchiveWriter look for (src/oci/verify_stream.ts)
    assert.equal(isSelfVerifying(stream, desc), true);
    assert.equal(isSelfVerifying(stream, { ...desc, size: desc.size + 1 }), false);
    assert.equal(
      isSelfVerifying(stream, { ...desc, digest: await sha256Digest(enc.encode("other")) }),
      false,
    );
    await stream.cancel();
  });
});

Deno.test("OciLayoutDir.getBlob() cancel closes the file (no leaked resource)", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const bytes = new Uint8Array(4 * 1024 * 1024);
    const desc = await blobDesc(bytes);
    await dir.putBlob(desc, new Blob([bytes]).stream());
    const reader = (await dir.getBlob(desc)).getReader();
    await reader.read();
    await reader.cancel();
  });
});

Deno.test("OciLayoutDir.getBlob() refuses a blob that is a symbolic link", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const bytes = enc.encode("secret");
    const desc = await blobDesc(bytes);
    await Deno.writeFile(`${tmp}/outside`, bytes);
    await Deno.symlink(`${tmp}/outside`, dir.blobPath(desc.digest));
    await assert.rejects(dir.getBlob(desc), code("ARCHIVE_INVALID"));
    await assert.rejects(dir.getManifest(desc), code("ARCHIVE_INVALID"));
  });
});

Deno.test("OciLayoutDir.putManifest() stores exact bytes, tags them in index.json; resolve() finds tag and digest", async () => {
  await withTemp(async (tmp) => {
    const dir = await OciLayoutDir.create(tmp);
    const raw = enc.encode(
      '{ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",  "config": {"mediaType":"x","digest":"sha256:' +
        "a".repeat(64) + '","size":1}, "layers": [] }',
    );
    const desc = { ...(await blobDesc(raw)), mediaType: "application/vnd.oci.image.manifest.v1+json" };
    await dir.putManifest(desc, raw, "v1");
    assert.deepEqual(await dir.getManifest(desc), raw);
    const byTag = await dir.resolve(parseReference("registry.test/x:v1"));
    assert.equal(byTag.digest, desc.digest);
    const byDigest = await dir.resolve(parseReference(`registry.test/x@${desc.digest}`));
    assert.equal(byDigest.size, raw.length);
    await assert.rejects(dir.resolve(parseReference("registry.test/x:v2")), code("ARCHIVE_INVALID"));
    await assert.rejects(dir.putManifest({ ...desc, size: 1 }, raw), code("SIZE_MISMATCH"));
  });
});

Deno.test("OciLayoutDir.readIndex()/writeIndex() keep the exact bytes; duplicate keys are refused", async () => {
  await withTemp(async (tmp) => {
    const s = await makeSampleLayout(tmp);
    const { raw } = await s.dir.readIndex();
    assert.deepEqual(raw, s.indexJson);
    const spaced = enc.encode(`  ${new TextDecoder().decode(s.indexJson)}  \n`);
    await s.dir.writeIndex(spaced);
    assert.deepEqual(await Deno.readFile(`${tmp}/index.json`), spaced);
    await Deno.writeTextFile(`${tmp}/index.json`, '{"schemaVersion":2,"manifests":[],"manifests":[]}');
    await assert.rejects(s.dir.readIndex(), code("ARCHIVE_INVALID"));
    assert.deepEqual(await s.dir.readMetadata("dangerzone.json"), s.dangerzoneJson);
  });
});
