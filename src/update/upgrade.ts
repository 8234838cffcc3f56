/**
 * `upgrade`: install the newest signed image, or say it is already installed.
 *
 * The pipeline, in order, all under the data-directory lock (a concurrent run gets `LOCK_HELD` at once
 * and changes nothing):
 *
 * 1. {@linkcode verifyRemoteImage}: resolve the tag to the digest of the exact bytes, verify the
 *    signatures, enforce the signed reference, refuse a rollback (`ROLLBACK`, exit 11). Equal log index
 *    and the runtime holding the verified digest under the image name: "already up to date".
 * 2. {@linkcode copyImage} registry -> download cache (`<data-dir>/cache`, an OCI layout): the index,
 *    this platform's manifest, config and layers, each verified; blobs resume from `.partial` files left
 *    by a killed run; a cached blob is re-hashed, never trusted by size; free space is checked first.
 * 3. {@linkcode loadIntoRuntime} cache -> runtime: a local podman reads the verified cache in place
 *    through a staging layout `<data-dir>/dz-staging-<hex>/` whose `index.json` lists only the verified
 *    root and whose `blobs` link to the cache's (podman checks each blob's digest as it reads; no copy of
 *    the image is made). docker and `podman --remote` get an oci-archive generated on the fly from the
 *    cache ({@linkcode streamImage}) under `REPO:dz-staging-<hex>`, every byte re-verified, a blob
 *    failing its check stopping the runtime before it sees the end of its input. Either way the runtime
 *    records the root digest (the index, or the manifest).
 * 4. The runtime must report the verified root digest for the staging name (`RUNTIME_DIGEST_MISMATCH`).
 * 5. The verified signatures, then the new log state, are stored (each file atomically); only then is
 *    the image tagged with its name and the staging name removed; `--prune` removes older images of the
 *    repository; the cache is emptied.
 *
 * Storing before tagging is deliberate: a kill between the two leaves the name on the previous image,
 * whose stored signatures still verify; the next run sees the runtime lacks the verified digest under the
 * name and finishes (tag). Tagging first would leave the name on an image without stored signatures.
 *
 * @module
 */
import { checkRollbackFor } from "./_rollback_check.ts";
import { ensureOwnDirectory } from "../store/data_dir.ts";
import { copyImage, type CopyPlan } from "../copy.ts";
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import { OciLayoutDir } from "../layout/dir.ts";
import type { Platform } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { formatPlatform, normalizePlatform } from "../oci/platform.ts";
import type { ContainerRuntime } from "../runtime/runtime.ts";
import type { LogPosition } from "../sigstore/cosign/policy.ts";
import { StoreLock } from "../store/lock.ts";
import { registrySource } from "./_registry_source.ts";
import { linkLayout, loadIntoRuntime, streamImage } from "./_runtime_load.ts";
import { logStateOf, signatureStoreOf, type UpdateContext } from "./context.ts";
import { checkDiskSpace, type DiskSpaceOptions } from "./disk_space.ts";
import type { Progress } from "./progress.ts";
import { type RemoteVerification, verifyRemoteImage } from "./verify_remote.ts";

/** A step of the upgrade, reported through {@linkcode UpgradeOptions.onStep} for human output. */
export type UpgradeStep =
  | { step: "verified"; remote: RemoteVerification }
  | { step: "download"; plan: CopyPlan }
  | { step: "load"; runtime: string }
  | { step: "stored"; path: string }
  | { step: "tagged"; name: string }
  | { step: "pruned"; ids: readonly string[] }
  | { step: "warning"; message: string };

/** Options of {@linkcode upgradeImage}. */
export interface UpgradeOptions {
  /** Remove older images of the same repository after a successful upgrade. */
  prune?: boolean;
  /** Warn when the newest verified signature is older than this many days (default 30). */
  maxAgeDays?: number;
  /** The platform to install from an index (default: this machine's, `linux/<arch>`). */
  platform?: Platform;
  /** Byte progress of the download and load phases. */
  progress?: Progress;
  /** Step notifications (for human output). */
  onStep?: (step: UpgradeStep) => void;
  /** Aborts the download. */
  signal?: AbortSignal;
  /** Free-space check options (tests). */
  diskSpace?: DiskSpaceOptions;
}

/** The age of the newest verified signature, against `--max-age`. */
export interface SignatureAge {
  /** Its signed integration time (Unix seconds). */
  readonly newestIntegratedTime: number;
  /** Whole days since then. */
  readonly days: number;
  /** The limit. */
  readonly maxAgeDays: number;
  /** True when older than the limit (a freeze attack looks like "up to date" forever). */
  readonly stale: boolean;
}

