/**
 * An air-gapped archive (or `cosign save` tar) read in place, in one pass over its headers: the
 * strict walk shared with {@linkcode readOciArchive} applies every refusal (absolute paths, `..`,
 * links, devices, duplicates, names outside the layout, caps, truncation, bad checksums, data after
 * the end), reads the metadata files, reads and hashes every small blob (manifests, configs,
 * signature payloads: at most {@linkcode SMALL_BLOB_BYTES}) and only records the offset and size of
 * larger ones, seeking over their bodies. Nothing is copied: the archive is not staged anywhere.
 *
 * Afterwards it is a read-only {@linkcode ContentStore}: every read (`getManifest`, `getBlob`) is
 * verified against its descriptor again, since the file may change after the walk. The file stays
 * open, so a file renamed over the path later is not read.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DangerzoneError } from "../errors.ts";
import type { ContentStore, ReadOptions } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { BlobVerifier } from "../oci/verify_stream.ts";
import { type ArchiveReadOptions, invalidArchive, walkOciArchive } from "./_archive_walk.ts";
import { CHUNK_SIZE, verifiedByteStream } from "./_byte_stream.ts";
import type { UnverifiedBlobReader, UnverifiedBlobSource } from "./image_tar_stream.ts";
import { MAX_MANIFEST_BYTES } from "./dir.ts";

/** Blobs up to this size are read and hashed during the walk; larger ones are seeked over. */
export const SMALL_BLOB_BYTES: number = MAX_MANIFEST_BYTES;

/** Where a blob's bytes are in the archive. */
interface Located {
  offset: number;
  size: number;
}

function label(digest: Digest): string {
  return `blob ${digest.slice(0, 19)}…`;
}

/**
 * An archive file, walked and checked; read blobs by descriptor. Close it (or `using`) when done.
 *
 * @example
 * ```ts ignore
 * using archive = await OciArchiveFile.open("dangerzone-amd64.tar");
 * const index = parseArchiveIndex(archive);
 * const manifest = await archive.getManifest(index.image);
 * ```
 */
export class OciArchiveFile implements ContentStore, UnverifiedBlobSource, Disposable {
  /** The archive path. */
  readonly path: string;
  /** Exact bytes of `index.json` (not yet checked against `dangerzone.json`). */
  readonly untrustedIndexJson: Uint8Array;
  /** Exact bytes of `dangerzone.json`, when present. */
  readonly untrustedDangerzoneJson: Uint8Array | undefined;
  /** The entry names in archive order, without the `./` prefix (directories end in `/`). */
  readonly entries: readonly string[];
  readonly #file: Deno.FsFile;
  readonly #blobs: Map<Digest, Located>;
  #open = true;

  private constructor(
    path: string,
    file: Deno.FsFile,
    blobs: Map<Digest, Located>,
    walked: {
      untrustedIndexJson: Uint8Array;
      untrustedDangerzoneJson: Uint8Array | undefined;
      entries: string[];
    },
  ) {
    this.path = path;
    this.#file = file;
    this.#blobs = blobs;
    this.untrustedIndexJson = walked.untrustedIndexJson;
    this.untrustedDangerzoneJson = walked.untrustedDangerzoneJson;
    this.entries = walked.entries;
  }

