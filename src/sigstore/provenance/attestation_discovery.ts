/**
 * Finds the (untrusted) attestations of an image, in a registry or in an OCI layout on disk:
 *
 * - the legacy cosign tag `sha256-<hex>.att`: an image manifest whose layers are DSSE envelopes
 *   (`application/vnd.dsse.envelope.v1+json`) with the Fulcio certificate, chain and Rekor bundle
 *   annotations;
 * - Sigstore bundles (`application/vnd.dev.sigstore.bundle…`) in manifests that refer to the image,
 *   found through the OCI referrers API or, where the registry lacks it, the referrers tag schema
 *   (`sha256-<hex>`): GitHub's build attestations and cosign v3. Both are listed by
 *   `registry/signature_artifacts.ts`, the listing verification and the mirror share: a referrer counts
 *   only when its own manifest names the image as its subject;
 * - in a `cosign save` layout (`oci:DIR`): the `index.json` entries annotated
 *   `kind: dev.cosignproject.cosign/atts` (or `dangerzone.json` of a prepare-archive archive), and
 *   entries whose artifact type is a Sigstore bundle. Only the image's manifest digest and the
 *   attestation blobs are read: a layout without the image's layers is fine, and the image manifest
 *   is checked against its digest when present.
 *
 * Every manifest and blob is checked against its digest and size before use, and sizes and counts
 * are bounded; nothing here is trusted: {@linkcode verifyProvenance} verifies what this returns.
 * Each attestation is judged alone: a malformed attestation manifest or an oversized layer is that
 * attestation's failure (listed in `rejected`), and the others are still returned; only when none is
 * usable does the first failure stop the lookup.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../../errors.ts";
import type { Descriptor } from "../../oci/descriptor.ts";
import type { Digest } from "../../oci/digest.ts";
import { type ImageIndex, type ImageManifest, type Manifest, parseManifest } from "../../oci/manifest.ts";
import { isIndexMediaType, isManifestMediaType } from "../../oci/media_types.ts";
import type { Reference } from "../../oci/reference.ts";
import { OciLayoutDir, REF_NAME_ANNOTATION } from "../../layout/dir.ts";
import type { RegistryClient } from "../../registry/client.ts";
import { isBundleMediaType, legacyArtifactTag, listArtifactsOf } from "../../registry/signature_artifacts.ts";
import { MAX_BUNDLE_BYTES } from "../formats/bundle.ts";
import { MAX_ATTESTATION_BYTES } from "./cosign_attestation.ts";
import type { UntrustedAttestation } from "./provenance.ts";

/** Where the image is. */
export type ImageLocation =
  | { readonly kind: "registry"; readonly client: RegistryClient; readonly ref: Reference }
  | { readonly kind: "layout"; readonly path: string };

/** Options of {@linkcode discoverAttestations}. */
export interface DiscoverAttestationsOptions {
  /** Most attestations collected (default 64); more is `SIZE_LIMIT_EXCEEDED`. */
  readonly maxAttestations?: number;
  /** Receives one line per source looked at (for `--debug`). */
  readonly onLog?: (line: string) => void;
}

/** The image and its untrusted attestations. */
export interface DiscoveredAttestations {
  /** The image digest (computed from the manifest bytes for a registry; from `index.json` for a layout). */
  readonly imageDigest: Digest;
  /** The image's media type (index or manifest). */
  readonly mediaType: string;
  /** How to show the image: `registry/repository` or `oci:DIR`. */
  readonly name: string;
  /** The tag the image was found by, if any (`latest` for a registry reference without tag or digest). */
  readonly tag: string | undefined;
  /** The attestations found, unverified. */
  readonly attestations: readonly UntrustedAttestation[];
  /** Attestations refused for their own malformed or oversized input (the others are still judged). */
  readonly rejected: readonly DangerzoneError[];
}

/** `kind` annotation values of `cosign save`. */
export const COSIGN_KIND = {
  annotation: "kind",
  image: "dev.cosignproject.cosign/image",
  imageIndex: "dev.cosignproject.cosign/imageIndex",
  signatures: "dev.cosignproject.cosign/sigs",
  attestations: "dev.cosignproject.cosign/atts",
} as const;

const DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";
const DEFAULT_MAX_ATTESTATIONS = 64;

/**
 * Finds the attestations of the image at `location`.
 *
 * @example
 * ```ts
 * import { discoverAttestations } from "./attestation_discovery.ts";
 * const found = await discoverAttestations({ kind: "layout", path: "./image-layout" });
 * console.log(found.imageDigest, found.attestations.length);
 * ```
 */
