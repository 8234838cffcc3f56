/**
 * `load-archive FILE [--force]`: verify an air-gapped archive completely, then load it. Every check runs
 * before anything reaches the container runtime, all under the data-directory lock:
 *
 * 1. The tar is walked once by {@linkcode OciArchiveFile.open}, in place (nothing is staged): absolute
 *    paths, `..`, links, devices, duplicates, names outside the OCI layout, oversized entries, too many
 *    entries, truncation are refused; the metadata files and every small blob (manifests, configs,
 *    signature payloads) are read and hashed; large blobs (layers) are only located and seeked over.
 *    A `cosign save` layout directory is read in place instead.
 * 2. {@linkcode parseArchiveIndex}: `index.json` equals `dangerzone.json` filtered to images, with exactly
 *    one image; {@linkcode assertBlobsComplete}: every blob the image, its signatures and attestations
 *    reference is present with the right size, manifests with the right digest.
 * 3. The archive's signature manifests become `cosign download signature` entries (as Dangerzone's Python
 *    tool converts them) and its cosign v3 bundles (referrer entries) are read; both are verified for the
 *    image digest with every rule and the reference policy; then the rollback rule, which `--force` alone bypasses (with a warning, and a confirmation when the
 *    caller supplies one: a TTY).
 * 4. Only the verified image (root, platform manifest, config, layers) leaves the archive, in the one pass
 *    that hashes the layers ({@linkcode copyImage}, blobs read by offset): for a local podman it is
 *    unpacked into a scratch layout `<data-dir>/dz-staging-<hex>/` that podman then reads in place (a
 *    streamed `podman load` would copy its whole input to a temp file first, and podman re-checks each
 *    blob's digest); for docker and `podman --remote` it streams as an archive ({@linkcode ImageTarStream})
 *    under `REPO:dz-staging-<hex>`. A blob whose bytes do not match (the file changed since step 1) stops
 *    either way before the runtime has it, so nothing is loaded. The runtime must report the verified
 *    digest; then the signatures and the log state are stored (each file atomically), the image is tagged
 *    with the signed docker-reference and the staging name removed.
 *
 * Any failure: `ARCHIVE_INVALID` (exit 13), a verification code (exit 10) or `ROLLBACK` (exit 11), one
 * line; nothing loaded, the store unchanged.
 *
 * @module
 */
import { checkRollbackFor } from "./_rollback_check.ts";
import { dirname } from "../fs_path.ts";
import { copyImage } from "../copy.ts";
import { DangerzoneError, type ErrorCode, isDangerzoneError } from "../errors.ts";
import { type ArchiveIndex, archiveRoots, CosignKind, parseArchiveIndex } from "../layout/archive_index.ts";
import { assertBlobsComplete, type BlobRoot } from "../layout/blob_check.ts";
import { OciArchiveFile } from "../layout/archive_file.ts";
import { OciLayoutDir } from "../layout/dir.ts";
import type { UnverifiedBlobSource } from "../layout/image_tar_stream.ts";
import type { ArchiveReadOptions } from "../layout/tar_reader.ts";
import type { Descriptor, Platform } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import { formatPlatform, normalizePlatform, selectPlatform } from "../oci/platform.ts";
import {
  type LogPosition,
  type VerifiedImageSignature,
  verifiedLogPositions,
} from "../sigstore/cosign/policy.ts";
import { StoreLock } from "../store/lock.ts";
import { type ArchiveSignatures, verifySignatureManifests } from "./_archive_signatures.ts";
import { expectedRepository } from "./_reference_policy.ts";
import { logStateOf, signatureStoreOf, type UpdateContext } from "./context.ts";
import { checkDiskSpace, type DiskSpaceOptions } from "./disk_space.ts";
import type { Progress } from "./progress.ts";
import { loadIntoRuntime, streamImage } from "./_runtime_load.ts";

/** A step of load-archive, reported through {@linkcode LoadArchiveOptions.onStep}. */
export type LoadArchiveStep =
  | { step: "read"; form: ArchiveIndex["form"]; blobs: number }
  | { step: "verified"; digest: Digest; signatures: number; reference: string }
  | { step: "load"; runtime: string }
  | { step: "stored"; path: string }
  | { step: "tagged"; name: string }
  | { step: "warning"; message: string };

