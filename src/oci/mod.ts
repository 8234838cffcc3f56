/**
 * The OCI data model: references, digests, media types, descriptors, manifests, platforms,
 * verified streams and the content-store interface. No I/O.
 *
 * @module
 */
export * from "./reference.ts";
export * from "./digest.ts";
export * from "./media_types.ts";
export * from "./descriptor.ts";
export * from "./manifest.ts";
export * from "./platform.ts";
export * from "./verify_stream.ts";
export * from "./map_stream_errors.ts";
export type * from "./content_store.ts";
