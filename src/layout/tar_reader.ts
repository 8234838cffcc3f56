/**
 * Reads an OCI image layout tar (an air-gapped archive or `cosign save` output) as one stream,
 * refusing anything but the layout's own regular files and directories, and extracts it into a
 * staging {@linkcode OciLayoutDir}. Every blob is hashed while it streams to disk and must match
 * its file name (single pass); small JSON files are kept in memory under a size cap.
 *
 * Refused with `ARCHIVE_INVALID` (one line naming the entry): absolute paths, `..`, links of any
 * kind, devices, fifos, unknown entry types, duplicate names (after removing `./`), names
 * outside the layout, pax headers that override the path or size badly or carry link/sparse
 * records, entries over the size cap, more entries than the cap, more bytes than the total cap,
 * bad header checksums, truncated archives, data after the end marker, and blobs whose bytes do
 * not hash to their name.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { type ArchiveReadOptions, invalidArchive, walkOciArchive } from "./_archive_walk.ts";
import type { TarParser, TarSource } from "./_tar_parse.ts";
import type { OciLayoutDir } from "./dir.ts";

export type { TarSource } from "./_tar_parse.ts";
export type { ArchiveReadOptions } from "./_archive_walk.ts";

/** What an archive held, once read and extracted. The JSON files are checked only for being strict JSON. */
export interface ArchiveContents {
  /** The staging layout the blobs (and metadata files) were written to. */
  layout: OciLayoutDir;
  /** Exact bytes of `index.json` (not yet checked against `dangerzone.json`). */
  untrustedIndexJson: Uint8Array;
  /** Exact bytes of `dangerzone.json`, when present. */
  untrustedDangerzoneJson: Uint8Array | undefined;
  /** Every blob extracted, with its size; each one's bytes hash to its digest. */
  blobs: Map<Digest, number>;
  /** The entry names in archive order, without the `./` prefix (directories end in `/`). */
  entries: string[];
}

/**
 * Streams a tar into `staging` with every check above. On failure the staging directory may
 * hold some verified blobs (never a partial or unverified one): discard it.
 *
 * @example
 * ```ts
 * import { readOciArchive } from "./tar_reader.ts";
 * import { OciLayoutDir } from "./dir.ts";
 * const staging = await OciLayoutDir.create(await Deno.makeTempDir());
 * using file = await Deno.open("archive.tar");
 * const contents = await readOciArchive(file, staging);
 * console.log(contents.blobs.size);
 * ```
 */
export async function readOciArchive(
  source: TarSource,
  staging: OciLayoutDir,
  options: ArchiveReadOptions = {},
): Promise<ArchiveContents> {
  const blobs = new Map<Digest, number>();
  const walked = await walkOciArchive(source, options, async (blob, parser) => {
    await extractBlob(parser, staging, blob.digest, blob.size, blob.shown);
    blobs.set(blob.digest, blob.size);
  });
  const index = walked.untrustedIndexJson;
  const dangerzone = walked.untrustedDangerzoneJson;
  await staging.writeMetadata("index.json", index);
  if (dangerzone !== undefined) await staging.writeMetadata("dangerzone.json", dangerzone);
  return {
    layout: staging,
    untrustedIndexJson: index,
    untrustedDangerzoneJson: dangerzone,
    blobs,
    entries: walked.entries,
  };
}

async function extractBlob(
  parser: TarParser,
  staging: OciLayoutDir,
  digest: Digest,
  size: number,
  shown: string,
): Promise<void> {
  try {
    await staging.putBlob({ mediaType: "application/octet-stream", digest, size }, parser.body());
  } catch (err) {
    if (err instanceof DangerzoneError && (err.code === "DIGEST_MISMATCH" || err.code === "SIZE_MISMATCH")) {
      throw invalidArchive(`archive entry '${shown}' does not hash to its name: ${err.message}`, err);
    }
    throw err;
  }
}