/** Options of {@linkcode loadArchive}. */
export interface LoadArchiveOptions {
  /** Bypass the rollback rule, and only it. */
  force?: boolean;
  /**
   * Asked when `force` bypasses a rollback that would have been refused; resolving false stops with
   * `ROLLBACK`. Absent: proceed (with the warning).
   */
  confirmRollback?: (message: string) => Promise<boolean>;
  /** For an archive whose image is an index: the platform to load (default: the one present, else this machine's). */
  platform?: Platform;
  /** Limits of the tar reader (defaults are safe). */
  limits?: ArchiveReadOptions;
  /** Byte progress of the load. */
  progress?: Progress;
  /** Free-space check of the staging layout (tests replace the measurement). */
  diskSpace?: DiskSpaceOptions;
  /** Step notifications (for human output). */
  onStep?: (step: LoadArchiveStep) => void;
}

/** The result of {@linkcode loadArchive}. */
export interface LoadedArchive {
  /** `dangerzone-archive` (with `dangerzone.json`) or `cosign-save` (a plain layout). */
  readonly form: ArchiveIndex["form"];
  /** The name the image now carries in the runtime. */
  readonly image: string;
  /** The verified (signed) digest. */
  readonly digest: Digest;
  /** The platform manifest loaded (equal to `digest` unless the image is an index). */
  readonly platformDigest: Digest;
  /** The platform loaded, when the image is an index. */
  readonly platform: string | null;
  /** The runtime used. */
  readonly runtime: string;
  /** The verified log positions now recorded. */
  readonly positions: readonly LogPosition[];
  /** The signature file written in the store. */
  readonly signaturesPath: string;
  /** True when `--force` bypassed a rollback refusal. */
  readonly rollbackBypassed: boolean;
  /** Warnings. */
  readonly warnings: readonly string[];
}

/** Codes that, raised while reading the archive's content, mean the archive is invalid (exit 13). */
const CONTENT_CODES: readonly ErrorCode[] = [
  "MANIFEST_INVALID",
  "DIGEST_MISMATCH",
  "SIZE_MISMATCH",
  "SIZE_LIMIT_EXCEEDED",
  "SHORT_READ",
  "PLATFORM_NOT_FOUND",
  "PLATFORM_AMBIGUOUS",
  "UNSUPPORTED",
];

/**
 * Verifies `path` (an archive file, or a `cosign save` layout directory) and loads it. Throws
 * `ARCHIVE_INVALID`, verification codes, `ROLLBACK`, `LOCK_HELD`, runtime codes; on every failure
 * nothing was loaded and the store is unchanged.
 *
 * @example
 * ```ts ignore
 * const loaded = await loadArchive(ctx, "dangerzone-amd64.tar", { force: false });
 * console.log(loaded.image, loaded.digest);
 * ```
 */
export async function loadArchive(
  ctx: UpdateContext,
  path: string,
  options: LoadArchiveOptions = {},
): Promise<LoadedArchive> {
  using opened = await openArchive(path, options.limits);
  options.onStep?.({ step: "read", form: opened.index.form, blobs: await opened.blobCount() });
  const lock = await StoreLock.acquire(ctx.dataDir);
  try {
    return await loadLocked(ctx, opened, options);
  } finally {
    await lock.release();
  }
}

/** What load-archive reads from: an archive file or a layout directory. */
export type ArchiveSource = (OciArchiveFile | OciLayoutDir) & UnverifiedBlobSource;

/** An archive file or layout directory, opened and its index checked; nothing verified yet. Dispose it. */
export interface OpenedArchive extends Disposable {
  /** Where the blobs are read from (every read verified against its descriptor). */
  readonly layout: ArchiveSource;
  /** The checked index. */
  readonly index: ArchiveIndex;
  /** How many blobs the archive holds. */
  blobCount(): Promise<number>;
}

/**
 * Opens `path` (an archive file, or a `cosign save` layout directory): step 1 and the index check of
 * step 2. Throws `USAGE` when it cannot be read, `ARCHIVE_INVALID` when it is not a valid archive.
 */
export async function openArchive(path: string, limits?: ArchiveReadOptions): Promise<OpenedArchive> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new DangerzoneError("USAGE", `cannot read the archive ${path}: ${errorText(err)}`, {
      cause: err,
      hint: "give the path of a file made by prepare-archive, or a cosign save directory",
    });
  }
  if (info.isDirectory) {
    const { layout, index } = await asArchiveError(() => openLayoutDir(path));
    return {
      layout,
      index,
      blobCount: async () => (await layout.listBlobs()).length,
      [Symbol.dispose]: () => {},
    };
  }
  const archive = await asArchiveError(() => OciArchiveFile.open(path, limits));
  try {
    const index = parseArchiveIndex(archive);
    return {
      layout: archive,
      index,
      blobCount: () => Promise.resolve(archive.blobCount),
      [Symbol.dispose]: () => archive.close(),
    };
  } catch (err) {
    archive.close();
    throw err;
  }
}

