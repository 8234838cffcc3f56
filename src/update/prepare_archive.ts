/**
 * `prepare-archive`: write an air-gapped archive of one platform of the signed image, in the layout
 * `cosign save` writes plus Dangerzone's `dangerzone.json` (DESIGN "Air-gapped archive"):
 *
 * 1. {@linkcode verifyRemoteImage}: resolve the tag, verify its signatures (every rule, the signed
 *    reference) before anything is downloaded, as `upgrade` does. The rollback rule is about the machine
 *    that loads the archive, so it is not applied here.
 * 2. For an index, pick the platform's manifest. When that manifest has signatures of its own (Dangerzone
 *    signs the index and each platform manifest), the archive holds the platform manifest as its image
 *    (kind `dev.cosignproject.cosign/image`, what Dangerzone's `cosign save IMAGE@ARCH_DIGEST` writes);
 *    otherwise it holds the index (kind `.../imageIndex`) with only this platform's content.
 * 3. The image's `sha256-<hex>.sig` manifest and its cosign v3 bundle referrers are fetched and verified
 *    again from the exact bytes that go into the archive (the registry may have changed them since step
 *    1); a bundle-only image is archived too (its referrers listed with `kind` referrer and their
 *    `artifactType`); its `.att` manifest is included when present.
 * 4. Blobs stream from the registry straight into `FILE.partial` through {@linkcode copyImage} (each
 *    verified against its descriptor on the way, byte-for-byte, never held in memory, never staged on
 *    disk), then `dangerzone.json` (the full index with `kind` annotations), `index.json` (the image only)
 *    and `oci-layout`; `FILE.partial` is renamed to `FILE` only at the end, and removed on any failure.
 *
 * @module
 */
import { dirname } from "../fs_path.ts";
import { copyImage, type CopyPlan } from "../copy.ts";
import { DangerzoneError } from "../errors.ts";
import { CosignKind, type CosignKindValue } from "../layout/archive_index.ts";
import { OciArchiveWriter } from "../layout/tar_writer.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor, Platform } from "../oci/descriptor.ts";
import { type Digest, digestHex } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { MediaType } from "../oci/media_types.ts";
import { formatPlatform, selectPlatform } from "../oci/platform.ts";
import type { Reference } from "../oci/reference.ts";
import type { LogPosition } from "../sigstore/cosign/policy.ts";
import { verifiedLogPositions } from "../sigstore/cosign/policy.ts";
import {
  isBundleMediaType,
  listSignatureArtifacts,
  type SignatureArtifact,
} from "../registry/signature_artifacts.ts";
import { type ArchiveSignatures, verifySignatureManifests } from "./_archive_signatures.ts";
import type { UpdateContext } from "./context.ts";
import { checkDiskSpace, type DiskSpaceOptions } from "./disk_space.ts";
import type { Progress } from "./progress.ts";
import { type RemoteVerification, verifyRemoteImage } from "./verify_remote.ts";

/** A step of prepare-archive, reported through {@linkcode PrepareArchiveOptions.onStep}. */
export type PrepareArchiveStep =
  | { step: "verified"; remote: RemoteVerification }
  | { step: "signed"; target: "platform" | "index"; digest: Digest; signatures: number }
  | { step: "download"; plan: CopyPlan }
  | { step: "warning"; message: string };

/** Options of {@linkcode prepareArchive}. */
export interface PrepareArchiveOptions {
  /** The platform to archive. */
  platform: Platform;
  /** The archive path (written as `PATH.partial`, renamed at the end). */
  output: string;
  /** Byte progress of the download. */
  progress?: Progress;
  /** Step notifications (for human output). */
  onStep?: (step: PrepareArchiveStep) => void;
  /** Aborts the download. */
  signal?: AbortSignal;
  /** Free-space check options (tests). */
  diskSpace?: DiskSpaceOptions;
}

/** The result of {@linkcode prepareArchive}. */
export interface PreparedArchive {
  /** The archive written. */
  readonly path: string;
  /** The reference resolved. */
  readonly reference: string;
  /** The archive's image: the platform manifest, or the index. */
  readonly image: Descriptor;
  /** The image's `kind`. */
  readonly kind: "image" | "imageIndex";
  /** The platform archived. */
  readonly platform: string;
  /** The digest the tag resolved to (the index for a multi-platform image). */
  readonly rootDigest: Digest;
  /** The platform manifest's digest. */
  readonly platformDigest: Digest;
  /** Signatures in the archive that verified. */
  readonly signatures: number;
  /** Attestation manifests in the archive. */
  readonly attestations: number;
  /** The verified log positions of the archive's signatures. */
  readonly positions: readonly LogPosition[];
  /** Bytes of image content written (config and layers). */
  readonly imageBytes: number;
  /** Size of the archive file. */
  readonly archiveBytes: number;
}