export async function discoverAttestations(
  location: ImageLocation,
  options: DiscoverAttestationsOptions = {},
): Promise<DiscoveredAttestations> {
  const collector = new Collector(options.maxAttestations ?? DEFAULT_MAX_ATTESTATIONS);
  return location.kind === "registry"
    ? await fromRegistry(location.client, location.ref, collector, options.onLog)
    : await fromLayout(location.path, collector, options.onLog);
}

class Collector {
  readonly items: UntrustedAttestation[] = [];
  readonly rejected: DangerzoneError[] = [];
  constructor(readonly max: number) {}

  /** Runs `read` for one attestation source; its `ATTESTATION_INVALID` is recorded, not thrown. */
  async judgeAlone(read: () => Promise<void>, log: ((line: string) => void) | undefined): Promise<void> {
    try {
      await read();
    } catch (err) {
      if (!isDangerzoneError(err, "ATTESTATION_INVALID")) throw err;
      this.reject(err, log);
    }
  }

  /** Records one attestation's own failure; the others are still judged. */
  reject(err: DangerzoneError, log: ((line: string) => void) | undefined): void {
    log?.(`rejected: ${err.message}`);
    this.rejected.push(err);
  }

  /** The attestations found; when none is usable but some were refused, the first refusal. */
  found(): UntrustedAttestation[] {
    const first = this.rejected[0];
    if (this.items.length === 0 && first !== undefined) throw first;
    return this.items;
  }

  add(item: UntrustedAttestation): void {
    if (this.items.length >= this.max) {
      throw new DangerzoneError("SIZE_LIMIT_EXCEEDED", `the image has more than ${this.max} attestations`, {
        hint: "this is not a normal image; refusing to process it",
      });
    }
    this.items.push(item);
  }
}

type BlobReader = (desc: Descriptor) => Promise<Uint8Array>;

async function fromRegistry(
  client: RegistryClient,
  ref: Reference,
  collector: Collector,
  log: ((line: string) => void) | undefined,
): Promise<DiscoveredAttestations> {
  const image = await client.getManifest(ref);
  const imageDigest = image.descriptor.digest;
  const readBlob: BlobReader = (desc) => collect(client.getBlob(ref, desc), desc);

  // The legacy `.att` tag, then the referrers (API, else the tag schema): the listing every consumer
  // of signature artifacts shares; only bundle referrers are worth a fetch here.
  const listing = await listArtifactsOf(client, ref, imageDigest, {
    sources: ["att", "referrers"],
    fetchReferrer: isBundleReferrer,
  });
  if (listing.unreadable.length === 0 && !listing.artifacts.some((a) => a.kind === "legacy-attestation")) {
    log?.(`no ${legacyArtifactTag(imageDigest, "att")} tag`);
  }
  for (const u of listing.unreadable) {
    collector.reject(new DangerzoneError("ATTESTATION_INVALID", u.error.message, { cause: u.error }), log);
  }
  for (const i of listing.ignored) log?.(`ignored referrer ${i.descriptor.digest}: ${i.reason}`);
  for (const a of listing.artifacts) {
    const source = a.tag === undefined ? `${ref.name()}@${a.descriptor.digest}` : `${ref.name()}:${a.tag}`;
    log?.(`found ${source} (${a.descriptor.artifactType ?? a.descriptor.mediaType})`);
    await collector.judgeAlone(() => fromManifest(a.manifest, source, readBlob, collector), log);
  }

  return {
    imageDigest,
    mediaType: image.descriptor.mediaType,
    name: ref.name(),
    tag: ref.tag ?? (ref.digest === undefined ? "latest" : undefined),
    attestations: collector.found(),
    rejected: collector.rejected,
  };
}