/** What {@linkcode verifyArchiveContent} established. */
export interface VerifiedArchiveContent {
  /** The image manifest to load (the archive's image, or the one platform of its index). */
  readonly target: { readonly manifest: Descriptor; readonly platform: Platform | undefined };
  /** The verified signatures of the archive's image (both forms), and the manifests they came from. */
  readonly signatures: ArchiveSignatures;
  /** The repository the signatures name. */
  readonly expectedReference: string;
}

/**
 * Steps 2 and 3 without the rollback rule: every blob the image, its signatures, attestations and
 * referrers reference is present (sizes, manifest digests), and the signatures of both forms verify for
 * the image digest with every rule and the reference policy. Throws `ARCHIVE_INVALID` or a verification
 * code (exit 10). Also what `mirror --archive` checks before it pushes anything.
 */
export async function verifyArchiveContent(
  ctx: UpdateContext,
  opened: OpenedArchive,
  options: { platform?: Platform | undefined } = {},
): Promise<VerifiedArchiveContent> {
  const { layout, index } = opened;
  const target = await asArchiveError(async () => {
    const chosen = await chooseImage(layout, index, options.platform);
    const roots: BlobRoot[] = [
      { descriptor: chosen.manifest, label: "the image" },
      ...archiveRoots(index, [CosignKind.SIGNATURES, CosignKind.ATTESTATIONS, CosignKind.REFERRER]),
    ];
    await assertBlobsComplete(layout, roots);
    return chosen;
  });
  const expectedReference = expectedRepository(ctx, ctx.image);
  const signatures = await verifySignatureManifests(ctx, {
    manifest: (d) => asArchiveError(() => layout.getManifest(d)),
    blob: (d) =>
      asArchiveError(async () => new Uint8Array(await new Response(await layout.getBlob(d)).arrayBuffer())),
  }, {
    manifests: index.signatures,
    referrers: index.referrers,
    digest: index.image.digest,
    expectedReference,
  });
  return { target, signatures, expectedReference };
}

async function loadLocked(
  ctx: UpdateContext,
  opened: OpenedArchive,
  options: LoadArchiveOptions,
): Promise<LoadedArchive> {
  const { layout, index } = opened;
  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    options.onStep?.({ step: "warning", message });
  };
  // 2 and 3. Completeness, then signatures (every rule, the reference policy); then the rollback rule.
  const { target, signatures, expectedReference } = await verifyArchiveContent(ctx, opened, options);
  const verified = signatures.verified;
  options.onStep?.({
    step: "verified",
    digest: index.image.digest,
    signatures: verified.length,
    reference: expectedReference,
  });
  const state = logStateOf(ctx);
  const rollbackBypassed = await checkRollbackOrForce(ctx, verified, options, warn);

  // 4. Load only the verified image, confirm the digest, store, tag.
  const runtime = await ctx.runtime();
  const name = `${expectedReference}:${ctx.image.tag ?? "latest"}`;
  options.onStep?.({ step: "load", runtime: runtime.name });
  const loadOptions = {
    root: index.image,
    platform: target.platform,
    progress: options.progress,
    diskSpace: options.diskSpace,
    warn,
  };
  const staging = await loadIntoRuntime(runtime, {
    digest: index.image.digest,
    repository: expectedReference,
    workDir: ctx.dataDir,
    progress: options.progress,
    stage: (dir) => stageVerified(layout, dir, loadOptions),
    stream: (tag) => asArchiveError(() => streamImage(runtime, layout, { ...loadOptions, tag })),
  });
  const signaturesPath = await signatureStoreOf(ctx).write(verified);
  await state.record(verified);
  options.onStep?.({ step: "stored", path: signaturesPath });
  await runtime.tag(staging, name);
  await runtime.remove(staging);
  options.onStep?.({ step: "tagged", name });
  return {
    form: index.form,
    image: name,
    digest: index.image.digest,
    platformDigest: target.manifest.digest,
    platform: target.platform === undefined ? null : formatPlatform(target.platform),
    runtime: runtime.name,
    positions: verifiedLogPositions(verified),
    signaturesPath,
    rollbackBypassed,
    warnings,
  };
}

/** Applies the rollback rule; returns true when `force` bypassed a refusal (after the warning and confirmation). */
async function checkRollbackOrForce(
  ctx: UpdateContext,
  verified: readonly VerifiedImageSignature[],
  options: LoadArchiveOptions,
  warn: (message: string) => void,
): Promise<boolean> {
  try {
    await checkRollbackFor(ctx, verified);
    return false;
  } catch (err) {
    if (!isDangerzoneError(err, "ROLLBACK") || options.force !== true) throw err;
    const message = `--force: loading an image OLDER than the installed one (${err.message})`;
    warn(message);
    if (options.confirmRollback !== undefined && !(await options.confirmRollback(message))) {
      throw new DangerzoneError("ROLLBACK", "rollback refused: not confirmed", { cause: err });
    }
    return true;
  }
}

