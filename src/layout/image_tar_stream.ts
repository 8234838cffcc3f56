/**
 * An oci-archive tar generated on the fly for `runtime.load()`, whose blobs are copied straight from
 * a local {@linkcode UnverifiedBlobSource} (an archive file by offset, or a layout directory's
 * files) and hashed exactly once, on the way out. It is the write side of a
 * {@linkcode ContentStore}, so {@linkcode copyImage} drives it and enforces the trust chain (which
 * descriptors belong to the verified image); like a registry's cross-repository blob mount,
 * `putBlob(desc, stream)` does not read the stream it is given (it cancels it) but copies `desc`'s
 * bytes from the source it was built with, checked against `desc`.
 *
 * A blob's bytes are handed to the reader of {@linkcode ImageTarStream.readable} as they are hashed;
 * its LAST chunk is handed over only after size and digest matched, and on a mismatch (a file that
 * changed since it was checked) the tar stream errors instead, before the runtime has seen the whole
 * blob or the end of the tar; the runtime adapter then kills the runtime, so nothing is loaded.
 *
 * The tar is pull-based and uses one reused 1 MiB buffer: each chunk of `readable` is valid only until
 * the next read (the runtime adapter writes each chunk to the runtime before it reads the next).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { BlobVerifier } from "../oci/verify_stream.ts";
import { CHUNK_SIZE } from "./_byte_stream.ts";
import { OCI_LAYOUT_BYTES } from "./_oci_layout_file.ts";
import { blobRelativePath } from "./_safe_path.ts";
import { fileEntry, taggedDescriptor, taggedIndexJson, WriteOnlyTarStore } from "./_tar_entries.ts";
import { END_OF_ARCHIVE, entryHeader, paddingFor } from "./_tar_header.ts";

/** Reads one blob's raw bytes in order. */
export interface UnverifiedBlobReader {
  /** Fills `into` with the next bytes; 0 at the blob's end. Throws when the source ends early. */
  readSync(into: Uint8Array): number;
  /** Releases the reader. */
  close(): void;
}

/** A local store that can hand out a blob's raw bytes, unverified, for a consumer that hashes them itself. */
export interface UnverifiedBlobSource {
  /** Opens `desc`'s bytes (absent: `ARCHIVE_INVALID`; wrong size: `SIZE_MISMATCH`). */
  openUnverifiedBlob(desc: Descriptor): UnverifiedBlobReader | Promise<UnverifiedBlobReader>;
}

/** Options of {@linkcode ImageTarStream}. */
export interface ImageTarStreamOptions {
  /** Called with the number of blob bytes handed over so far. */
  onProgress?: (bytes: number) => void;
}

type Part =
  | { kind: "bytes"; bytes: Uint8Array; settle?: (err?: unknown) => void }
  | { kind: "blob"; desc: Descriptor; settle: (err?: unknown) => void };

/** The blob being copied. */
interface Copying {
  desc: Descriptor;
  reader: UnverifiedBlobReader;
  verifier: BlobVerifier;
  remaining: number;
  settle: (err?: unknown) => void;
}

/**
 * An oci-archive being generated from `source`; read {@linkcode ImageTarStream.readable} while
 * {@linkcode copyImage} writes into it, then call {@linkcode ImageTarStream.finish}.
 *
 * @example
 * ```ts ignore
 * const tar = new ImageTarStream(archive);
 * const loading = runtime.load(tar.readable);
 * await copyImage(archive, tar, { root, tag: "localhost/app:staging" });
 * await tar.finish();
 * await loading;
 * ```
 */
export class ImageTarStream extends WriteOnlyTarStore implements ContentStore {
  /** The tar bytes (each chunk valid until the next read). */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #source: UnverifiedBlobSource;
  readonly #onProgress: ((bytes: number) => void) | undefined;
  readonly #entries: Descriptor[] = [];
  readonly #parts: Part[] = [];
  readonly #buffer = new Uint8Array(CHUNK_SIZE);
  #copying: Copying | undefined;
  #progress = 0;
  #wake: (() => void) | undefined;
  #failure: unknown = undefined;
  #state: "open" | "finished" | "aborted" = "open";

