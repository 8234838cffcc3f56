/**
 * `mirror`: verify an image exactly as `upgrade` does, then copy it and every signature form into
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
import { join } from "node:path";
import { copyImage } from "../copy.ts";
import { DangerzoneError, ExitCode, exitCodeFor, isDangerzoneError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, sha256Digest } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { formatPlatform } from "../oci/platform.ts";
import type { Reference } from "../oci/reference.ts";
import { addToReferrersTag } from "../registry/referrers_tag.ts";
import { type LogPosition, type VerifiedImageSignature, verifiedLogPositions } from "../sigstore/policy.ts";
import { listSignatureArtifacts, type SignatureArtifact } from "../sigstore/signature_artifacts.ts";
import { checkRollback, type LogState, type LogStateEntry, LogStateStore } from "../store/log_state.ts";
import { withStoreLock } from "../store/lock.ts";
import { type DestinationStats, registryDestination } from "./_mirror_destination.ts";
import { legacyLogIdOf, type UpdateContext } from "./context.ts";
import { expectedRepository, type RemoteVerification, verifyRemoteImage } from "./verify_remote.ts";

/** Options of {@linkcode mirrorImage}. */
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
}

/** A step of the mirror, for human output. */
export type MirrorStep =
  | { step: "verified"; remote: RemoteVerification }
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

/** The result of {@linkcode mirrorImage}. */
export interface MirrorResult {
  /** The verified source. */
  readonly remote: RemoteVerification;
  /** The destination reference the tag was moved on (`registry/repo:tag`). */
  readonly destination: string;
  /** The verified digest, now at the destination tag. */
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
  /** The mirror's state directory for this destination. */
  readonly stateDir: string;
}

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
  const tag = options.to.tag ?? ctx.image.tag ?? "latest";
  const destination = options.to.withTag(tag);
  if (destination.name() === ctx.image.name()) {
    throw new DangerzoneError("USAGE", "the destination is the source repository", {
      hint: "give --to another repository",
    });
  }
  const stateDir = await mirrorStateDir(ctx.dataDir, expectedRepository(ctx, ctx.image));
  return await withStoreLock(stateDir, () => mirrorLocked(ctx, options, destination, stateDir));
}

async function mirrorLocked(
  ctx: UpdateContext,
  options: MirrorOptions,
  destination: Reference,
  stateDir: string,
): Promise<MirrorResult> {
  const read = options.signal === undefined ? {} : { signal: options.signal };
  const legacyLogId = legacyLogIdOf(ctx);
  // 1. The source, verified as upgrade verifies it, against the mirror's own state.
  const remote = await verifyRemoteImage({ ...ctx, dataDir: stateDir }, read);
  options.onStep?.({ step: "verified", remote });

  // 2. The destination tag must not hold a newer verified image.
  const previous = await destinationImage(ctx, destination, remote, stateDir, read);
  if (previous?.verified !== undefined && options.force !== true) {
    checkRollback(stateOf(previous.verified), remote.verified, { legacyLogId });
  }

  // 3. Platforms, then signatures; the tag last.
  const source = ctx.image.withDigest(remote.digest);
  const src = ctx.registry.store(source);
  const sameRegistry = source.registry === destination.registry;
  const dst = registryDestination(ctx.registry, destination, {
    reopen: (d, o) => src.getBlob(d, o),
    ...(sameRegistry ? { mountFrom: source.repository } : {}),
    ...(options.onLog === undefined ? {} : { log: options.onLog }),
  });
  const root = remote.manifest;
  const parsed = parseManifest(root.raw, root.descriptor.mediaType);
  const platforms: { platform: string; digest: Digest }[] = [];
  let copiedBytes = 0;
  const images: Descriptor[] = parsed.kind === "index"
    ? selectPlatforms(parsed.manifests, options.architectures)
    : [root.descriptor];
  for (const entry of images) {
    const copied = await copyImage(src, dst, { root: entry, ...read });
    copiedBytes += copied.copiedBytes;
    const platform = entry.platform === undefined ? "single-platform" : formatPlatform(entry.platform);
    platforms.push({ platform, digest: entry.digest });
    options.onStep?.({ step: "platform", platform, digest: entry.digest, copiedBytes: copied.copiedBytes });
  }

  const subjects = parsed.kind === "index"
    ? [remote.digest, ...images.map((d) => d.digest)]
    : [remote.digest];
  const artifacts = await listSignatureArtifacts(ctx.registry, source, subjects, read);
  const pendingTag = new Map<Digest, Descriptor[]>();
  const via = new Set<"api" | "tag-schema">();
  for (const a of artifacts) {
    const copied = await copyImage(src, dst, {
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

  // 4. The tag moves last.
  options.signal?.throwIfAborted();
  await dst.putManifest(root.descriptor, root.raw, destination.tag, read);
  options.onStep?.({ step: "tagged", reference: destination.format() });

  // 5. The mirror's state moves forward.
  await new LogStateStore(stateDir, { legacyLogId }).record(remote.verified);

  const count = (kind: SignatureArtifact["kind"]) => artifacts.filter((a) => a.kind === kind).length;
  return {
    remote,
    destination: destination.format(),
    digest: remote.digest,
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
    positions: remote.positions,
    stateDir,
  };
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

/** What the destination tag holds, and its verified signatures when they verify. */
async function destinationImage(
  ctx: UpdateContext,
  destination: Reference,
  remote: RemoteVerification,
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
  try {
    // verified like the source (same keys, same signed repository), against no state at all
    const found = await verifyRemoteImage(
      { ...ctx, image: destination, identity: remote.expectedReference, dataDir: join(stateDir, "no-state") },
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
async function mirrorStateDir(dataDir: string, signedRepository: string): Promise<string> {
  const id = (await sha256Digest(new TextEncoder().encode(signedRepository))).slice(7, 23);
  const dir = join(dataDir, "mirror", id);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}
