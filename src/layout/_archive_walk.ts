/**
 * Private: the one walk over an OCI image layout tar that every reader shares, so the refusal rules
 * live in one place ({@linkcode readOciArchive} extracts blobs, {@linkcode OciArchiveFile} records
 * their offsets). Entry names are classified strictly, duplicates refused, the metadata files read
 * under their caps and checked for being strict JSON (or the `oci-layout` file), the blob count and
 * bytes bounded; what to do with each blob's body is the caller's.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { assertOciLayoutFile, MAX_OCI_LAYOUT_BYTES } from "./_oci_layout_file.ts";
import { classifyArchivePath, displayName, type MetadataName } from "./_safe_path.ts";
import { parseStrictJsonAs } from "../strict_json.ts";
import { type TarEntryHeader, TarParser, type TarSource } from "./_tar_parse.ts";
import { MAX_INDEX_BYTES } from "./dir.ts";

/** Limits of an archive read; every one has a safe default. */
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

/** A blob entry met by the walk; its body must be consumed by the handler. */
export interface BlobEntry {
  /** The digest its name claims (not yet checked against its bytes). */
  digest: Digest;
  /** Body size from the header. */
  size: number;
  /** Offset of the body from the start of the source. */
  offset: number;
  /** The entry name, for messages. */
  shown: string;
}

/** What the walk collected besides the blobs. */
export interface WalkedArchive {
  /** Exact bytes of `index.json`. */
  untrustedIndexJson: Uint8Array;
  /** Exact bytes of `dangerzone.json`, when present. */
  untrustedDangerzoneJson: Uint8Array | undefined;
  /** The entry names in archive order, without the `./` prefix (directories end in `/`). */
  entries: string[];
}

const GiB = 1024 * 1024 * 1024;

/** `ARCHIVE_INVALID` with the archive hint. */
export function invalidArchive(message: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("ARCHIVE_INVALID", message, {
    hint: "the archive is damaged or was not made by prepare-archive or cosign save; do not use it",
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Walks `source` with every check above; `onBlob` consumes each blob's body through the parser
 * (`body()`, `readAll()` or `skip()`). `sourceSize` (a regular file's size) lets `skip()` seek.
 */
export async function walkOciArchive(
  source: TarSource,
  options: ArchiveReadOptions & { sourceSize?: number },
  onBlob: (blob: BlobEntry, parser: TarParser) => Promise<void>,
): Promise<WalkedArchive> {
  const maxTotal = options.maxTotalBytes ?? 64 * GiB;
  const maxIndex = options.maxIndexBytes ?? MAX_INDEX_BYTES;
  const parser = new TarParser(source, {
    maxEntries: options.maxEntries ?? 10_000,
    maxEntryBytes: options.maxEntryBytes ?? 32 * GiB,
    ...(options.sourceSize === undefined ? {} : { sourceSize: options.sourceSize }),
  });
  const seen = new Set<string>();
  const entries: string[] = [];
  const metadata = new Map<MetadataName, Uint8Array>();
  let total = 0;
  try {
    while (true) {
      const header: TarEntryHeader | null = await parser.next();
      if (header === null) break;
      const entry = classifyArchivePath(header.untrustedName, header.type === "directory");
      const key = entry.kind === "directory" ? `${entry.name}/` : entry.name;
      const shown = displayName(header.untrustedName);
      if (seen.has(key)) throw invalidArchive(`archive entry '${shown}' appears twice`);
      seen.add(key);
      entries.push(key);
      switch (entry.kind) {
        case "directory":
          break;
        case "metadata": {
          const cap = entry.name === "oci-layout" ? MAX_OCI_LAYOUT_BYTES : maxIndex;
          if (header.size > cap) {
            throw invalidArchive(
              `archive entry '${shown}' is ${header.size} bytes, over the ${cap}-byte cap`,
            );
          }
          const raw = await parser.readAll(cap);
          if (entry.name === "oci-layout") assertOciLayoutFile(raw, "archive");
          else parseStrictJsonAs(raw, entry.name);
          metadata.set(entry.name, raw);
          break;
        }
        case "blob": {
          total += header.size;
          if (total > maxTotal) {
            throw invalidArchive(`archive holds more than ${maxTotal} bytes of blobs (at '${shown}')`);
          }
          await onBlob({ digest: entry.digest, size: header.size, offset: header.offset, shown }, parser);
          break;
        }
      }
    }
  } finally {
    await parser.close();
  }
  const index = metadata.get("index.json");
  if (metadata.get("oci-layout") === undefined || index === undefined) {
    throw invalidArchive(
      `archive is not an OCI image layout: it has no ${index === undefined ? "index.json" : "oci-layout"}`,
    );
  }
  return { untrustedIndexJson: index, untrustedDangerzoneJson: metadata.get("dangerzone.json"), entries };
}
