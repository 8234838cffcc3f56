/**
 * Getting a verified image into the container runtime the fastest way it allows, for `upgrade` and
 * `load-archive` alike.
 *
 * - A local podman loads an OCI layout directory in place ({@linkcode ContainerRuntime.loadLayout}): the
 *   verified image is staged as `<work-dir>/dz-staging-<hex>/` and podman reads its files directly. A
 *   streamed `podman load` first copies all of stdin to a temp file (measured ~1.1-1.3 s per GiB here) and
 *   only then starts, so this saves one full pass over the image. podman checks every blob's digest as it
 *   reads it, and the caller still confirms the digest the runtime reports.
 * - docker and `podman --remote` (whose daemon may not see our files) get the verified image streamed as
 *   an archive under `REPO:dz-staging-<hex>`, as before.
 *
 * Either way the image carries a staging name until the caller has stored the signatures and tags it.
 *
 * @module
 */
import { join } from "../fs_path.ts";
import { type CopiedImage, copyImage } from "../copy.ts";
import { DangerzoneError } from "../errors.ts";
import { OciLayoutDir } from "../layout/dir.ts";
import { ImageTarStream, type UnverifiedBlobSource } from "../layout/image_tar_stream.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor, Platform } from "../oci/descriptor.ts";
import { type Digest, digestHex } from "../oci/digest.ts";
import { MediaType } from "../oci/media_types.ts";
import type { ContainerRuntime } from "../runtime/runtime.ts";
import type { Progress } from "./progress.ts";

/** Options of {@linkcode loadIntoRuntime}. */
export interface RuntimeLoadOptions {
  /** The verified root digest (index or manifest): names the staging image and directory. */
  digest: Digest;
  /** Repository of the staging name of a streamed load (`REPO:dz-staging-<hex>`). */
  repository: string;
  /** Where the layout directory is staged: the data directory (the caller holds its lock). */
  workDir: string;
  /**
   * Writes a loadable OCI layout of the verified image into the fresh directory `dir`; resolves to the
   * bytes of its config and layers (the total of the `load` progress).
   */
  stage(dir: string): Promise<number>;
  /** Byte progress of the layout load (a streamed load reports its own). */
  progress: Progress | undefined;
  /** Streams the verified image into the runtime under `tag`. */
  stream(tag: string): Promise<void>;
}

/** Staging names in the runtime: `localhost/dz-staging-<hex>:latest` (layout loads), `REPO:dz-staging-<hex>` (streamed). */
const STAGING_NAME_RE = /(?:^localhost\/dz-staging-[0-9a-f]{16}:latest|:dz-staging-[0-9a-f]{16})$/;

/** The staging directories of this and of earlier (killed) runs: `dz-staging-` and 16 hex digits. */
const STAGING_DIR_RE = /^dz-staging-[0-9a-f]{16}$/;

/**
 * Loads the verified image and returns the name it carries in the runtime: `localhost/dz-staging-<hex>:latest`
 * after a layout load, `REPO:dz-staging-<hex>` after a streamed one. The runtime must then report the
 * verified `digest` for that name, else the staging name is removed and this fails with
 * `RUNTIME_DIGEST_MISMATCH`. The staging directory is removed afterwards whatever happens, with any a
 * killed run left behind.
 */
export async function loadIntoRuntime(
  runtime: ContainerRuntime,
  options: RuntimeLoadOptions,
): Promise<string> {
  const staging = await load(runtime, options);
  const reported = await runtime.digestsOf(staging);
  if (reported === null || !reported.includes(options.digest)) {
    await runtime.remove(staging).catch(() => false);
    throw new DangerzoneError(
      "RUNTIME_DIGEST_MISMATCH",
      `${runtime.name} does not report the verified digest ${options.digest} for the loaded image ` +
        `(it reports ${reported === null || reported.length === 0 ? "none" : reported.join(", ")})`,
      {
        hint: "nothing was recorded; check the runtime (a docker without digest support cannot be verified)",
      },
    );
  }
  return staging;
}

