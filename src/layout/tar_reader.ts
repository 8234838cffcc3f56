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
import { assertOciLayoutFile, MAX_OCI_LAYOUT_BYTES } from "./_oci_layout_file.ts";
import { classifyArchivePath, displayName, type MetadataName } from "./_safe_path.ts";
import { parseStrictJson } from "./_strict_json.ts";
import { type TarEntryHeader, TarParser, type TarSource } from "./_tar_parse.ts";
import { MAX_INDEX_BYTES, type OciLayoutDir } from "./dir.ts";

export type { TarSource } from "./_tar_parse.ts";

/** Limits of {@linkcode readOciArchive}; every one has a safe default. */
export interface ArchiveReadOptions {
  /** Most entries (files and directories), default 10 000. */
  maxEntries?: number;
  /** Largest single blob, default 32 GiB. */
  maxEntryBytes?: number;
  /** Most blob bytes in total, default 64 GiB. */
  maxTotalBytes?: number;
  /** Largest `index.json` / `dangerzone.json`, default 4 MiB. */
  maxIndexBytes?: number;
}

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

const GiB = 1024 * 1024 * 1024;

function invalid(message: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("ARCHIVE_INVALID", message, {
    hint: "the archive is damaged or was not made by prepare-archive or cosign save; do not use it",
    ...(cause === undefined ? {} : { cause }),
  });
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
  const maxTotal = options.maxTotalBytes ?? 64 * GiB;
  const maxIndex = options.maxIndexBytes ?? MAX_INDEX_BYTES;
  const parser = new TarParser(source, {
    maxEntries: options.maxEntries ?? 10_000,
    maxEntryBytes: options.maxEntryBytes ?? 32 * GiB,
  });
  const seen = new Set<string>();
  const entries: string[] = [];
  const metadata = new Map<MetadataName, Uint8Array>();
  const blobs = new Map<Digest, number>();
  let total = 0;
  try {
    while (true) {
      const header: TarEntryHeader | null = await parser.next();
      if (header === null) break;
      const entry = classifyArchivePath(header.untrustedName, header.type === "directory");
      const key = entry.kind === "directory" ? `${entry.name}/` : entry.name;
      const shown = displayName(header.untrustedName);
      if (seen.has(key)) throw invalid(`archive entry '${shown}' appears twice`);
      seen.add(key);
      entries.push(key);
      switch (entry.kind) {
        case "directory":
          break;
        case "metadata": {
          const cap = entry.name === "oci-layout" ? MAX_OCI_LAYOUT_BYTES : maxIndex;
          if (header.size > cap) {
            throw invalid(`archive entry '${shown}' is ${header.size} bytes, over the ${cap}-byte cap`);
          }
          const raw = await parser.readAll(cap);
          if (entry.name === "oci-layout") assertOciLayoutFile(raw, "archive");
          else parseStrictJson(raw, entry.name);
          metadata.set(entry.name, raw);
          break;
        }
        case "blob": {
          total += header.size;
          if (total > maxTotal) {
            throw invalid(`archive holds more than ${maxTotal} bytes of blobs (at '${shown}')`);
          }
          await extractBlob(parser, staging, entry.digest, header.size, shown);
          blobs.set(entry.digest, header.size);
          break;
        }
      }
    }
  } finally {
    await parser.close();
  }
  const index = metadata.get("index.json");
  if (metadata.get("oci-layout") === undefined || index === undefined) {
    throw invalid(
      `archive is not an OCI image layout: it has no ${index === undefined ? "index.json" : "oci-layout"}`,
    );
  }
  const dangerzone = metadata.get("dangerzone.json");
  await staging.writeMetadata("index.json", index);
  if (dangerzone !== undefined) await staging.writeMetadata("dangerzone.json", dangerzone);
  return { layout: staging, untrustedIndexJson: index, untrustedDangerzoneJson: dangerzone, blobs, entries };
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
      throw invalid(`archive entry '${shown}' does not hash to its name: ${err.message}`, err);
    }
    throw err;
  }
}