async function fromLayout(
  path: string,
  collector: Collector,
  log: ((line: string) => void) | undefined,
): Promise<DiscoveredAttestations> {
  const dir = await OciLayoutDir.open(path);
  const full = await fullIndex(dir);
  const kindOf = (d: Descriptor) => d.annotations?.[COSIGN_KIND.annotation];
  const images = full.manifests.filter((d) => {
    const kind = kindOf(d);
    return kind === COSIGN_KIND.image || kind === COSIGN_KIND.imageIndex;
  });
  const image = images[0];
  if (image === undefined || images.length !== 1) {
    throw new DangerzoneError(
      "ARCHIVE_INVALID",
      `the OCI layout at ${path} lists ${images.length} images (kind ${COSIGN_KIND.image}); exactly one is needed`,
      { hint: "give a layout written by cosign save (or prepare-archive) for one image" },
    );
  }
  if (!isManifestMediaType(image.mediaType) && !isIndexMediaType(image.mediaType)) {
    throw new DangerzoneError("ARCHIVE_INVALID", `the image entry of ${path} is not a manifest or index`);
  }
  // The image manifest is not needed, but when present its bytes must match the digest.
  if (await dir.statBlob(image.digest) !== undefined) await dir.getManifest(image);
  else log?.(`image manifest ${image.digest} is not in the layout; using its digest from index.json`);

  const readBlob: BlobReader = (desc) => collect(dir.getBlob(desc), desc);
  for (const desc of full.manifests) {
    const source = `oci:${path}@${desc.digest}`;
    if (kindOf(desc) === COSIGN_KIND.attestations || isBundleReferrer(desc)) {
      if (!isManifestMediaType(desc.mediaType)) {
        throw new DangerzoneError("ATTESTATION_INVALID", `the attestation entry ${source} is not a manifest`);
      }
      log?.(`found attestations ${source}`);
      const raw = await dir.getManifest(desc);
      await collector.judgeAlone(
        () => fromManifest(attestationManifest(raw, source), source, readBlob, collector),
        log,
      );
    }
  }
  return {
    imageDigest: image.digest,
    mediaType: image.mediaType,
    name: `oci:${path}`,
    tag: image.annotations?.[REF_NAME_ANNOTATION],
    attestations: collector.found(),
    rejected: collector.rejected,
  };
}

/** `dangerzone.json` (the full index of a prepare-archive archive) if present, else `index.json`. */
async function fullIndex(dir: OciLayoutDir): Promise<ImageIndex> {
  const extra = await dir.readMetadata("dangerzone.json");
  if (extra === undefined) return (await dir.readIndex()).index;
  const parsed = parseManifest(extra);
  if (parsed.kind !== "index") {
    throw new DangerzoneError("ARCHIVE_INVALID", `dangerzone.json in ${dir.path} is not an OCI index`);
  }
  return parsed;
}

function isBundleReferrer(desc: Descriptor): boolean {
  return desc.artifactType !== undefined && isBundleMediaType(desc.artifactType);
}

/** An attestation manifest of a layout; malformed or an index is that attestation's failure. */
function attestationManifest(raw: Uint8Array, source: string): ImageManifest {
  let manifest: Manifest;
  try {
    manifest = parseManifest(raw);
  } catch (err) {
    throw new DangerzoneError("ATTESTATION_INVALID", `the attestation manifest ${source} is malformed`, {
      cause: err,
    });
  }
  if (manifest.kind !== "manifest") {
    throw new DangerzoneError("ATTESTATION_INVALID", `the attestation manifest ${source} is an index`);
  }
  return manifest;
}

/** The attestation layers of one manifest: DSSE envelopes (legacy cosign) and Sigstore bundles. */
async function fromManifest(
  manifest: ImageManifest,
  source: string,
  readBlob: BlobReader,
  collector: Collector,
): Promise<void> {
  for (const layer of manifest.layers) {
    const isDsse = layer.mediaType === DSSE_MEDIA_TYPE;
    const isBundle = isBundleMediaType(layer.mediaType);
    if (!isDsse && !isBundle) continue;
    const limit = isDsse ? MAX_ATTESTATION_BYTES : MAX_BUNDLE_BYTES;
    if (layer.size > limit) {
      // This layer's failure (never downloaded); the manifest's other layers are still judged.
      collector.rejected.push(
        new DangerzoneError(
          "ATTESTATION_INVALID",
          `attestation layer ${layer.digest.slice(0, 19)}… of ${source} is ${layer.size} bytes, over the ` +
            `${limit}-byte limit`,
          { hint: "this is not a normal attestation; refusing to process it" },
        ),
      );
      continue;
    }
    const bytes = await readBlob(layer);
    const where = `${source} layer ${layer.digest.slice(0, 19)}…`;
    collector.add(
      isDsse
        ? { kind: "cosign", source: where, layer: { envelope: bytes, annotations: layer.annotations ?? {} } }
        : { kind: "bundle", source: where, bundle: bytes },
    );
  }
}

/** Reads a (verifying) blob stream completely; the size was bounded by the caller. */
async function collect(stream: Promise<ReadableStream<Uint8Array>>, desc: Descriptor): Promise<Uint8Array> {
  const out = new Uint8Array(desc.size);
  let offset = 0;
  for await (const chunk of await stream) {
    if (offset + chunk.byteLength > out.byteLength) {
      throw new DangerzoneError(
        "SIZE_MISMATCH",
        `blob ${desc.digest.slice(0, 19)}… is larger than its descriptor`,
      );
    }
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  if (offset !== desc.size) {
    throw new DangerzoneError(
      "SIZE_MISMATCH",
      `blob ${desc.digest.slice(0, 19)}… is shorter than its descriptor`,
    );
  }
  return out;
}
