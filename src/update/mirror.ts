/**
 * `mirror`: verify an image (in a registry, or an air-gapped archive) exactly as `upgrade` (or `load-archive`) does, then copy it and every signature form into
 * another registry, digests preserved, so clients upgrade from there with `--identity` naming the
 * publisher's repository (issue 10). The pipeline, in order, under the lock of the mirror's state:
 *
 * 1. {@linkcode verifyRemoteImage} on the source: resolve, verify the signatures (legacy and bundles),
 *    enforce the signed reference (`--identity` when the source is itself a mirror), and refuse a
 *    rollback against the mirror's own state for this destination
 *    (`<data-dir>/mirror/<id of the signed repository>/`).
 * 2. The destination tag: when it holds an image whose signatures verify and whose log index is
 *    higher than the source's, refuse (`ROLLBACK`, exit 11) unless `force`. Content that does not
 *    verify there counts as nothing.
 * 3. {@linkcode copyImage} for each selected platform manifest (config, layers, manifest by digest),
 *    then for each signature artifact of the index and of each platform manifest
 *    ({@linkcode listSignatureArtifacts}: `.sig`, `.att`, referrers): legacy tags as they were;
 *    referrers by digest, listed through the destination's referrers API when it indexed them, else
 *    merged into the referrers tag schema. Blobs the destination has (HEAD by digest) are not copied;
 *    on the same registry they are mounted.
 * 4. The tag moves LAST: the root (index or manifest) is pushed under the tag only once everything it
 *    refers to is there. A failed or killed mirror leaves the tag where it was.
 * 5. The verified log positions are recorded in the mirror's state.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { mapStreamErrors } from "../oci/map_stream_errors.ts";
import { parseManifest } from "../oci/manifest.ts";
import { formatPlatform } from "../oci/platform.ts";
import {
  legacyArtifactTag,
  listSignatureArtifacts,
  type SignatureArtifact,
} from "../registry/signature_artifacts.ts";
import { checkRollback, LogStateStore } from "../store/log_state.ts";
import { withStoreLock } from "../store/lock.ts";
import {
  destinationOf,
  type MirrorOptions,
  type MirrorResult,
  mirrorStateDir,
  publishVerified,
} from "./_mirror_publish.ts";
import { legacyLogIdOf, type UpdateContext } from "./context.ts";
import type { OpenedArchive } from "./load_archive.ts";
import { expectedRepository, verifyRemoteImage } from "./verify_remote.ts";

export type { MirroredSignatures, MirrorOptions, MirrorResult, MirrorStep } from "./_mirror_publish.ts";
export type { DestinationStats } from "./_mirror_destination.ts";

/**
 * Verifies the source and mirrors it to `options.to`. Throws like {@linkcode verifyRemoteImage} (exit
 * 10/11/12), `ROLLBACK` for an older image than the destination holds, `REGISTRY_*` for push failures,
 * `LOCK_HELD`. On any failure the destination tag has not moved.
 *
 * @example
 * ```ts ignore
 * const r = await mirrorImage(ctx, { to: parseReference("registry.example/mirror/dangerzone:latest") });
 * console.log(`${r.destination} -> ${r.digest}`);
 * ```
 */
export async function mirrorImage(ctx: UpdateContext, options: MirrorOptions): Promise<MirrorResult> {
  const destination = destinationOf(ctx, options.to);
  const stateDir = await mirrorStateDir(ctx.dataDir, expectedRepository(ctx, ctx.image));
  return await withStoreLock(stateDir, async () => {
    const read = options.signal === undefined ? {} : { signal: options.signal };
    // 1. The source, verified as upgrade verifies it, against the mirror's own state.
    const remote = await verifyRemoteImage({ ...ctx, dataDir: stateDir }, read);
    options.onStep?.({
      step: "verified",
      source: remote.reference.format(),
      digest: remote.digest,
      remote,
      signatures: remote.verified.length,
    });
    const root = remote.manifest;
    const parsed = parseManifest(root.raw, root.descriptor.mediaType);
    const images = parsed.kind === "index"
      ? selectPlatforms(parsed.manifests, options.architectures)
      : [root.descriptor];
    const source = ctx.image.withDigest(remote.digest);
    const subjects = parsed.kind === "index"
      ? [remote.digest, ...images.map((d) => d.digest)]
      : [remote.digest];
    return await publishVerified(
      ctx,
      {
        name: remote.reference.format(),
        store: ctx.registry.store(source),
        root,
        images,
        artifacts: () => listSignatureArtifacts(ctx.registry, source, subjects, read),
        verified: remote.verified,
        expectedReference: remote.expectedReference,
        remote,
        partialIndex: parsed.kind === "index" && images.length < parsed.manifests.length,
        registryRepository: source,
      },
      destination,
      stateDir,
      options,
    );
  });
}

/**
 * `mirror --archive FILE`: verifies an air-gapped archive completely (everything `load-archive` checks:
 * the tar, the index, every blob, the signatures of both forms; then the rollback rule against the
 * mirror's state), then pushes the image and all its signatures to `options.to`, the tag last. Throws
 * `ARCHIVE_INVALID` (exit 13), verification codes (10), `ROLLBACK` (11), `REGISTRY_*` (12).
 *
 * @example
 * ```ts ignore
 * await mirrorArchive(ctx, "dangerzone-amd64.tar", { to: parseReference("registry.lan/dz/v1:latest") });
 * ```
 */