  /** Starts the tar (its directory entries) over `source`. */
  constructor(source: UnverifiedBlobSource, options: ImageTarStreamOptions = {}) {
    super("a tar stream for the runtime");
    this.#source = source;
    this.#onProgress = options.onProgress;
    this.#parts.push(
      { kind: "bytes", bytes: entryHeader("blobs/", "directory", 0) },
      { kind: "bytes", bytes: entryHeader("blobs/sha256/", "directory", 0) },
    );
    this.readable = new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: (reason) =>
        this.abort(reason ?? new DangerzoneError("RUNTIME_FAILED", "the runtime stopped reading")),
    }, { highWaterMark: 0 });
  }

  /**
   * Appends `blobs/sha256/<hex>` with `desc`'s bytes from the source (verified while the reader
   * pulls them); `stream` is cancelled unread. Resolves once the blob was handed over to its
   * verified end; a failure errors the tar.
   */
  putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>): Promise<void> {
    const cancelled = stream.cancel().catch(() => {});
    return cancelled.then(() => this.#append(desc, { kind: "blob", desc, settle: () => {} }));
  }

  /** Writes a manifest's bytes (verified) as a blob; with `tag`, lists it in `index.json` under that name. */
  async putManifest(desc: Descriptor, raw: Uint8Array, tag?: string): Promise<void> {
    const verifier = new BlobVerifier(desc, { label: `manifest ${desc.digest.slice(0, 19)}…` });
    verifier.update(raw);
    verifier.finish();
    await this.#append(desc, { kind: "bytes", bytes: raw });
    if (tag === undefined) return;
    this.#entries.push(taggedDescriptor(desc, tag));
  }

  /** Appends `index.json` (the tagged manifests), `oci-layout` and the end of the tar. */
  finish(): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(this.#failure ?? new DangerzoneError("INTERNAL", "the tar is already finished"));
    }
    let index: Uint8Array;
    try {
      index = taggedIndexJson(this.#entries);
    } catch (err) {
      return Promise.reject(err);
    }
    for (const bytes of [...fileEntry("index.json", index), ...fileEntry("oci-layout", OCI_LAYOUT_BYTES)]) {
      this.#parts.push({ kind: "bytes", bytes });
    }
    this.#parts.push({ kind: "bytes", bytes: END_OF_ARCHIVE });
    this.#state = "finished";
    this.#wakeReader();
    return Promise.resolve();
  }

  /** Errors the tar stream with `reason` (the runtime reading it is then stopped). Idempotent. */
  abort(reason: unknown): void {
    if (this.#state === "aborted") return;
    this.#state = "aborted";
    this.#failure ??= reason;
    const copying = this.#copying;
    this.#copying = undefined;
    if (copying !== undefined) {
      copying.reader.close();
      copying.settle(this.#failure);
    }
    for (const part of this.#parts.splice(0)) part.settle?.(this.#failure);
    this.#wakeReader();
  }

  /** Queues header, body and padding of one blob; resolves when the body was handed over. */
  #append(desc: Descriptor, body: Part): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(
        this.#failure ?? new DangerzoneError("INTERNAL", `the tar stream is already ${this.#state}`),
      );
    }
    if (this.written.get(desc.digest) === desc.size) return Promise.resolve();
    this.written.set(desc.digest, desc.size);
    return new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown) => (err === undefined ? resolve() : reject(err));
      this.#parts.push(
        { kind: "bytes", bytes: entryHeader(`${blobRelativePath(desc.digest)}`, "file", desc.size) },
        { ...body, settle },
        { kind: "bytes", bytes: paddingFor(desc.size) },
      );
      this.#wakeReader();
    });
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      if (this.#state === "aborted") throw this.#failure;
      if (this.#copying !== undefined) {
        try {
          if (this.#copyChunk(controller, this.#copying)) return;
        } catch (err) {
          this.abort(err);
          throw err;
        }
        continue;
      }
      const part = this.#parts.shift();
      if (part === undefined) {
        if (this.#state === "finished") {
          controller.close();
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      if (part.kind === "bytes") {
        part.settle?.();
        if (part.bytes.byteLength === 0) continue;
        controller.enqueue(part.bytes);
        return;
      }
      try {
        const reader = await this.#source.openUnverifiedBlob(part.desc);
        const label = `blob ${part.desc.digest.slice(0, 19)}…`;
        this.#copying = {
          desc: part.desc,
          reader,
          verifier: new BlobVerifier(part.desc, { label }),
          remaining: part.desc.size,
          settle: part.settle,
        };
      } catch (err) {
        part.settle(err);
        this.abort(err);
        throw err;
      }
    }
  }

  /** Hands over the next chunk of the blob being copied; false when it ended (verified) with nothing to hand over. */
  #copyChunk(controller: ReadableStreamDefaultController<Uint8Array>, c: Copying): boolean {
    let chunk: Uint8Array | undefined;
    if (c.remaining > 0) {
      const n = c.reader.readSync(this.#buffer.subarray(0, Math.min(CHUNK_SIZE, c.remaining)));
      if (n === 0) {
        throw new DangerzoneError("SHORT_READ", `blob ${c.desc.digest.slice(0, 19)}… ended early`);
      }
      chunk = this.#buffer.subarray(0, n);
      c.verifier.update(chunk);
      c.remaining -= n;
    }
    if (c.remaining === 0) {
      // The last bytes go out only after size and digest matched.
      c.verifier.finish();
      c.reader.close();
      this.#copying = undefined;
      c.settle();
    }
    if (chunk === undefined) return false;
    this.#progress += chunk.byteLength;
    this.#onProgress?.(this.#progress);
    controller.enqueue(chunk);
    return true;
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
