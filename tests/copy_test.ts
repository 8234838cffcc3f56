/**
 * `copyImage()`: the one copy path, against the real registry, an OCI layout directory and a real podman
 * fed an oci-archive stream generated on the fly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { copyImage, type CopyPlan, type CopyProgress } from "../src/copy.ts";
import { DangerzoneError } from "../src/errors.ts";
import { ImageTarStream } from "../src/layout/image_tar_stream.ts";
import { OciLayoutDir } from "../src/layout/dir.ts";
import type { ContentStore } from "../src/oci/content_store.ts";
import type { Descriptor } from "../src/oci/descriptor.ts";
import { sha256Digest } from "../src/oci/digest.ts";
import { MediaType } from "../src/oci/media_types.ts";
import { BlobVerifier, isSelfVerifying, markSelfVerifying } from "../src/oci/verify_stream.ts";
import { parseReference } from "../src/oci/reference.ts";
import { RegistryClient } from "../src/registry/client.ts";
import { PodmanRuntime } from "../src/runtime/podman.ts";
import { registrySource } from "../src/update/_registry_source.ts";
import { buildBusyboxImage, buildMultiArchImage, pushImage } from "./_helpers/images.ts";
import { startPodman } from "./_helpers/podman.ts";
import { makeTempDir } from "./_helpers/process.ts";
import { startRegistry } from "./_helpers/registry.ts";
import { assertValidLayout } from "./_helpers/validate_layout.ts";

const AMD64 = { os: "linux", architecture: "amd64" };

async function rootOf(client: RegistryClient, ref: string): Promise<Descriptor> {
  return (await client.getManifest(parseReference(ref))).descriptor;
}

Deno.test("copyImage() copies one platform of an index from the registry into a layout, verified", async () => {
  await using tmp = makeTempDir("copy");
  await using reg = await startRegistry({ mode: "plain" });
  const index = await buildMultiArchImage(join(tmp.path, "multi"));
  const pushed = await pushImage(index, reg, { repository: "sandbox/app", tag: "v1" });
  using client = new RegistryClient({ insecureRegistries: [reg.host] });
  const ref = parseReference(pushed.reference);
  const cache = await OciLayoutDir.create(join(tmp.path, "cache"));
  const plans: CopyPlan[] = [];
  const progress: CopyProgress[] = [];
  const copied = await copyImage(registrySource(client, ref), cache, {
    root: await rootOf(client, pushed.reference),
    platform: AMD64,
    tag: "v1",
    onPlan: (p) => void plans.push(p),
    onProgress: (p) => void progress.push(p),
  });
  const amd64 = index.platforms.find((p) => p.platform === "linux/amd64");
  assert.ok(amd64 !== undefined);
  assert.equal(copied.root.descriptor.digest, index.digest);
  assert.equal(copied.manifest.descriptor.digest, amd64.digest);
  assert.equal(copied.copiedBytes, copied.totalBytes);
  assert.equal(plans.length, 1);
  assert.equal(plans[0]?.missing.length, copied.blobs.length);
  assert.equal(progress.at(-1)?.done, copied.totalBytes);
  // the index, the amd64 manifest, its config and layers; nothing of arm64
  const blobs = await cache.listBlobs();
  assert.equal(blobs.length, 2 + copied.blobs.length);
  assert.ok(!blobs.includes(index.platforms[1]?.digest ?? index.digest));
  const { index: listed } = await cache.readIndex();
  assert.deepEqual(listed.manifests.map((m) => m.digest), [index.digest]);
  await assertValidLayout(join(tmp.path, "cache")).catch((err) => {
    // the index lists arm64, whose blobs are deliberately absent: only that may be reported
    if (!String(err).includes(index.platforms[1]?.digest.slice(7, 19) ?? "")) throw err;
  });

  // a second copy re-hashes what is there and copies nothing
  const again = await copyImage(registrySource(client, ref), cache, {
    root: copied.root.descriptor,
    platform: AMD64,
  });
  assert.equal(again.copiedBytes, 0);
});

Deno.test("copyImage() re-downloads a cached blob whose bytes are wrong (never trusted by size)", async () => {
  await using tmp = makeTempDir("copy");
  await using reg = await startRegistry({ mode: "plain" });
  const image = await buildBusyboxImage(join(tmp.path, "img"));
  const pushed = await pushImage(image, reg, { repository: "sandbox/app" });
  using client = new RegistryClient({ insecureRegistries: [reg.host] });
  const ref = parseReference(pushed.reference);
  const cache = await OciLayoutDir.create(join(tmp.path, "cache"));
  const root = await rootOf(client, pushed.reference);
  await copyImage(registrySource(client, ref), cache, { root });
  const layer = image.layerDigests[0];
  assert.ok(layer !== undefined);
  const path = cache.blobPath(layer);
  const bytes = await Deno.readFile(path);
  bytes[100] = (bytes[100] ?? 0) ^ 0xff; // same size, wrong bytes
  await Deno.writeFile(path, bytes);
  const again = await copyImage(registrySource(client, ref), cache, { root });
  assert.ok(again.copiedBytes >= bytes.length);
  assert.equal(await sha256Digest(await Deno.readFile(path)), layer);
});

Deno.test("copyImage() refuses a root whose bytes do not hash to the verified digest", async () => {
  const raw = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }),
  );
  const real = await sha256Digest(raw);
  const claimed = await sha256Digest(new TextEncoder().encode("something else"));
  const src = fakeSource(raw);
  await using tmp = makeTempDir("copy");
  const dst = await OciLayoutDir.create(tmp.path);
  await assert.rejects(
    copyImage(src, dst, { root: { mediaType: MediaType.OCI_INDEX, digest: claimed, size: raw.length } }),
    (err: unknown) => err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH",
  );
  await assert.rejects(
    copyImage(src, dst, { root: { mediaType: MediaType.OCI_INDEX, digest: real, size: raw.length + 1 } }),
    (err: unknown) => err instanceof DangerzoneError && err.code === "SIZE_MISMATCH",
  );
  // an index without a platform to choose
  await assert.rejects(
    copyImage(src, dst, { root: { mediaType: MediaType.OCI_INDEX, digest: real, size: raw.length } }),
    (err: unknown) => err instanceof DangerzoneError && err.code === "USAGE",
  );
  assert.deepEqual(await dst.listBlobs(), []);
});

Deno.test("copyImage() into an archive stream loads into podman, which reports the verified index digest", async () => {
  await using tmp = makeTempDir("copy");
  await using reg = await startRegistry({ mode: "plain" });
  await using pm = await startPodman();
  const index = await buildMultiArchImage(join(tmp.path, "multi"));
  const pushed = await pushImage(index, reg, { repository: "sandbox/app", tag: "v1" });
  using client = new RegistryClient({ insecureRegistries: [reg.host] });
  const ref = parseReference(pushed.reference);
  const cache = await OciLayoutDir.create(join(tmp.path, "cache"));
  const root = await rootOf(client, pushed.reference);
  await copyImage(registrySource(client, ref), cache, { root, platform: AMD64 });

  const runtime = new PodmanRuntime({ env: pm.env });
  const name = `${ref.name()}:staging`;
  const archive = new ImageTarStream(cache);
  const loading = runtime.load(archive.readable);
  await copyImage(cache, archive, { root, platform: AMD64, tag: name });
  await archive.finish();
  const loaded = await loading;
  assert.deepEqual(loaded.names, [name]);
  const digests = await runtime.digestsOf(name);
  assert.ok(digests !== null);
  assert.ok(digests.includes(index.digest), `index digest missing from ${digests.join(",")}`);
  const amd64 = index.platforms.find((p) => p.platform === "linux/amd64");
  assert.ok(digests.includes(amd64?.digest ?? index.digest));
});

Deno.test("copyImage() into an archive stream loads nothing when a cached layer is tampered with", async () => {
  await using tmp = makeTempDir("copy");
  await using reg = await startRegistry({ mode: "plain" });
  await using pm = await startPodman();
  const image = await buildBusyboxImage(join(tmp.path, "img"));
  const pushed = await pushImage(image, reg, { repository: "sandbox/app" });
  using client = new RegistryClient({ insecureRegistries: [reg.host] });
  const ref = parseReference(pushed.reference);
  const cache = await OciLayoutDir.create(join(tmp.path, "cache"));
  const root = await rootOf(client, pushed.reference);
  await copyImage(registrySource(client, ref), cache, { root });
  const layer = image.layerDigests[0];
  assert.ok(layer !== undefined);
  const bytes = await Deno.readFile(cache.blobPath(layer));
  bytes[bytes.length - 2000] = (bytes[bytes.length - 2000] ?? 0) ^ 1;
  await Deno.writeFile(cache.blobPath(layer), bytes);

  const runtime = new PodmanRuntime({ env: pm.env });
  const archive = new ImageTarStream(cache);
  const loading = runtime.load(archive.readable);
  const copying = copyImage(cache, archive, { root, tag: `${ref.name()}:staging` }).then(() =>
    archive.finish()
  );
  copying.catch((err) => archive.abort(err));
  await assert.rejects(
    copying,
    (err: unknown) => err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH",
  );
  await assert.rejects(loading, (err: unknown) => err instanceof DangerzoneError);
  assert.deepEqual(await runtime.list(), []);
});

/** A source whose `getManifest` returns `raw` whatever is asked (a lying store). */
function fakeSource(raw: Uint8Array): ContentStore {
  const no = () => Promise.reject(new Error("not used"));
  return {
    resolve: no,
    getManifest: () => Promise.resolve(raw),
    getBlob: no,
    hasBlob: () => Promise.resolve(false),
    putBlob: no,
    putManifest: no,
  };
}