/**
 * Writes the archive. Throws like {@linkcode verifyRemoteImage} (exit 10/12), `PLATFORM_NOT_FOUND`,
 * `DISK_FULL`, `IO`; on any failure no `FILE` is left (and no `FILE.partial`).
 *
 * @example
 * ```ts ignore
 * const archive = await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: "dz.tar" });
 * console.log(archive.image.digest);
 * ```
 */
export async function prepareArchive(
  ctx: UpdateContext,
  options: PrepareArchiveOptions,
): Promise<PreparedArchive> {
  const read = options.signal === undefined ? {} : { signal: options.signal };
  const remote = await verifyWithoutRollback(ctx, read);
  options.onStep?.({ step: "verified", remote });
  const ref = remote.reference;
  const root = remote.manifest;
  const parsed = parseManifest(root.raw, root.descriptor.mediaType);

  // Choose what the archive holds and verify ITS signatures from the bytes that will be written.
  let image: Descriptor = plain(root.descriptor);
  let kind: "image" | "imageIndex" = parsed.kind === "index" ? "imageIndex" : "image";
  let platformDigest: Digest = root.descriptor.digest;
  let signatures: FetchedSignatures | null = null;
  if (parsed.kind === "index") {
    const entry = selectPlatform(parsed, options.platform);
    platformDigest = entry.digest;
    signatures = await fetchSignatures(ctx, ref, entry.digest, remote.expectedReference, read);
    if (signatures !== null) {
      image = plain(entry);
      kind = "image";
    }
  }
  if (signatures === null) {
    signatures = await fetchSignatures(ctx, ref, image.digest, remote.expectedReference, read);
  }
  if (signatures === null) {
    throw new DangerzoneError(
      "SIGNATURE_MISSING",
      `${ref.name()}@${image.digest} has no sha256-${
        digestHex(image.digest).slice(0, 12)
      }….sig signature manifest and no Sigstore bundle referrer, which an archive carries`,
      { hint: "sign the image with cosign (legacy .sig, or cosign v3 bundles)" },
    );
  }
  options.onStep?.({
    step: "signed",
    target: kind === "image" && parsed.kind === "index" ? "platform" : "index",
    digest: image.digest,
    signatures: signatures.verdict.verified.length,
  });
  // The `.att` tag was listed with the signatures (one listing): carried byte-for-byte.
  const attestations = signatures.attestation;

  const store = ctx.registry.store(ref);
  const writer = await OciArchiveWriter.create(options.output);
  let imageBytes = 0;
  try {
    const copied = await copyImage(store, writer, {
      root: image,
      ...(kind === "imageIndex" ? { platform: options.platform } : {}),
      ...read,
      onPlan: async (plan) => {
        const space = await checkDiskSpace(dirname(options.output), plan.totalBytes, options.diskSpace);
        if (space.kind === "unknown") {
          options.onStep?.({ step: "warning", message: `could not check free disk space: ${space.reason}` });
        }
        options.onStep?.({ step: "download", plan });
        options.progress?.start("download", plan.totalBytes);
      },
      onProgress: (p) => options.progress?.update(p.done),
    });
    options.progress?.end();
    imageBytes = copied.totalBytes;
    platformDigest = copied.manifest.descriptor.digest;

    // The signature manifests and their blobs: exactly the bytes that were verified.
    const entries: Descriptor[] = [
      annotated(image, kind === "image" ? CosignKind.IMAGE : CosignKind.IMAGE_INDEX),
    ];
    const verdict = signatures.verdict;
    for (const [i, sig] of [...verdict.manifests, ...verdict.referrers].entries()) {
      for (const b of [sig.config, ...sig.layers]) {
        const bytes = signatures.blobs.get(b.digest);
        await writer.putBlob(b, bytes === undefined ? await blobStream(store, b, read) : streamOf(bytes));
      }
      await writer.putManifest(sig.descriptor, sig.raw);
      const listed = i < verdict.manifests.length
        ? undefined
        : signatures.referrers.find((a) => a.descriptor.digest === sig.descriptor.digest)?.descriptor;
      entries.push(
        listed === undefined ? annotated(sig.descriptor, CosignKind.SIGNATURES) : referrerEntry(listed),
      );
    }

    // Attestations (verified by attest-provenance, not here): carried byte-for-byte.
    if (attestations !== undefined) {
      for (const b of attestations.blobs) await writer.putBlob(b, await blobStream(store, b, read));
      await writer.putManifest(attestations.descriptor, attestations.raw);
      entries.push(annotated(attestations.descriptor, CosignKind.ATTESTATIONS));
    }

    const full = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: entries };
    const imagesOnly = { ...full, manifests: entries.slice(0, 1) };
    await writer.finish({
      dangerzoneJson: new TextEncoder().encode(JSON.stringify(full)),
      indexJson: new TextEncoder().encode(JSON.stringify(imagesOnly)),
    });
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const archiveBytes = (await Deno.stat(options.output)).size;
  return {
    path: options.output,
    reference: ref.format(),
    image,
    kind,
    platform: formatPlatform(options.platform),
    rootDigest: root.descriptor.digest,
    platformDigest,
    signatures: signatures.verdict.verified.length,
    attestations: attestations === undefined ? 0 : 1,
    positions: verifiedLogPositions(signatures.verdict.verified),
    imageBytes,
    archiveBytes,
  };
}