export async function mirrorArchive(
  ctx: UpdateContext,
  path: string,
  options: MirrorOptions,
): Promise<MirrorResult> {
  const destination = destinationOf(ctx, options.to);
  // the archive code is loaded only for an archive (a registry mirror starts faster without it)
  const { openArchive, toArchiveError, verifyArchiveContent } = await import("./load_archive.ts");
  using opened = await openArchive(path);
  const stateDir = await mirrorStateDir(ctx.dataDir, expectedRepository(ctx, ctx.image));
  return await withStoreLock(stateDir, async () => {
    const content = await verifyArchiveContent(ctx, opened);
    const verified = content.signatures.verified;
    const legacyLogId = legacyLogIdOf(ctx);
    checkRollback(await new LogStateStore(stateDir, { legacyLogId }).read(), verified, { legacyLogId });
    const image = opened.index.image;
    options.onStep?.({
      step: "verified",
      source: path,
      digest: image.digest,
      remote: null,
      signatures: verified.length,
    });
    const rootDescriptor: Descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.size };
    return await publishVerified(
      ctx,
      {
        name: path,
        store: archiveStore(opened.layout, toArchiveError),
        root: { descriptor: rootDescriptor, raw: await opened.layout.getManifest(rootDescriptor) },
        images: [content.target.manifest],
        artifacts: () => archiveArtifacts(opened),
        verified,
        expectedReference: content.expectedReference,
        remote: null,
        partialIndex: content.target.manifest.digest !== image.digest,
      },
      destination,
      stateDir,
      options,
    );
  });
}

/**
 * The archive as a copy source whose content failures (a layer that does not match its digest: the file
 * changed after it was checked) are `ARCHIVE_INVALID`, even when they surface at the end of a blob
 * stream that feeds an upload.
 */
function archiveStore(layout: ContentStore, toArchiveError: (err: unknown) => unknown): ContentStore {
  return {
    resolve: (r, o) => layout.resolve(r, o),
    getManifest: async (d, o) => {
      try {
        return await layout.getManifest(d, o);
      } catch (err) {
        throw toArchiveError(err);
      }
    },
    getBlob: async (d, o) => {
      let stream: ReadableStream<Uint8Array>;
      try {
        stream = await layout.getBlob(d, o);
      } catch (err) {
        throw toArchiveError(err);
      }
      return mapStreamErrors(stream, d, toArchiveError);
    },
    hasBlob: (d, o) => layout.hasBlob(d, o),
    putBlob: (d, s, o) => layout.putBlob(d, s, o),
    putManifest: (d, raw, tag, o) => layout.putManifest(d, raw, tag, o),
  };
}

/** The archive's signature manifests, attestations and referrers as artifacts of its image. */
async function archiveArtifacts(opened: OpenedArchive): Promise<SignatureArtifact[]> {
  const { index, layout } = opened;
  const subject = index.image.digest;
  const out: SignatureArtifact[] = [];
  const forms = [
    ["legacy-signature", index.signatures, legacyArtifactTag(subject, "sig")],
    ["legacy-attestation", index.attestations, legacyArtifactTag(subject, "att")],
    ["referrer", index.referrers, undefined],
  ] as const;
  for (const [kind, entries, tag] of forms) {
    for (const entry of entries) {
      const descriptor = withoutKind(entry);
      const raw = await layout.getManifest(descriptor);
      const parsed = parseManifest(raw, descriptor.mediaType);
      if (parsed.kind !== "manifest") {
        throw new DangerzoneError(
          "ARCHIVE_INVALID",
          `the archive's ${kind} ${entry.digest} is not a manifest`,
        );
      }
      const blobs = [parsed.config, ...parsed.layers];
      out.push({ kind, subject, tag, descriptor, raw, manifest: parsed, blobs });
    }
  }
  return out;
}

/** An archive entry as the registry lists it: without the archive's `kind` annotation. */
function withoutKind(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out.artifactType = d.artifactType;
  const { kind: _kind, ...rest } = d.annotations ?? {};
  if (Object.keys(rest).length > 0) out.annotations = rest;
  return out;
}

/** The platform entries of the index to copy: all, or those of the given architectures. */
function selectPlatforms(entries: readonly Descriptor[], architectures?: readonly string[]): Descriptor[] {
  if (architectures === undefined || architectures.length === 0) return [...entries];
  const selected = entries.filter((e) =>
    e.platform !== undefined && architectures.includes(e.platform.architecture)
  );
  const missing = architectures.filter((a) => !selected.some((e) => e.platform?.architecture === a));
  if (missing.length > 0) {
    throw new DangerzoneError("PLATFORM_NOT_FOUND", `the image has no ${missing.join(", ")} platform`, {
      hint: `it has: ${
        entries.flatMap((e) => e.platform === undefined ? [] : [formatPlatform(e.platform)]).join(", ")
      }`,
    });
  }
  return selected;
}
