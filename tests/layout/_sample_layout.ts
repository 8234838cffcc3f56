/**
 * Test-only: a small but real OCI image (gzip tar layer, config, manifest) plus a cosign-style
 * signature manifest, written into an {@linkcode OciLayoutDir}, with the `index.json` /
 * `dangerzone.json` pair of an air-gapped archive.
 *
 * @module
 */
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { sha256Digest } from "../../src/oci/digest.ts";
import { MediaType } from "../../src/oci/media_types.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";
import { rawTar } from "./_tar_fixture.ts";

const enc = new TextEncoder();

/** A sample image in a layout. */
export interface SampleLayout {
  /** The layout. */
  dir: OciLayoutDir;
  /** Image manifest descriptor (kind image). */
  image: Descriptor;
  /** Signature manifest descriptor (kind sigs). */
  signatures: Descriptor;
  /** Every blob descriptor (manifests, configs, layers). */
  blobs: Descriptor[];
  /** Exact `index.json` bytes (image only). */
  indexJson: Uint8Array;
  /** Exact `dangerzone.json` bytes (full index). */
  dangerzoneJson: Uint8Array;
}

async function descriptorOf(mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
  return { mediaType, digest: await sha256Digest(bytes), size: bytes.length };
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Writes the sample into a new layout at `path`. `layerBytes` adds random bytes to the layer file. */
export async function makeSampleLayout(
  path: string,
  options: { layerBytes?: number } = {},
): Promise<SampleLayout> {
  const dir = await OciLayoutDir.create(path);
  const content = new Uint8Array(options.layerBytes ?? 3000);
  for (let off = 0; off < content.length; off += 65536) {
    crypto.getRandomValues(content.subarray(off, Math.min(off + 65536, content.length)));
  }
  const layerTar = rawTar([{ name: "hello.bin", body: content }]);
  const layer = await gzip(layerTar);
  const layerDesc = await descriptorOf(MediaType.OCI_LAYER_TAR_GZIP, layer);
  const config = enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [await sha256Digest(layerTar)] },
  }));
  const configDesc = await descriptorOf(MediaType.OCI_CONFIG, config);
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: configDesc,
    layers: [layerDesc],
  }));
  const imageDesc = await descriptorOf(MediaType.OCI_MANIFEST, manifest);

  const payload = enc.encode(JSON.stringify({
    critical: {
      identity: { "docker-reference": "registry.test/sample" },
      image: { "docker-manifest-digest": imageDesc.digest },
      type: "cosign container image signature",
    },
    optional: null,
  }));
  const payloadDesc: Descriptor = {
    ...await descriptorOf(MediaType.COSIGN_SIMPLE_SIGNING, payload),
    annotations: { "dev.cosignproject.cosign/signature": "MEUCIQ==" },
  };
  const sigConfig = enc.encode(
    JSON.stringify({ architecture: "", os: "", config: {}, rootfs: { type: "layers" } }),
  );
  const sigConfigDesc = await descriptorOf(MediaType.OCI_CONFIG, sigConfig);
  const sigManifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: sigConfigDesc,
    layers: [payloadDesc],
  }));
  const sigDesc = await descriptorOf(MediaType.OCI_MANIFEST, sigManifest);

  for (
    const [desc, bytes] of [[layerDesc, layer], [configDesc, config], [payloadDesc, payload], [
      sigConfigDesc,
      sigConfig,
    ]] as const
  ) {
    await dir.putBlob(desc, new Blob([bytes as Uint8Array<ArrayBuffer>]).stream());
  }
  await dir.putManifest(imageDesc, manifest);
  await dir.putManifest(sigDesc, sigManifest);

  const image = { ...imageDesc, annotations: { kind: "dev.cosignproject.cosign/image" } };
  const signatures = { ...sigDesc, annotations: { kind: "dev.cosignproject.cosign/sigs" } };
  const full = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [image, signatures] };
  const dangerzoneJson = enc.encode(JSON.stringify(full));
  const indexJson = enc.encode(JSON.stringify({ ...full, manifests: [image] }));
  await dir.writeMetadata("dangerzone.json", dangerzoneJson);
  await dir.writeIndex(indexJson);
  return {
    dir,
    image,
    signatures,
    blobs: [layerDesc, configDesc, imageDesc, payloadDesc, sigConfigDesc, sigDesc],
    indexJson,
    dangerzoneJson,
  };
}
