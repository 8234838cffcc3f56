/**
 * Private to `src/update/`: a registry repository as the DESTINATION of {@linkcode copyImage} (the
 * mirror). Blobs stream from the source into a `PUT` without being held in memory; a blob the
 * destination already has (HEAD by digest) is not copied again; on the same registry a blob is mounted
 * from the source repository instead of uploaded; a failed upload is restarted from the source where
 * that is safe (nothing was committed: dropped connection, 5xx, timeout), a bounded number of times.
 * Manifests are pushed by digest unless a tag is given, and the store remembers which referrers the
 * registry indexed for its referrers API.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import type { ContentStore, ReadOptions } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, sha256Digest } from "../oci/digest.ts";
import { isSelfVerifying, verifyStream } from "../oci/verify_stream.ts";
import type { Reference } from "../oci/reference.ts";
import type { RegistryClient } from "../registry/client.ts";

/** Attempts per blob upload (the first and restarts from the source). */
const UPLOAD_ATTEMPTS = 3;

/** What the destination did, for the report. */
export interface DestinationStats {
  /** Blobs uploaded. */
  uploadedBlobs: number;
  /** Bytes uploaded. */
  uploadedBytes: number;
  /** Blobs mounted from the source repository (same registry). */
  mountedBlobs: number;
  /** Manifests pushed (by digest or tag). */
  manifests: number;
  /** Upload restarts after a failure that committed nothing. */
  restarts: number;
}

/** Options of {@linkcode registryDestination}. */
export interface DestinationOptions {
  /** Re-opens a blob of the source for a restarted upload. */
  reopen: (desc: Descriptor, options: ReadOptions) => Promise<ReadableStream<Uint8Array>>;
  /** A repository on the same registry that holds the blobs (cross-repository mount). */
  mountFrom?: string;
  /** Logs one line per restart (for `--debug`). */
  log?: (line: string) => void;
}

/** A {@linkcode ContentStore} that writes into a registry repository, with its statistics. */
export interface RegistryDestination extends ContentStore {
  /** What was written so far. */
  readonly stats: DestinationStats;
  /** True when the registry indexed this pushed manifest's subject (OCI 1.1 `OCI-Subject`). */
  subjectIndexed(digest: Digest): boolean;
}

/** Errors after which nothing was committed and the upload may be restarted from the source. */
function isRestartable(err: unknown): boolean {
  return isDangerzoneError(err, "REGISTRY_UNREACHABLE", "REGISTRY_RETRY_EXHAUSTED", "REGISTRY_TIMEOUT");
}

/**
 * The destination store of `ref`'s repository.
 *
 * @example
 * ```ts ignore
 * const dst = registryDestination(client, parseReference("registry.example/mirror/dz"), {
 *   reopen: (d, o) => src.getBlob(d, o),
 * });
 * await copyImage(src, dst, { root });
 * ```
 */
export function registryDestination(
  client: RegistryClient,
  ref: Reference,
  options: DestinationOptions,
): RegistryDestination {
  const store = client.store(ref);
  const indexed = new Set<string>();
  const stats: DestinationStats = {
    uploadedBlobs: 0,
    uploadedBytes: 0,
    mountedBlobs: 0,
    manifests: 0,
    restarts: 0,
  };

  async function uploadOnce(desc: Descriptor, stream: ReadableStream<Uint8Array>, read: ReadOptions) {
    let sourceError: unknown;
    try {
      return await client.uploadBlob(
        ref,
        desc,
        isSelfVerifying(stream, desc) ? stream : stream.pipeThrough(verifyStream(desc)),
        {
          ...(options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom }),
          onBodyError: (err) => (sourceError = err),
          ...read,
        },
      );
    } catch (err) {
      // the source's own failure (a digest mismatch at EOF) aborted the upload: report that
      throw sourceError ?? err;
    }
  }

  return {
    stats,
    subjectIndexed: (digest) => indexed.has(digest),
    resolve: (r, o) => store.resolve(r, o),
    getManifest: (d, o) => store.getManifest(d, o),
    getBlob: (d, o) => store.getBlob(d, o),
    hasBlob: (d, o) => store.hasBlob(d, o),
    async putBlob(desc, stream, read = {}) {
      let current = stream;
      for (let attempt = 1;; attempt++) {
        try {
          const outcome = await uploadOnce(desc, current, read);
          if (outcome === "mounted") stats.mountedBlobs++;
          else {
            stats.uploadedBlobs++;
            stats.uploadedBytes += desc.size;
          }
          return;
        } catch (err) {
          if (!isRestartable(err) || attempt >= UPLOAD_ATTEMPTS) throw err;
          stats.restarts++;
          options.log?.(
            `upload of ${desc.digest.slice(0, 19)}… failed (${
              err instanceof Error ? err.message : String(err)
            }); restarting from the source`,
          );
          current = await options.reopen(desc, read);
        }
      }
    },
    async putManifest(desc, raw, tag, read = {}) {
      const digest = await sha256Digest(raw);
      if (digest !== desc.digest || raw.byteLength !== desc.size) {
        throw new DangerzoneError(
          "DIGEST_MISMATCH",
          `manifest bytes do not match ${desc.digest.slice(0, 19)}…`,
        );
      }
      const pushed = await client.pushManifest(ref, raw, {
        mediaType: desc.mediaType,
        ...(tag === undefined ? {} : { tag }),
        ...read,
      });
      stats.manifests++;
      if (pushed.subjectIndexed) indexed.add(digest);
    },
  };
}