/** An in-memory image: a manifest with a config and one layer. */
async function memoryImage(): Promise<{ root: Descriptor; raw: Uint8Array; blobs: Map<string, Uint8Array> }> {
  const config = new TextEncoder().encode('{"architecture":"amd64","os":"linux"}');
  const layer = Uint8Array.from({ length: 3 * 1024 * 1024 + 17 }, (_, i) => (i * 13 + (i >> 10)) % 256);
  const configDesc = {
    mediaType: MediaType.OCI_CONFIG,
    digest: await sha256Digest(config),
    size: config.length,
  };
  const layerDesc = {
    mediaType: MediaType.OCI_LAYER_TAR,
    digest: await sha256Digest(layer),
    size: layer.length,
  };
  const raw = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: configDesc,
    layers: [layerDesc],
  }));
  const root = { mediaType: MediaType.OCI_MANIFEST, digest: await sha256Digest(raw), size: raw.length };
  return { root, raw, blobs: new Map([[configDesc.digest, config], [layerDesc.digest, layer]]) };
}

/** A stream of `bytes`: a byte stream, or a default stream of 100 000-byte chunks. */
function streamOf(bytes: Uint8Array, kind: "bytes" | "default"): ReadableStream<Uint8Array> {
  if (kind === "bytes") return new Blob([bytes.slice()]).stream();
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + 100_000));
      off += 100_000;
    },
  });
}