/** The result of {@linkcode upgradeImage}. */
export interface UpgradeResult {
  /** `up-to-date`: nothing changed; `upgraded`: the image was installed. */
  readonly status: "up-to-date" | "upgraded";
  /** The name the image carries in the runtime (`registry/repository:tag`). */
  readonly image: string;
  /** The verified (signed) digest: the index or the manifest. */
  readonly digest: Digest;
  /** The manifest digest of the installed platform (equal to `digest` for a single-platform image). */
  readonly platformDigest: Digest | null;
  /** The platform installed, `os/arch[/variant]`, or null when up to date. */
  readonly platform: string | null;
  /** The runtime used. */
  readonly runtime: string;
  /** The verified log positions now installed. */
  readonly positions: readonly LogPosition[];
  /** The signature file in the store. */
  readonly signaturesPath: string | null;
  /** Bytes downloaded in this run (0 when the cache or runtime already had them). */
  readonly downloadedBytes: number;
  /** Image IDs removed by `--prune`. */
  readonly pruned: readonly string[];
  /** The signature age. */
  readonly signatureAge: SignatureAge;
  /** Warnings (e.g. a stale signature). */
  readonly warnings: readonly string[];
}

const DAY_SECONDS = 86_400;

/**
 * Runs the upgrade. Throws like {@linkcode verifyRemoteImage} (exit 10/11/12), `LOCK_HELD`, `DISK_FULL`,
 * `RUNTIME_FAILED`, `RUNTIME_DIGEST_MISMATCH`; in every failure case nothing unverified reached the
 * runtime and the store is unchanged.
 *
 * @example
 * ```ts ignore
 * const result = await upgradeImage(ctx, { prune: true });
 * console.log(result.status, result.digest);
 * ```
 */
export async function upgradeImage(ctx: UpdateContext, options: UpgradeOptions = {}): Promise<UpgradeResult> {
  const maxAgeDays = options.maxAgeDays ?? 30;
  if (!Number.isFinite(maxAgeDays) || maxAgeDays < 0) {
    throw new DangerzoneError("USAGE", `--max-age must be a number of days, not ${maxAgeDays}`);
  }
  const lock = await StoreLock.acquire(ctx.dataDir);
  try {
    return await upgradeLocked(ctx, options, maxAgeDays);
  } finally {
    await lock.release();
  }
}