async function load(runtime: ContainerRuntime, options: RuntimeLoadOptions): Promise<string> {
  await removeStaleStagingNames(runtime);
  const hex = digestHex(options.digest).slice(0, 16);
  if (!(await runtime.canLoadLayout())) {
    const tag = `${options.repository}:dz-staging-${hex}`;
    await options.stream(tag);
    return tag;
  }
  await removeStagingDirs(options.workDir);
  const dir = join(options.workDir, `dz-staging-${hex}`);
  try {
    const totalBytes = await options.stage(dir);
    const progress = options.progress;
    progress?.start("load", totalBytes);
    // The runtime's read count includes a little besides the blobs (its own configuration): capped.
    const name = await runtime.loadLayout(dir, {
      onProgress: (n) => progress?.update(Math.min(n, totalBytes)),
    });
    progress?.update(totalBytes);
    progress?.end();
    return name;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Stages a verified copy (root, platform manifest, config, layers) of the layout `cache` (whose blobs for
 * this image were all verified in this run: the download cache) as a layout of its own in `dir`: an
 * `index.json` listing only the root, and the blobs hard-linked from the cache (copied where the file
 * system has no hard links). Nothing is rewritten.
 */
export async function linkLayout(cache: OciLayoutDir, copied: CopiedImage, dir: string): Promise<void> {
  const staged = await OciLayoutDir.create(dir, { durable: false });
  const { mediaType, digest, size } = copied.root.descriptor;
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: [{ mediaType, digest, size }],
  };
  await staged.writeIndex(new TextEncoder().encode(JSON.stringify(index)));
  const descriptors = [copied.root.descriptor, copied.manifest.descriptor, ...copied.blobs];
  for (const blob of new Set(descriptors.map((d) => d.digest))) {
    const from = cache.blobPath(blob);
    const to = staged.blobPath(blob);
    try {
      await Deno.link(from, to);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotCapable) throw err;
      await Deno.copyFile(from, to); // e.g. EXDEV, or a file system without hard links
    }
  }
}

/**
 * Removes the staging names a run killed between load and tag left in the runtime (only the names: an
 * image that also carries another name keeps it; one that carried only a staging name goes, unless a
 * container uses it). The name of this run's image is deterministic, so this is for other digests.
 */
async function removeStaleStagingNames(runtime: ContainerRuntime): Promise<void> {
  for (const image of await runtime.list()) {
    for (const name of image.names) {
      if (STAGING_NAME_RE.test(name)) await runtime.remove(name).catch(() => false);
    }
  }
}

async function removeStagingDirs(workDir: string): Promise<void> {
  try {
    for await (const entry of Deno.readDir(workDir)) {
      if (STAGING_DIR_RE.test(entry.name)) {
        await Deno.remove(join(workDir, entry.name), { recursive: true }).catch(() => {});
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Options of {@linkcode streamImage}. */
export interface StreamImageOptions {
  /** The verified root (index or manifest). */
  root: Descriptor;
  /** The platform to load when `root` is an index. */
  platform: Platform | undefined;
  /** The staging name the runtime records. */
  tag: string;
  /** Byte progress (phase `load`). */
  progress: Progress | undefined;
}

/**
 * Streams the verified image from a local `source` (the download cache, an archive file, a layout
 * directory) into the runtime under `tag` as an oci-archive generated on the fly ({@linkcode ImageTarStream}):
 * every blob is hashed once on the way, and a mismatch errors the stream before the runtime has seen its
 * end, so nothing is loaded (the staging name is removed should the runtime have kept anything).
 */
export async function streamImage(
  runtime: ContainerRuntime,
  source: ContentStore & UnverifiedBlobSource,
  options: StreamImageOptions,
): Promise<void> {
  const tar = new ImageTarStream(source, { onProgress: (n) => options.progress?.update(n) });
  const loading = runtime.load(tar.readable);
  // A runtime that fails early must not leave the copy waiting on a stream nobody reads.
  loading.catch((err) => tar.abort(err));
  try {
    await copyImage(source, tar, {
      root: { mediaType: options.root.mediaType, digest: options.root.digest, size: options.root.size },
      ...(options.platform === undefined ? {} : { platform: options.platform }),
      tag: options.tag,
      onPlan: (plan) => options.progress?.start("load", plan.totalBytes),
    });
    await tar.finish();
    await loading;
  } catch (err) {
    tar.abort(err);
    await loading.catch(() => {});
    await runtime.remove(options.tag).catch(() => false);
    throw err;
  }
  options.progress?.end();
}