  /**
   * Opens `path` (a regular file) and walks it. Throws `ARCHIVE_INVALID` for anything the walk
   * refuses or a small blob whose bytes do not hash to its name; `IO` when it cannot be read.
   */
  static async open(path: string, options: ArchiveReadOptions = {}): Promise<OciArchiveFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      throw new DangerzoneError("IO", `cannot open the archive ${path}`, {
        cause: err,
        hint: "check the path and its permissions",
      });
    }
    try {
      const info = await file.stat();
      if (!info.isFile) throw invalidArchive(`${path} is not a regular file`);
      const blobs = new Map<Digest, Located>();
      const walked = await walkOciArchive(
        file,
        { ...options, sourceSize: info.size },
        async (blob, parser) => {
          if (blob.size <= SMALL_BLOB_BYTES) {
            const bytes = await parser.readAll(SMALL_BLOB_BYTES);
            const got = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
            if (got !== blob.digest) {
              throw invalidArchive(`archive entry '${blob.shown}' does not hash to its name`);
            }
          } else {
            await parser.skip();
          }
          blobs.set(blob.digest, { offset: blob.offset, size: blob.size });
        },
      );
      return new OciArchiveFile(path, file, blobs, walked);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Number of blobs in the archive. */
  get blobCount(): number {
    return this.#blobs.size;
  }

  /** Closes the file. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#file.close();
  }

  /** Same as {@linkcode OciArchiveFile.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** An archive has no tags. */
  resolve(): Promise<Descriptor> {
    return Promise.reject(new DangerzoneError("UNSUPPORTED", "an archive has no tags to resolve"));
  }

  /** The size of a blob in the archive, or undefined when absent. */
  statBlob(digest: Digest): Promise<number | undefined> {
    return Promise.resolve(this.#blobs.get(digest)?.size);
  }

  /** The verified bytes of a manifest (at most {@linkcode MAX_MANIFEST_BYTES}). */
  getManifest(desc: Descriptor, _options?: ReadOptions): Promise<Uint8Array> {
    try {
      if (desc.size > MAX_MANIFEST_BYTES) {
        throw new DangerzoneError(
          "SIZE_LIMIT_EXCEEDED",
          `manifest ${
            desc.digest.slice(0, 19)
          }… is ${desc.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`,
        );
      }
      const reader = this.openUnverifiedBlob(desc);
      const bytes = new Uint8Array(desc.size);
      let filled = 0;
      while (filled < bytes.length) {
        const n = reader.readSync(bytes.subarray(filled));
        if (n === 0) break;
        filled += n;
      }
      reader.close();
      const verifier = new BlobVerifier(desc, { label: `manifest ${desc.digest.slice(0, 19)}…` });
      verifier.update(bytes.subarray(0, filled));
      verifier.finish();
      return Promise.resolve(bytes);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A stream of the blob that errors with `SIZE_MISMATCH` / `DIGEST_MISMATCH` unless it matches `desc`. */
  getBlob(desc: Descriptor, _options?: ReadOptions): Promise<ReadableStream<Uint8Array>> {
    let reader: UnverifiedBlobReader;
    try {
      reader = this.openUnverifiedBlob(desc);
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.resolve(verifiedByteStream(
      { read: (into) => reader.readSync(into), close: () => reader.close() },
      desc,
      { label: label(desc.digest), chunkSize: CHUNK_SIZE },
    ));
  }

  /** True only when the blob is in the archive with the right size AND its bytes hash to the digest. */
  async hasBlob(desc: Descriptor, options?: ReadOptions): Promise<boolean> {
    if (this.#blobs.get(desc.digest)?.size !== desc.size) return false;
    try {
      for await (const _ of await this.getBlob(desc, options)) { /* hashed in the stream */ }
      return true;
    } catch (err) {
      if (
        err instanceof DangerzoneError && (err.code === "DIGEST_MISMATCH" || err.code === "SIZE_MISMATCH")
      ) {
        return false;
      }
      throw err;
    }
  }

  /** An archive being read is read-only. */
  putBlob(_desc: Descriptor, stream: ReadableStream<Uint8Array>): Promise<void> {
    return stream.cancel().catch(() => {}).then(() => {
      throw new DangerzoneError("UNSUPPORTED", "an archive being read is read-only");
    });
  }

  /** An archive being read is read-only. */
  putManifest(): Promise<void> {
    return Promise.reject(new DangerzoneError("UNSUPPORTED", "an archive being read is read-only"));
  }

  /**
   * The blob's bytes straight from the archive, NOT verified: only for a consumer that hashes every
   * byte itself before using it ({@linkcode ImageTarStream}). Throws `ARCHIVE_INVALID` when the blob
   * is absent and `SIZE_MISMATCH` when its size differs from `desc`.
   */
  openUnverifiedBlob(desc: Descriptor): UnverifiedBlobReader {
    if (!this.#open) throw new DangerzoneError("INTERNAL", `the archive ${this.path} is closed`);
    const located = this.#blobs.get(desc.digest);
    if (located === undefined) {
      throw new DangerzoneError(
        "ARCHIVE_INVALID",
        `${label(desc.digest)} is missing from the archive ${this.path}`,
        {
          hint: "the archive is incomplete; make it again",
        },
      );
    }
    if (located.size !== desc.size) {
      throw new DangerzoneError(
        "SIZE_MISMATCH",
        `${label(desc.digest)} in the archive has ${located.size} bytes, its descriptor says ${desc.size}`,
      );
    }
    const file = this.#file;
    const path = this.path;
    let position = 0;
    let closed = false;
    return {
      readSync(into: Uint8Array): number {
        if (closed) return 0;
        const want = Math.min(into.length, located.size - position);
        if (want <= 0) return 0;
        let n: number | null;
        try {
          // Seek and read together, synchronously: no other read can come in between.
          file.seekSync(located.offset + position, Deno.SeekMode.Start);
          n = file.readSync(into.subarray(0, want));
        } catch (err) {
          throw new DangerzoneError("IO", `reading the archive ${path} failed`, { cause: err });
        }
        if (n === null || n === 0) {
          throw new DangerzoneError(
            "SHORT_READ",
            `the archive ${path} ended inside ${label(desc.digest)} (it changed while being read)`,
            { hint: "the archive was truncated or altered; do not use it" },
          );
        }
        position += n;
        return n;
      },
      close() {
        closed = true;
      },
    };
  }
}
