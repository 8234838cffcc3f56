/**
 * A registry repository as the source of {@linkcode copyImage}, with the optional
 * {@linkcode BlobFileDownloader} capability: blobs go straight to their file in the download cache
 * through the registry client's resumable `downloadBlob` (a `.partial` file left by a killed run is
 * re-hashed and resumed with `Range`, then renamed into place only after size and digest matched).
 *
 * @module
 */
import type { BlobFileDownloader } from "../copy.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Reference } from "../oci/reference.ts";
import type { DownloadOptions, RegistryClient } from "../registry/client.ts";

/** The content store of `ref`'s repository, able to download blobs into files resumably. */
export function registrySource(client: RegistryClient, ref: Reference): ContentStore & BlobFileDownloader {
  const store = client.store(ref);
  return {
    resolve: (r, o) => store.resolve(r, o),
    getManifest: (d, o) => store.getManifest(d, o),
    getBlob: (d, o) => store.getBlob(d, o),
    hasBlob: (d, o) => store.hasBlob(d, o),
    putBlob: (d, s, o) => store.putBlob(d, s, o),
    putManifest: (d, raw, tag, o) => store.putManifest(d, raw, tag, o),
    downloadBlobToFile(desc: Descriptor, path: string, options): Promise<void> {
      const download: DownloadOptions = { partialFile: "resumable" };
      if (options.onProgress !== undefined) download.onProgress = options.onProgress;
      if (options.signal !== undefined) download.signal = options.signal;
      return client.downloadBlob(ref, desc, path, download);
    },
  };
}
