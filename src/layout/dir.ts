/**
 * An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) as a
 * {@linkcode ContentStore}. Reads are verified against their descriptor (size and digest, at EOF
 * for streams); writes go to `blobs/sha256/<hex>.<random>.tmp`, are verified, fsynced and only
 * then renamed into place. An existing blob is never trusted by its size: it is overwritten, or
 * re-hashed by {@linkcode OciLayoutDir.hasBlob}. `index.json` and `dangerzone.json` are read and
 * written as exact bytes, never re-serialised.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { ContentStore, ReadOptions } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, digestFromHex } from "../oci/digest.ts";
import { type ImageIndex, parseManifest } from "../oci/manifest.ts";
import { MediaType } from "../oci/media_types.ts";
import type { Reference } from "../oci/reference.ts";
import { blobCheckFor, BlobVerifier } from "../oci/verify_stream.ts";
import { dirname } from "../fs_path.ts";
import { ioError, randomSuffix, syncDir, writeAll, writeFileAtomic } from "./_atomic_file.ts";
import {
  assertOciLayoutFile,
  MAX_OCI_LAYOUT_BYTES,
  OCI_LAYOUT_BYTES,
  REF_NAME_ANNOTATION,
} from "./_oci_layout_file.ts";
import { chunkReader, verifiedByteStream } from "./_byte_stream.ts";
import type { UnverifiedBlobReader } from "./image_tar_stream.ts";
import { blobRelativePath, type MetadataName } from "./_safe_path.ts";
import { parseStrictJsonAs } from "../strict_json.ts";

export { REF_NAME_ANNOTATION };

/** Largest manifest read into memory. */
export const MAX_MANIFEST_BYTES: number = 4 * 1024 * 1024;

/** Largest `index.json` / `dangerzone.json` read into memory. */
export const MAX_INDEX_BYTES: number = 4 * 1024 * 1024;

const READ_CHUNK = 1 << 20;
const EMPTY_INDEX = new TextEncoder().encode(
  `{"schemaVersion":2,"mediaType":"${MediaType.OCI_INDEX}","manifests":[]}`,
);

/** The exact bytes of `index.json` and the index parsed from them. */
export interface RawIndex {
  /** The exact bytes of the file. */
  raw: Uint8Array;
  /** Parsed from `raw` (strictly: duplicate keys refused). */
  index: ImageIndex;
}

function labelOf(digest: Digest): string {
  return `blob ${digest.slice(0, 19)}…`;
}

function missing(path: string, digest: Digest, cause?: unknown): DangerzoneError {
  return new DangerzoneError(
    "ARCHIVE_INVALID",
    `${labelOf(digest)} is missing from the OCI layout at ${path}`,
    {
      ...(cause === undefined ? {} : { cause }),
      hint: "the layout or archive is incomplete; make it again",
    },
  );
}

/**
 * An OCI image layout on disk. Create with {@linkcode OciLayoutDir.create} (new or existing,
 * writable) or {@linkcode OciLayoutDir.open} (must exist).
 *
 * @example
 * ```ts
 * import { OciLayoutDir } from "./dir.ts";
 * const dir = await OciLayoutDir.create(await Deno.makeTempDir());
 * const bytes = new TextEncoder().encode("hello");
 * const { sha256Digest } = await import("../oci/digest.ts");
 * const desc = { mediaType: "application/octet-stream", digest: await sha256Digest(bytes), size: 5 };
 * await dir.putBlob(desc, new Blob([bytes]).stream());
 * ```
 */
export class OciLayoutDir implements ContentStore {
  /** The layout's root directory. */
  readonly path: string;
  readonly #durable: boolean;

  private constructor(path: string, durable = true) {
    this.path = path;
    this.#durable = durable;
  }

  /**
   * Opens or creates a layout at `path`: makes `blobs/sha256/`, writes `oci-layout` and an empty
   * `index.json` when they are absent; an existing `oci-layout` must be valid. With `durable: false`
   * blobs are not fsynced (a scratch layout that is deleted after use: a crash loses nothing of value).
   */
  static async create(path: string, options: { durable?: boolean } = {}): Promise<OciLayoutDir> {
    const dir = new OciLayoutDir(path, options.durable ?? true);
    try {
      await Deno.mkdir(`${path}/blobs/sha256`, { recursive: true });
    } catch (err) {
      throw ioError(err, `creating the OCI layout ${path}`);
    }
    const layout = await dir.#readCapped(`${path}/oci-layout`, MAX_OCI_LAYOUT_BYTES, "oci-layout");
    if (layout === undefined) await writeFileAtomic(`${path}/oci-layout`, OCI_LAYOUT_BYTES);
    else assertOciLayoutFile(layout, path);
    if (await dir.readMetadata("index.json") === undefined) {
      await writeFileAtomic(`${path}/index.json`, EMPTY_INDEX);
    }
    return dir;
  }