async function upgradeLocked(
  ctx: UpdateContext,
  options: UpgradeOptions,
  maxAgeDays: number,
): Promise<UpgradeResult> {
  const remote = await verifyRemoteImage(ctx, options.signal === undefined ? {} : { signal: options.signal });
  options.onStep?.({ step: "verified", remote });
  const warnings: string[] = [];
  const signatureAge = ageOf(remote.newestIntegratedTime, ctx.now(), maxAgeDays);
  if (signatureAge.stale) {
    const message = `the newest signature of ${remote.reference.format()} is ${signatureAge.days} days old ` +
      `(over --max-age ${maxAgeDays}): the registry may be frozen on an old image`;
    warnings.push(message);
    options.onStep?.({ step: "warning", message });
  }
  const ref = remote.reference;
  const name = `${ref.name()}:${ref.tag ?? "latest"}`;
  const runtime = await ctx.runtime();
  const base = {
    image: name,
    digest: remote.digest,
    runtime: runtime.name,
    positions: remote.positions,
    signatureAge,
    warnings,
  };
  const holds = (await runtime.digestsOf(name))?.includes(remote.digest) ?? false;
  const store = signatureStoreOf(ctx);
  const state = logStateOf(ctx);
  if (remote.freshness === "up-to-date" && holds) {
    // Equal log index and the runtime holds the verified digest: nothing to do (re-store signatures
    // that went missing, which changes no state).
    let signaturesPath: string | null = null;
    const keyFileSha256 = ctx.publicKey.fileSha256;
    if (keyFileSha256 !== null && await store.readUntrusted(keyFileSha256, remote.digest) === null) {
      signaturesPath = await store.write(remote.verified);
      options.onStep?.({ step: "stored", path: signaturesPath });
    }
    return {
      ...base,
      status: "up-to-date",
      platformDigest: null,
      platform: null,
      signaturesPath,
      downloadedBytes: 0,
      pruned: [],
    };
  }

  const platform = options.platform ?? hostPlatform();
  let stagingName: string | undefined;
  let downloadedBytes = 0;
  let alreadyCached = 0;
  let platformDigest: Digest = remote.digest;
  if (!holds) {
    // A real directory of ours (a symlinked cache/ would send the download outside the data directory).
    const cacheDir = await ensureOwnDirectory(ctx.dataDir, ["cache"]);
    const cache = await OciLayoutDir.create(cacheDir);
    await cache.removeTemporaryFiles();
    const root = remote.manifest.descriptor;
    // Registry -> cache: every blob verified; .partial files of a killed run resume.
    const downloaded = await copyImage(registrySource(ctx.registry, ref), cache, {
      root,
      platform,
      tag: name,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onPlan: async (plan) => {
        const space = await checkDiskSpace(cacheDir, plan.missingBytes, options.diskSpace);
        if (space.kind === "unknown") {
          const message = `could not check free disk space: ${space.reason}`;
          warnings.push(message);
          options.onStep?.({ step: "warning", message });
        }
        alreadyCached = plan.totalBytes - plan.missingBytes;
        options.onStep?.({ step: "download", plan });
        options.progress?.start("download", plan.missingBytes);
      },
      onProgress: (p) => options.progress?.update(p.done - alreadyCached),
    });
    options.progress?.end();
    downloadedBytes = downloaded.copiedBytes;
    platformDigest = downloaded.manifest.descriptor.digest;
    // Cache -> runtime: a local podman reads the verified cache in place, others get an oci-archive
    // stream that re-verifies every byte on the way.
    options.onStep?.({ step: "load", runtime: runtime.name });
    stagingName = await loadIntoRuntime(runtime, {
      digest: remote.digest,
      repository: ref.name(),
      workDir: ctx.dataDir,
      stage: async (dir) => {
        await linkLayout(cache, downloaded, dir);
        return downloaded.totalBytes;
      },
      progress: options.progress,
      stream: (tag) => streamImage(runtime, cache, { root, platform, tag, progress: options.progress }),
    });
  }
  // else: the runtime already holds the verified digest under the name (e.g. pulled by hand): only the
  // store is behind.

  // The state may have moved while we downloaded: refuse a rollback again, under the lock.
  await checkRollbackFor(ctx, remote.verified);
  const signaturesPath = await store.write(remote.verified);
  await state.record(remote.verified);
  options.onStep?.({ step: "stored", path: signaturesPath });
  const previousId = holds ? undefined : (await runtime.inspect(name))?.id;
  if (stagingName !== undefined) {
    await runtime.tag(stagingName, name);
    await runtime.remove(stagingName);
    options.onStep?.({ step: "tagged", name });
  }

  let pruned: string[] = [];
  if (options.prune === true) {
    pruned = await pruneOlder(runtime, ref.name(), name, previousId);
    options.onStep?.({ step: "pruned", ids: pruned });
  }
  await Deno.remove(`${ctx.dataDir}/cache`, { recursive: true }).catch(() => {});
  return {
    ...base,
    status: "upgraded",
    platformDigest,
    platform: formatPlatform(platform),
    signaturesPath,
    downloadedBytes,
    pruned,
  };
}

/**
 * Removes older images of `repository`: every image with a name in it other than the one named `keep`,
 * and `previousId` (the image that carried the name before, untagged by the upgrade). Names in other
 * repositories are kept (and keep their image). An image a container uses stays (`RUNTIME_FAILED` from
 * the runtime is reported as not pruned, nothing else is swallowed). Returns the removed image IDs.
 */
async function pruneOlder(
  runtime: ContainerRuntime,
  repository: string,
  keep: string,
  previousId: string | undefined,
): Promise<string[]> {
  const current = await runtime.inspect(keep);
  const listed = await runtime.list({ reference: repository });
  const candidates = new Map<string, string[]>(listed.map((i) => [i.id, i.names]));
  if (previousId !== undefined && !candidates.has(previousId)) {
    const previous = await runtime.inspect(previousId);
    if (previous !== null) candidates.set(previous.id, previous.repoTags);
  }
  const removed: string[] = [];
  for (const [id, names] of candidates) {
    if (current !== null && id === current.id) continue;
    const ours = names.filter((n) => n.startsWith(`${repository}:`));
    try {
      for (const n of ours) await runtime.remove(n);
      if (ours.length === names.length && await runtime.exists(id)) await runtime.remove(id);
      removed.push(id);
    } catch (err) {
      if (!isDangerzoneError(err, "RUNTIME_FAILED")) throw err;
    }
  }
  return removed.sort();
}

function ageOf(newestIntegratedTime: number, now: Date, maxAgeDays: number): SignatureAge {
  const seconds = Math.max(0, now.getTime() / 1000 - newestIntegratedTime);
  return {
    newestIntegratedTime,
    days: Math.floor(seconds / DAY_SECONDS),
    maxAgeDays,
    stale: seconds > maxAgeDays * DAY_SECONDS,
  };
}

/** This machine's platform (`linux/amd64`, `linux/arm64/v8`, ...). */
function hostPlatform(): Platform {
  return normalizePlatform({ os: "linux", architecture: Deno.build.arch });
}
