/**
 * Private to `src/update/`: the second half of `mirror`, shared by both sources (a registry image, an
 * archive): once the source is verified, refuse an older image than the destination tag holds, copy the
 * image and every signature artifact through {@linkcode copyImage}, list referrers at the destination,
 * move the tag LAST, and record the verified positions in the mirror's state.
 *
 * @module
 */
import { ensureOwnDirectory } from "../store/data_dir.ts";
import { join } from "../fs_path.ts";
import { copyImage } from "../copy.ts";
import { DangerzoneError, ExitCode, exitCodeFor, isDangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, sha256Digest } from "../oci/digest.ts";
import type { RawManifest } from "../oci/manifest.ts";
import { formatPlatform } from "../oci/platform.ts";
import type { Reference } from "../oci/reference.ts";
import { addToReferrersTag } from "../registry/referrers_tag.ts";
import {
  type LogPosition,
  type VerifiedImageSignature,
  verifiedLogPositions,
} from "../sigstore/cosign/policy.ts";
import type { SignatureArtifact } from "../registry/signature_artifacts.ts";
import { checkRollback, type LogState, type LogStateEntry, LogStateStore } from "../store/log_state.ts";
import { type DestinationStats, registryDestination } from "./_mirror_destination.ts";
import { legacyLogIdOf, type UpdateContext } from "./context.ts";
import type { Progress } from "./progress.ts";
import { type RemoteVerification, verifyRemoteImage } from "./verify_remote.ts";

/** Options of `mirrorImage` and `mirrorArchive`. */
export interface MirrorOptions {
  /** The destination `REGISTRY/REPO[:TAG]`; without a tag, the source's tag (else `latest`). */
  to: Reference;
  /** Only these architectures of an index (default: every platform). */
  architectures?: readonly string[];
  /** Bypass only the destination's rollback check. */
  force?: boolean;
  /** Aborts the copy. */
  signal?: AbortSignal;
  /** Step notifications (human output). */
  onStep?: (step: MirrorStep) => void;
  /** One line per notable protocol event (for `--debug`). */
  onLog?: (line: string) => void;
  /** Byte progress of each platform's copy (phase `upload`). */
  progress?: Progress;
}

/** A step of the mirror, for human output. */
export type MirrorStep =
  | {
    step: "verified";
    source: string;
    digest: Digest;
    remote: RemoteVerification | null;
    signatures: number;
  }
  | { step: "platform"; platform: string; digest: Digest; copiedBytes: number }
  | { step: "artifact"; artifact: SignatureArtifact }
  | { step: "tagged"; reference: string };

/** The signature artifacts copied, by form. */
export interface MirroredSignatures {
  /** `sha256-<hex>.sig` manifests. */
  readonly legacySignatures: number;
  /** `sha256-<hex>.att` manifests. */
  readonly legacyAttestations: number;
  /** Referrers (bundles, attestations, OCI 1.1 signatures). */
  readonly referrers: number;
  /** How referrers were listed at the destination: its referrers API, the tag schema, or both. */
  readonly referrersListedVia: readonly ("api" | "tag-schema")[];
}

/** The result of `mirrorImage` and `mirrorArchive`. */
export interface MirrorResult {
  /** The source: a registry reference, or an archive path. */
  readonly source: string;
  /** The verified source image when it came from a registry (null for an archive). */
  readonly remote: RemoteVerification | null;
  /** How many signatures of the source verified. */
  readonly verifiedSignatures: number;
  /** The destination reference the tag was moved on (`registry/repo:tag`). */
  readonly destination: string;
  /**
   * The digest now at the destination tag: the verified root, or, when one platform of an index was
   * mirrored, that platform's manifest (its bytes verified inside the verified index).
   */
  readonly digest: Digest;
  /** What the destination tag held before (null: nothing). */
  readonly previousDigest: Digest | null;
  /** The platform manifests copied: `os/arch[/variant]` and digest. */
  readonly platforms: readonly { readonly platform: string; readonly digest: Digest }[];
  /** The signature artifacts copied. */
  readonly signatures: MirroredSignatures;
  /** What the destination did. */
  readonly stats: DestinationStats;
  /** Bytes of blobs copied (0 on a second run). */
  readonly copiedBytes: number;
  /** The verified log positions recorded in the mirror's state. */
  readonly positions: readonly LogPosition[];
  /** The mirror's state directory for the signed repository. */
  readonly stateDir: string;
}