  /** Opens an existing layout (for example one made by `cosign save`); `oci-layout` must be valid. */
  static async open(path: string): Promise<OciLayoutDir> {
    const dir = new OciLayoutDir(path);
    const layout = await dir.#readCapped(`${path}/oci-layout`, MAX_OCI_LAYOUT_BYTES, "oci-layout");
    if (layout === undefined) {
      throw new DangerzoneError(
        "ARCHIVE_INVALID",
        `${path} is not an OCI image layout: it has no oci-layout file`,
        {
          hint: "give the directory made by cosign save or prepare-archive",
        },
      );
    }
    assertOciLayoutFile(layout, path);
    return dir;
  }

  /** The absolute or relative file path of a blob in this layout. */
  blobPath(digest: Digest): string {
    return `${this.path}/${blobRelativePath(digest)}`;
  }

  /** Resolves a digest or a tag (`org.opencontainers.image.ref.name`) through `index.json`. */
  async resolve(ref: Reference, _options?: ReadOptions): Promise<Descriptor> {
    const { index } = await this.readIndex();
    const matches = ref.digest !== undefined
      ? index.manifests.filter((d) => d.digest === ref.digest)
      : index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === (ref.tag ?? "latest"));
    const first = matches[0];
    if (first === undefined || matches.length > 1) {
      throw new DangerzoneError(
        "ARCHIVE_INVALID",
        `the OCI layout at ${this.path} has ${
          matches.length === 0 ? "no" : "more than one"
        } entry for ${ref.identifier()}`,
      );
    }
    return first;
  }

  /** The verified bytes of a manifest (at most {@linkcode MAX_MANIFEST_BYTES}). */
  async getManifest(desc: Descriptor, _options?: ReadOptions): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new DangerzoneError(
        "SIZE_LIMIT_EXCEEDED",
        `manifest ${
          desc.digest.slice(0, 19)
        }… is ${desc.size} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`,
      );
    }
    const size = await this.statBlob(desc.digest);
    if (size === undefined) throw missing(this.path, desc.digest);
    const verifier = new BlobVerifier(desc, { label: `manifest ${desc.digest.slice(0, 19)}…` });
    if (size !== desc.size) {
      throw new DangerzoneError(
        "SIZE_MISMATCH",
        `manifest ${
          desc.digest.slice(0, 19)
        }… in ${this.path} has ${size} bytes, its descriptor says ${desc.size}`,
      );
    }
    const bytes = await this.#readCapped(this.blobPath(desc.digest), desc.size, labelOf(desc.digest));
    if (bytes === undefined) throw missing(this.path, desc.digest);
    verifier.update(bytes);
    verifier.finish();
    return bytes;
  }

  /** A stream of the blob that errors with `SIZE_MISMATCH` / `DIGEST_MISMATCH` unless it matches `desc`. */
  async getBlob(desc: Descriptor, _options?: ReadOptions): Promise<ReadableStream<Uint8Array>> {
    const path = this.blobPath(desc.digest);
    const file = await this.#openBlobFile(desc, path);
    // BYOB readers get the file read straight into their buffer, others get fresh chunks.
    return verifiedByteStream(
      { read: (into) => file.read(into), close: () => file.close() },
      desc,
      {
        label: labelOf(desc.digest),
        chunkSize: READ_CHUNK,
        wrapError: (err) => ioError(err, `reading ${path}`),
      },
    );
  }

  /**
   * The blob file's bytes, NOT verified: only for a consumer that hashes every byte itself before
   * using it ({@linkcode ImageTarStream}). Absent: `ARCHIVE_INVALID`; wrong size: `SIZE_MISMATCH`;
   * the file must still be a regular file.
   */
  async openUnverifiedBlob(desc: Descriptor): Promise<UnverifiedBlobReader> {
    const path = this.blobPath(desc.digest);
    const file = await this.#openBlobFile(desc, path);
    let open = true;
    const close = () => {
      if (open) {
        open = false;
        file.close();
      }
    };
    let position = 0;
    const layoutPath = this.path;
    return {
      readSync(into: Uint8Array): number {
        const want = Math.min(into.length, desc.size - position);
        if (want <= 0 || !open) return 0;
        let n: number | null;
        try {
          n = file.readSync(into.subarray(0, want));
        } catch (err) {
          close();
          throw ioError(err, `reading ${path}`);
        }
        if (n === null || n === 0) {
          close();
          throw new DangerzoneError("SHORT_READ", `${labelOf(desc.digest)} in ${layoutPath} ended early`, {
            hint: "the layout changed while being read; do not use it",
          });
        }
        position += n;
        return n;
      },
      close,
    };
  }

  /** Opens the blob file at `path` for reading (absent: `ARCHIVE_INVALID`; wrong size: `SIZE_MISMATCH`). */
  async #openBlobFile(desc: Descriptor, path: string): Promise<Deno.FsFile> {
    const size = await this.statBlob(desc.digest);
    if (size === undefined) throw missing(this.path, desc.digest);
    if (size !== desc.size) {
      throw new DangerzoneError(
        "SIZE_MISMATCH",
        `${labelOf(desc.digest)} in ${this.path} has ${size} bytes, its descriptor says ${desc.size}`,
      );
    }
    try {
      return await Deno.open(path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw missing(this.path, desc.digest, err);
      throw ioError(err, `opening ${path}`);
    }
  }

  /** True only when the blob exists as a regular file with the right size AND its bytes hash to the digest. */
  async hasBlob(desc: Descriptor, options?: ReadOptions): Promise<boolean> {
    const size = await this.statBlob(desc.digest);
    if (size !== desc.size) return false;
    try {
      const stream = await this.getBlob(desc, options);
      for await (const _ of stream) { /* hashing happens in the stream */ }
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

  /**
   * The size of a blob file, or undefined when absent. A blob path that is not a regular file
   * (symlink, directory, fifo, device) is refused with `ARCHIVE_INVALID`.
   */
  async statBlob(digest: Digest): Promise<number | undefined> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(this.blobPath(digest));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw ioError(err, `inspecting ${this.blobPath(digest)}`);
    }
    if (!info.isFile) {
      throw new DangerzoneError(
        "ARCHIVE_INVALID",
        `${labelOf(digest)} in ${this.path} is not a regular file (a link or special file)`,
        { hint: "this layout was tampered with; do not use it" },
      );
    }
    return info.size;
  }

  /**
   * Streams a blob into `blobs/sha256/<hex>.<random>.tmp`, verifying size and digest on the way (only
   * the size for a stream that verifies itself for `desc`: `blobCheckFor`), then fsyncs (when durable) and
   * renames it into place (replacing any existing file). On any failure the temp file is removed and the
   * stream cancelled.
   */
  async putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>, _options?: ReadOptions): Promise<void> {
    const final = this.blobPath(desc.digest);
    const tmp = `${final}.${randomSuffix()}.tmp`;
    const verifier = blobCheckFor(stream, desc, { label: labelOf(desc.digest) });
    const reader = chunkReader(stream);
    let file: Deno.FsFile | undefined;
    let finished = false;
    try {
      file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      while (true) {
        const chunk = await reader.read();
        if (chunk === null) break;
        verifier.update(chunk);
        await writeAll(file, chunk);
      }
      finished = true;
      verifier.finish();
      if (this.#durable) await file.sync();
      file.close();
      file = undefined;
      await Deno.rename(tmp, final);
    } catch (err) {
      if (!finished) await reader.cancel(err).catch(() => {});
      file?.close();
      await Deno.remove(tmp).catch(() => {});
      throw ioError(err, `writing ${final}`);
    } finally {
      reader.release();
    }
    if (this.#durable) await syncDir(dirname(final));
  }

  /**
   * Stores a manifest's exact bytes (checked against `desc`) as a blob and, with `tag`, adds or
   * replaces the `index.json` entry carrying that `org.opencontainers.image.ref.name`.
   */
  async putManifest(desc: Descriptor, raw: Uint8Array, tag?: string, _options?: ReadOptions): Promise<void> {
    const verifier = new BlobVerifier(desc, { label: `manifest ${desc.digest.slice(0, 19)}…` });
    verifier.update(raw);
    verifier.finish();
    await writeFileAtomic(this.blobPath(desc.digest), raw);
    if (tag === undefined) return;
    const { index } = await this.readIndex();
    const entry: Descriptor = {
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: tag },
      ...(desc.platform === undefined ? {} : { platform: desc.platform }),
    };
    const manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
    manifests.push(entry);
    const next = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
    await writeFileAtomic(`${this.path}/index.json`, new TextEncoder().encode(JSON.stringify(next)));
  }

  /** The exact bytes of `index.json` and the strictly parsed index. */
  async readIndex(): Promise<RawIndex> {
    const raw = await this.readMetadata("index.json");
    if (raw === undefined) {
      throw new DangerzoneError("ARCHIVE_INVALID", `the OCI layout at ${this.path} has no index.json`);
    }
    parseStrictJsonAs(raw, "index.json");
    let index;
    try {
      index = parseManifest(raw);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new DangerzoneError("ARCHIVE_INVALID", `index.json of ${this.path} is invalid: ${why}`, {
        cause,
      });
    }
    if (index.kind !== "index") {
      throw new DangerzoneError("ARCHIVE_INVALID", `index.json of ${this.path} is a manifest, not an index`);
    }
    return { raw, index };
  }

  /** Replaces `index.json` with exactly `raw` (which must parse as an index), atomically. */
  async writeIndex(raw: Uint8Array): Promise<void> {
    parseStrictJsonAs(raw, "index.json");
    const index = parseManifest(raw);
    if (index.kind !== "index") throw new DangerzoneError("ARCHIVE_INVALID", "index.json must be an index");
    await writeFileAtomic(`${this.path}/index.json`, raw);
  }

  /** The exact bytes of a metadata file, or undefined when absent (capped: `ARCHIVE_INVALID` when larger). */
  readMetadata(name: MetadataName): Promise<Uint8Array | undefined> {
    const cap = name === "oci-layout" ? MAX_OCI_LAYOUT_BYTES : MAX_INDEX_BYTES;
    return this.#readCapped(`${this.path}/${name}`, cap, name);
  }

  /** Writes a metadata file's exact bytes atomically (no validation: callers check first). */
  writeMetadata(name: MetadataName, raw: Uint8Array): Promise<void> {
    return writeFileAtomic(`${this.path}/${name}`, raw);
  }

  /** The digests of every blob file present (temp files excluded). */
  async listBlobs(): Promise<Digest[]> {
    const out: Digest[] = [];
    try {
      for await (const entry of Deno.readDir(`${this.path}/blobs/sha256`)) {
        if (/^[0-9a-f]{64}$/.test(entry.name)) out.push(digestFromHex(entry.name));
      }
    } catch (err) {
      throw ioError(err, `listing ${this.path}/blobs/sha256`);
    }
    return out.sort();
  }

  /** Removes leftover `*.tmp` files from interrupted writes. */
  async removeTemporaryFiles(): Promise<void> {
    for await (const entry of Deno.readDir(`${this.path}/blobs/sha256`)) {
      if (entry.name.endsWith(".tmp")) {
        await Deno.remove(`${this.path}/blobs/sha256/${entry.name}`).catch(() => {});
      }
    }
  }

  /** Reads a regular file of at most `cap` bytes; undefined when absent. */
  async #readCapped(path: string, cap: number, what: string): Promise<Uint8Array | undefined> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw ioError(err, `inspecting ${path}`);
    }
    if (!info.isFile) {
      throw new DangerzoneError("ARCHIVE_INVALID", `${what} in ${this.path} is not a regular file`);
    }
    if (info.size > cap) {
      throw new DangerzoneError("ARCHIVE_INVALID", `${what} in ${this.path} is larger than ${cap} bytes`);
    }
    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(path, { read: true });
      const buf = new Uint8Array(cap + 1);
      let n = 0;
      while (n < buf.length) {
        const got = await file.read(buf.subarray(n));
        if (got === null) break;
        n += got;
      }
      if (n > cap) {
        throw new DangerzoneError("ARCHIVE_INVALID", `${what} in ${this.path} is larger than ${cap} bytes`);
      }
      return buf.slice(0, n);
    } catch (err) {
      throw ioError(err, `reading ${path}`);
    } finally {
      file?.close();
    }
  }
}
