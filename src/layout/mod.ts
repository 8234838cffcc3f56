/**
 * OCI image layouts on disk and as tar, read and written streaming and safely: the shared
 * foundation of prepare-archive, load-archive and upgrade.
 *
 * @module
 */
export * from "./dir.ts";
export * from "./tar_reader.ts";
export * from "./tar_writer.ts";
export * from "./archive_index.ts";
export * from "./blob_check.ts";
export * from "./archive_file.ts";
export * from "./image_tar_stream.ts";
// Types the public API refers to, re-exported so its documentation is complete.
export type { MetadataName } from "./_safe_path.ts";
export { WriteOnlyTarStore } from "./_tar_entries.ts";