/** A verified source, ready to be published. */
export interface VerifiedSource {
  /** How to show it: a reference or an archive path. */
  name: string;
  /** Where its content is read (every read verified against its descriptor). */
  store: ContentStore;
  /** The signed root (index or manifest) with its verified bytes. */
  root: RawManifest;
  /** The manifests to copy with their blobs: the selected platforms, or the root itself. */
  images: readonly Descriptor[];
  /** Lists its signature artifacts, all forms (run while the image is copied). */
  artifacts: () => Promise<readonly SignatureArtifact[]>;
  /** The signatures that verified. */
  verified: readonly VerifiedImageSignature[];
  /** The repository they name (what the destination's content must be signed for). */
  expectedReference: string;
  /** The registry verification, for a registry source. */
  remote: RemoteVerification | null;
  /** True when `images` are only some of the root index's platforms (`--arch`, or a one-platform archive). */
  partialIndex: boolean;
  /** For a registry source: its repository, to mount blobs from on the same registry. */
  registryRepository?: Reference;
}

/** Steps 2-5 of `mirror` (see `mirror.ts`), under the lock of the mirror's state `stateDir`. */
export async function publishVerified(
  ctx: UpdateContext,
  source: VerifiedSource,
  destination: Reference,
  stateDir: string,
  options: MirrorOptions,
): Promise<MirrorResult> {
  const read = options.signal === undefined ? {} : { signal: options.signal };
  const legacyLogId = legacyLogIdOf(ctx);
  const { root } = source;
  // What the tag will name: the signed root; or, when only one platform of an index is mirrored (`--arch`,
  // a one-platform archive), that platform's manifest itself. Registries that check an index's children
  // (distribution) refuse a partial index; a platform manifest is complete, its bytes were verified inside
  // the verified index, and clients verify its own signatures (copied with it) as they would at the source.
  const [onlyPlatform] = source.partialIndex && source.images.length === 1 ? source.images : [];
  const tagTarget = onlyPlatform ?? root.descriptor;
  // 2. The destination tag must not hold a newer verified image.
  const previous = await destinationImage(ctx, destination, source, tagTarget.digest, stateDir, read);
  if (previous?.verified !== undefined && options.force !== true) {
    checkRollback(stateOf(previous.verified), source.verified, { legacyLogId });
  }

  // 3. Platforms, then signatures; the tag last.
  const mountFrom = source.registryRepository?.registry === destination.registry
    ? source.registryRepository?.repository
    : undefined;
  const dst = registryDestination(ctx.registry, destination, {
    reopen: (d, o) => source.store.getBlob(d, o),
    ...(mountFrom === undefined ? {} : { mountFrom }),
    ...(options.onLog === undefined ? {} : { log: options.onLog }),
  });
  // The image and its signature artifacts travel side by side (neither refers to the other by tag);
  // both are complete before the tag moves.
  const platforms: { platform: string; digest: Digest }[] = [];
  let copiedBytes = 0;
  const copyPlatforms = async () => {
    for (const entry of source.images) {
      const copied = await copyImage(source.store, dst, {
        root: entry,
        ...read,
        onPlan: (plan) => options.progress?.start("upload", plan.totalBytes),
        onProgress: (p) => options.progress?.update(p.done),
      });
      options.progress?.end();
      copiedBytes += copied.copiedBytes;
      const platform = entry.platform === undefined ? "single-platform" : formatPlatform(entry.platform);
      platforms.push({ platform, digest: entry.digest });
      options.onStep?.({ step: "platform", platform, digest: entry.digest, copiedBytes: copied.copiedBytes });
    }
  };
  const via = new Set<"api" | "tag-schema">();
  const copyArtifacts = async () => {
    const artifacts = await source.artifacts();
    const pendingTag = new Map<Digest, Descriptor[]>();
    for (const a of artifacts) {
      const copied = await copyImage(source.store, dst, {
        root: a.descriptor,
        ...(a.tag === undefined ? {} : { tag: a.tag }),
        ...read,
      });
      copiedBytes += copied.copiedBytes;
      if (a.kind === "referrer") {
        if (dst.subjectIndexed(a.descriptor.digest)) via.add("api");
        else pendingTag.set(a.subject, [...pendingTag.get(a.subject) ?? [], a.descriptor]);
      }
      options.onStep?.({ step: "artifact", artifact: a });
    }
    for (const [subject, referrers] of pendingTag) {
      via.add("tag-schema");
      await addToReferrersTag(ctx.registry, destination, subject, referrers, read);
    }
    return artifacts;
  };
  const [copiedImages, copiedArtifacts] = await Promise.allSettled([copyPlatforms(), copyArtifacts()]);
  if (copiedImages.status === "rejected") throw copiedImages.reason;
  if (copiedArtifacts.status === "rejected") throw copiedArtifacts.reason;
  const artifacts = copiedArtifacts.value;

  // 4. The tag moves last.
  options.signal?.throwIfAborted();
  try {
    const raw = onlyPlatform === undefined ? root.raw : await source.store.getManifest(onlyPlatform, read);
    await dst.putManifest(tagTarget, raw, destination.tag, read);
  } catch (err) {
    if (!source.partialIndex || !isDangerzoneError(err, "REGISTRY_HTTP")) throw err;
    throw new DangerzoneError(
      "REGISTRY_HTTP",
      `${destination.format()} refuses the index with only ${
        platforms.map((p) => p.platform).join(", ")
      } of its platforms (${err.message})`,
      {
        cause: err,
        hint: "this registry checks an index's children: mirror every platform, or one --arch",
      },
    );
  }
  options.onStep?.({ step: "tagged", reference: destination.format() });

  // 5. The mirror's state moves forward.
  await new LogStateStore(stateDir, { legacyLogId }).record(source.verified);

  const count = (kind: SignatureArtifact["kind"]) => artifacts.filter((a) => a.kind === kind).length;
  return {
    source: source.name,
    remote: source.remote,
    verifiedSignatures: source.verified.length,
    destination: destination.format(),
    digest: tagTarget.digest,
    previousDigest: previous?.digest ?? null,
    platforms,
    signatures: {
      legacySignatures: count("legacy-signature"),
      legacyAttestations: count("legacy-attestation"),
      referrers: count("referrer"),
      referrersListedVia: [...via].sort(),
    },
    stats: dst.stats,
    copiedBytes,
    positions: verifiedLogPositions(source.verified),
    stateDir,
  };
}