/** The image to load: the archive's image manifest, or the one platform of its index that it carries. */
async function chooseImage(
  layout: ArchiveSource,
  index: ArchiveIndex,
  wanted: Platform | undefined,
): Promise<{ manifest: Descriptor; platform: Platform | undefined }> {
  if (index.image.annotations?.kind !== CosignKind.IMAGE_INDEX) {
    return { manifest: index.image, platform: undefined };
  }
  const parsed = parseManifest(await layout.getManifest(index.image), index.image.mediaType);
  if (parsed.kind !== "index") {
    throw new DangerzoneError("ARCHIVE_INVALID", `the archive's image ${index.image.digest} is not an index`);
  }
  const present: Descriptor[] = [];
  for (const m of parsed.manifests) {
    if (m.platform !== undefined && (await layout.statBlob(m.digest)) !== undefined) present.push(m);
  }
  const only = present[0];
  let entry: Descriptor;
  if (wanted !== undefined) entry = selectPlatform(parsed, wanted);
  else if (only !== undefined && present.length === 1) entry = only;
  else entry = selectPlatform(parsed, normalizePlatform({ os: "linux", architecture: Deno.build.arch }));
  if (entry.platform === undefined) {
    throw new DangerzoneError("ARCHIVE_INVALID", "the archive's index entry has no platform");
  }
  return { manifest: entry, platform: normalizePlatform(entry.platform) };
}

/** Opens a `cosign save` (or unpacked archive) layout directory in place; every later read is verified. */
async function openLayoutDir(path: string): Promise<{ layout: OciLayoutDir; index: ArchiveIndex }> {
  const layout = await OciLayoutDir.open(path);
  const indexJson = await layout.readMetadata("index.json");
  if (indexJson === undefined) {
    throw new DangerzoneError("ARCHIVE_INVALID", `${path} is not an OCI image layout: it has no index.json`);
  }
  const index = parseArchiveIndex({
    untrustedIndexJson: indexJson,
    untrustedDangerzoneJson: await layout.readMetadata("dangerzone.json"),
  });
  return { layout, index };
}

/** What the image is loaded with. */
interface VerifiedLoadOptions {
  root: Descriptor;
  platform: Platform | undefined;
  progress: Progress | undefined;
  diskSpace: DiskSpaceOptions | undefined;
  warn: (message: string) => void;
}

/**
 * Unpacks the verified image from the archive (or layout) into the fresh staging layout `dir`, hashing
 * each blob once on the way (a mismatch, i.e. the file changed since it was checked, stops with
 * `ARCHIVE_INVALID` before the runtime is called). The staging copy is scratch: not fsynced.
 */
async function stageVerified(
  layout: ArchiveSource,
  dir: string,
  options: VerifiedLoadOptions,
): Promise<number> {
  const staged = await OciLayoutDir.create(dir, { durable: false });
  const copied = await asArchiveError(() =>
    copyImage(layout, staged, {
      root: { mediaType: options.root.mediaType, digest: options.root.digest, size: options.root.size },
      ...(options.platform === undefined ? {} : { platform: options.platform }),
      tag: "latest",
      onPlan: async (plan) => {
        const space = await checkDiskSpace(dirname(dir), plan.totalBytes, options.diskSpace);
        if (space.kind === "unknown") options.warn(`could not check free disk space: ${space.reason}`);
        options.progress?.start("unpack", plan.totalBytes);
      },
      onProgress: (p) => options.progress?.update(p.done),
    })
  );
  options.progress?.end();
  return copied.totalBytes;
}

/** Runs `fn`, turning content-integrity failures (which would mean a registry fault elsewhere) into `ARCHIVE_INVALID`. */
async function asArchiveError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toArchiveError(err);
  }
}

/**
 * A content-integrity failure (wrong digest or size, malformed manifest, missing platform) met while
 * reading an archive, as `ARCHIVE_INVALID` (exit 13); any other error unchanged.
 */
export function toArchiveError(err: unknown): unknown {
  if (err instanceof DangerzoneError && CONTENT_CODES.includes(err.code)) {
    return new DangerzoneError("ARCHIVE_INVALID", `invalid archive: ${err.message}`, {
      cause: err,
      hint: "the archive is damaged or was altered; do not use it",
    });
  }
  return err;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message.split("\n")[0] ?? "" : String(err);
}
