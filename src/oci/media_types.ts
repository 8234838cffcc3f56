/**
 * Media types of OCI and Docker manifests, indexes, configs and cosign artifacts.
 *
 * @module
 */

/** Media type constants. */
export const MediaType = {
  OCI_MANIFEST: "application/vnd.oci.image.manifest.v1+json",
  OCI_INDEX: "application/vnd.oci.image.index.v1+json",
  OCI_CONFIG: "application/vnd.oci.image.config.v1+json",
  OCI_LAYER_TAR_GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
  OCI_LAYER_TAR: "application/vnd.oci.image.layer.v1.tar",
  OCI_EMPTY: "application/vnd.oci.empty.v1+json",
  DOCKER_MANIFEST: "application/vnd.docker.distribution.manifest.v2+json",
  DOCKER_MANIFEST_LIST: "application/vnd.docker.distribution.manifest.list.v2+json",
  DOCKER_CONFIG: "application/vnd.docker.container.image.v1+json",
  DOCKER_LAYER_TAR_GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  COSIGN_SIMPLE_SIGNING: "application/vnd.dev.cosign.simplesigning.v1+json",
  SIGSTORE_BUNDLE: "application/vnd.dev.sigstore.bundle.v0.3+json",
} as const;

/** Manifest media types (single image). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST];

/** Index media types (multi-platform). */
export const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST];

/** The `Accept` list sent for manifests: OCI and Docker, index and manifest. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_MANIFEST_LIST,
  MediaType.DOCKER_MANIFEST,
];

/** True for an image manifest media type. */
export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(mediaType);
}

/** True for an index or manifest-list media type. */
export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_MEDIA_TYPES.includes(mediaType);
}