/** The destination of `to`: its tag defaults to the source's, else `latest`; never the source repository. */
export function destinationOf(ctx: UpdateContext, to: Reference): Reference {
  const destination = to.withTag(to.tag ?? ctx.image.tag ?? "latest");
  if (destination.name() === ctx.image.name()) {
    throw new DangerzoneError("USAGE", "the destination is the source repository", {
      hint: "give --to another repository",
    });
  }
  return destination;
}

/** What the destination tag holds, and its verified signatures when they verify. */
async function destinationImage(
  ctx: UpdateContext,
  destination: Reference,
  source: VerifiedSource,
  tagDigest: Digest,
  stateDir: string,
  read: { signal?: AbortSignal },
): Promise<{ digest: Digest; verified?: readonly VerifiedImageSignature[] } | undefined> {
  let digest: Digest;
  try {
    digest = (await ctx.registry.getManifest(destination, read)).descriptor.digest;
  } catch (err) {
    if (isDangerzoneError(err, "REGISTRY_NOT_FOUND")) return undefined;
    throw err;
  }
  // the same image again is no rollback: nothing to compare
  if (digest === tagDigest) return { digest };
  const expectedReference = source.expectedReference;
  try {
    // verified like the source (same keys, same signed repository), against no state at all
    const found = await verifyRemoteImage(
      { ...ctx, image: destination, identity: expectedReference, dataDir: join(stateDir, "no-state") },
      { ...read, reference: destination.withDigest(digest) },
    );
    return { digest, verified: found.verified };
  } catch (err) {
    // unsigned, signed by someone else, malformed: nothing verified there, nothing to protect
    if (err instanceof DangerzoneError && exitCodeFor(err.code) === ExitCode.VERIFICATION) {
      return { digest };
    }
    throw err;
  }
}

/** A log state holding the verified positions of what the destination holds. */
function stateOf(verified: readonly VerifiedImageSignature[]): LogState {
  const logs = new Map<string, LogStateEntry>();
  for (const p of verifiedLogPositions(verified)) {
    logs.set(p.logId, { logIndex: p.logIndex, integratedTime: p.integratedTime, digest: "", updatedAt: "" });
  }
  return { logs, legacyLastLogIndex: null };
}

/**
 * `<data-dir>/mirror/<first 16 hex of sha256 of the signed repository>`, created: one anti-rollback
 * state per publisher repository, whatever the destination (the mirror never goes back for anyone).
 */
export async function mirrorStateDir(dataDir: string, signedRepository: string): Promise<string> {
  const id = (await sha256Digest(new TextEncoder().encode(signedRepository))).slice(7, 23);
  // real directories of the data dir only (a symlinked `mirror/` is DATA_DIR_INVALID, never followed)
  return await ensureOwnDirectory(dataDir, ["mirror", id]);
}