/** The image's signatures as they will be written, verified, with the bytes that were read. */
interface FetchedSignatures {
  verdict: ArchiveSignatures;
  blobs: Map<Digest, Uint8Array>;
  /** The bundle referrers, with the descriptors the registry listed them with. */
  referrers: SignatureArtifact[];
  /** The `.att` tag's manifest (verified by attest-provenance, not here), if there is one. */
  attestation: SignatureArtifact | undefined;
}

/**
 * Fetches `sha256-<hex>.sig` and the bundle referrers of `digest` ({@linkcode listSignatureArtifacts})
 * and verifies them; null when there is neither. Signatures that do not verify throw (exit 10).
 */
async function fetchSignatures(
  ctx: UpdateContext,
  ref: Reference,
  digest: Digest,
  expectedReference: string,
  read: { signal?: AbortSignal },
): Promise<FetchedSignatures | null> {
  const artifacts = await listSignatureArtifacts(ctx.registry, ref, [digest], read);
  const legacy = artifacts.filter((a) => a.kind === "legacy-signature");
  const referrers = artifacts.filter((a) =>
    a.kind === "referrer" && a.blobs.some((b) => isBundleMediaType(b.mediaType))
  );
  if (legacy.length === 0 && referrers.length === 0) return null;
  const raws = new Map([...legacy, ...referrers].map((a) => [a.descriptor.digest, a.raw]));
  const blobs = new Map<Digest, Uint8Array>();
  const verdict = await verifySignatureManifests(ctx, {
    manifest: (desc) => {
      const raw = raws.get(desc.digest);
      if (raw === undefined) {
        throw new DangerzoneError("INTERNAL", "a signature manifest that was not fetched");
      }
      return Promise.resolve(raw);
    },
    blob: async (desc) => {
      const bytes = new Uint8Array(
        await new Response(await ctx.registry.getBlob(ref, desc, read)).arrayBuffer(),
      );
      blobs.set(desc.digest, bytes);
      return bytes;
    },
  }, {
    manifests: legacy.map((a) => plain(a.descriptor)),
    referrers: referrers.map((a) => plain(a.descriptor)),
    digest,
    expectedReference,
  });
  const attestation = artifacts.find((a) => a.kind === "legacy-attestation");
  return { verdict, blobs, referrers, attestation };
}

/** Verifies the remote image without the rollback rule (it belongs to the machine that loads the archive). */
async function verifyWithoutRollback(
  ctx: UpdateContext,
  read: { signal?: AbortSignal },
): Promise<RemoteVerification> {
  const empty = await Deno.makeTempDir({ prefix: "dz-prepare-state-" });
  try {
    const view: UpdateContext = {
      image: ctx.image,
      publicKey: ctx.publicKey,
      rekorKeys: ctx.rekorKeys,
      trustedRoot: ctx.trustedRoot,
      identity: ctx.identity,
      dataDir: empty,
      registry: ctx.registry,
      runtime: () => ctx.runtime(),
      now: () => ctx.now(),
    };
    return await verifyRemoteImage(view, read);
  } finally {
    await Deno.remove(empty, { recursive: true }).catch(() => {});
  }
}

function plain(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** A referrer as the archive lists it: its descriptor as the registry listed it, and the referrer `kind`. */
function referrerEntry(d: Descriptor): Descriptor {
  const entry: Descriptor = { mediaType: d.mediaType, size: d.size, digest: d.digest };
  if (d.artifactType !== undefined) entry.artifactType = d.artifactType;
  entry.annotations = { ...d.annotations, kind: CosignKind.REFERRER };
  return entry;
}

/** A descriptor as `cosign save` lists it in `index.json`: mediaType, size, digest, the `kind` annotation. */
function annotated(d: Descriptor, kind: CosignKindValue): Descriptor {
  return { mediaType: d.mediaType, size: d.size, digest: d.digest, annotations: { kind } };
}

function blobStream(
  store: ContentStore,
  d: Descriptor,
  read: { signal?: AbortSignal },
): Promise<ReadableStream<Uint8Array>> {
  return store.getBlob(d, read);
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}