/** A source serving `image`, marking its blob streams self-verifying when `marked`. */
function memorySource(
  image: { raw: Uint8Array; blobs: Map<string, Uint8Array> },
  kind: "bytes" | "default",
  marked: boolean,
): ContentStore {
  const source = fakeSource(image.raw);
  source.getBlob = (desc) => {
    const bytes = image.blobs.get(desc.digest) ?? new Uint8Array();
    const stream = streamOf(bytes, kind);
    return Promise.resolve(marked ? markSelfVerifying(stream, desc) : stream);
  };
  return source;
}

/** A destination that records, per blob, whether its stream was self-verifying, and its bytes. */
function recordingDestination(): ContentStore & {
  seen: Map<string, { marked: boolean; bytes: Uint8Array }>;
} {
  const seen = new Map<string, { marked: boolean; bytes: Uint8Array }>();
  const no = () => Promise.reject(new Error("not used"));
  return {
    seen,
    resolve: no,
    getManifest: no,
    getBlob: no,
    hasBlob: () => Promise.resolve(false),
    async putBlob(desc, stream) {
      const marked = isSelfVerifying(stream, desc);
      seen.set(desc.digest, { marked, bytes: new Uint8Array(await new Response(stream).arrayBuffer()) });
    },
    putManifest: () => Promise.resolve(),
  };
}

Deno.test("copyImage() keeps a self-verifying mark through its progress counting, bytes unaltered", async () => {
  const image = await memoryImage();
  for (const kind of ["bytes", "default"] as const) {
    for (const marked of [true, false]) {
      const dst = recordingDestination();
      let progressed = 0;
      await copyImage(memorySource(image, kind, marked), dst, {
        root: image.root,
        onProgress: (p) => (progressed = p.done),
      });
      assert.equal(dst.seen.size, 2, `${kind} ${marked}`);
      for (const [digest, { marked: kept, bytes }] of dst.seen) {
        assert.equal(kept, marked, `${kind} ${marked} ${digest}`);
        assert.deepEqual(bytes, image.blobs.get(digest));
      }
      assert.equal(progressed, [...image.blobs.values()].reduce((n, b) => n + b.length, 0));
    }
  }
});

Deno.test("copyImage() fails when a marked source errors at its end (the kept mark does not hide it)", async () => {
  const image = await memoryImage();
  for (const kind of ["bytes", "default"] as const) {
    const source = memorySource(image, kind, false);
    source.getBlob = (desc) => {
      const bytes = image.blobs.get(desc.digest) ?? new Uint8Array();
      const verifier = new BlobVerifier(desc);
      // a stream that verifies itself, fed wrong bytes: it must error instead of closing
      const wrong = bytes.slice();
      wrong[0] = (wrong[0] ?? 0) ^ 1;
      const stream = streamOf(wrong, kind).pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, c) {
            verifier.update(chunk);
            c.enqueue(chunk);
          },
          flush: () => verifier.finish(),
        }),
      );
      return Promise.resolve(markSelfVerifying(stream, desc));
    };
    await assert.rejects(
      copyImage(source, recordingDestination(), { root: image.root }),
      (err: unknown) => err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH",
    );
  }
});
