/**
 * Writes an OCI image layout as a tar, the way `cosign save` plus Dangerzone's archive tool lay
 * it out: `./`, `./blobs/`, `./blobs/sha256/`, then `./blobs/sha256/<hex>` as they arrive, then
 * `./dangerzone.json`, `./index.json`, `./oci-layout`. Regular files and directories only, with
 * deterministic headers (mode 0644 / 0755, uid/gid 0, no user names, mtime 0). Each blob streams
 * from a `ReadableStream` straight into the tar (never held in memory) and is verified against
 * its descriptor on the way. Output goes to `FILE.partial`, which is fsynced and renamed to
 * `FILE` only by {@linkcode OciArchiveWriter.finish}; any failure removes it.
 *
 * @module
 */
import { createTarPacker, type TarHeader } from "modern-tar";
import { DangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { verifyStream } from "../oci/verify_stream.ts";
import { dirname, ioError, syncDir, writeAll } from "./_atomic_file.ts";
import { OCI_LAYOUT_BYTES } from "./_oci_layout_file.ts";
import { blobRelativePath } from "./_safe_path.ts";
import { parseArchiveIndex } from "./archive_index.ts";

const FIXED_MTIME = new Date(0);

/** The metadata written by {@linkcode OciArchiveWriter.finish}. */
export interface ArchiveMetadata {
  /** Exact bytes of `index.json` (the image only). */
  indexJson: Uint8Array;
  /** Exact bytes of `dangerzone.json` (the full index); omit for a plain `cosign save` layout. */
  dangerzoneJson?: Uint8Array | undefined;
}

function header(name: string, type: "file" | "directory", size: number): TarHeader {
  return {
    name,
    size,
    type,
    mode: type === "directory" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    mtime: FIXED_MTIME,
  };
}

/**
 * An archive being written. Implements the write side of {@linkcode ContentStore}
 * (`putBlob`, `putManifest`, `hasBlob`); reads throw `UNSUPPORTED`. Calls are serialised, so
 * concurrent `putBlob` calls are safe (each waits its turn).
 *
 * @example
 * ```ts
 * import { OciArchiveWriter } from "./tar_writer.ts";
 * const dir = await Deno.makeTempDir();
 * const writer = await OciArchiveWriter.create(`${dir}/archive.tar`);
 * await writer.abort(); // or putBlob(...) then finish({ indexJson, dangerzoneJson })
 * ```
 */
export class OciArchiveWriter implements ContentStore {
  /** The final path (`FILE`); the data goes to `FILE.partial` until {@linkcode OciArchiveWriter.finish}. */
  readonly path: string;
  readonly #partial: string;
  readonly #file: Deno.FsFile;
  readonly #controller: ReturnType<typeof createTarPacker>["controller"];
  readonly #pump: Promise<void>;
  readonly #written = new Map<Digest, number>();
  #queue: Promise<unknown> = Promise.resolve();
  #failure: unknown = undefined;
  #state: "open" | "finished" | "aborted" = "open";

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#partial = `${path}.partial`;
    this.#file = file;
    const { readable, controller } = createTarPacker();
    this.#controller = controller;
    this.#pump = (async () => {
      try {
        for await (const chunk of readable) await writeAll(file, chunk);
      } catch (err) {
        // Stop the packer too, or a pending entry write would wait forever for the queue to drain.
        this.#failure ??= wrap(err, path);
        try {
          controller.error(this.#failure);
        } catch {
          // already stopped
        }
        throw this.#failure;
      }
    })();
    // A failure is reported by the call that caused it or by finish(); never unhandled.
    this.#pump.catch(() => {});
  }

  /** Starts writing `path` (as `path.partial`, truncating a stale one) with the directory entries. */
  static async create(path: string): Promise<OciArchiveWriter> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(`${path}.partial`, { write: true, create: true, truncate: true, mode: 0o644 });
    } catch (err) {
      throw ioError(err, `creating ${path}.partial`);
    }
    const writer = new OciArchiveWriter(path, file);
    await writer.#serial(async () => {
      for (const dir of ["./", "./blobs/", "./blobs/sha256/"]) {
        await writer.#entry(header(dir, "directory", 0));
      }
    });
    return writer;
  }

  /** Reading from an archive being written is not supported. */
  resolve(): Promise<Descriptor> {
    return Promise.reject(unsupported("resolve"));
  }

  /** Reading from an archive being written is not supported. */
  getManifest(): Promise<Uint8Array> {
    return Promise.reject(unsupported("getManifest"));
  }

  /** Reading from an archive being written is not supported. */
  getBlob(): Promise<ReadableStream<Uint8Array>> {
    return Promise.reject(unsupported("getBlob"));
  }

  /** True when this writer already wrote the blob (verified on the way in). */
  hasBlob(desc: Descriptor): Promise<boolean> {
    return Promise.resolve(this.#written.get(desc.digest) === desc.size);
  }

  /**
   * Streams a blob into `./blobs/sha256/<hex>`, verified against `desc` (size and digest); a
   * blob already written is skipped (the stream is cancelled). A failure aborts the archive.
   */
  putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>): Promise<void> {
    return this.#serial(async () => {
      if (this.#written.has(desc.digest)) {
        await stream.cancel().catch(() => {});
        return;
      }
      const verified = stream.pipeThrough(verifyStream(desc, { label: `blob ${desc.digest.slice(0, 19)}…` }));
      await this.#entry(header(`./${blobRelativePath(desc.digest)}`, "file", desc.size), verified);
      this.#written.set(desc.digest, desc.size);
    }, stream);
  }

  /** Writes a manifest's exact bytes as a blob (verified against `desc`). Tags are not stored in archives. */
  putManifest(desc: Descriptor, raw: Uint8Array, tag?: string): Promise<void> {
    if (tag !== undefined) {
      return Promise.reject(
        new DangerzoneError("UNSUPPORTED", "an archive has no tags; its index.json is passed to finish()"),
      );
    }
    return this.putBlob(desc, new Blob([raw as Uint8Array<ArrayBuffer>]).stream());
  }

  /**
   * Checks the metadata (the same rules the reader applies: {@linkcode parseArchiveIndex}; and
   * every index entry was written), writes `./dangerzone.json`, `./index.json`, `./oci-layout`
   * and the end-of-archive marker, fsyncs, and renames `FILE.partial` to `FILE`.
   */
  finish(metadata: ArchiveMetadata): Promise<void> {
    return this.#serial(async () => {
      const index = parseArchiveIndex({
        untrustedIndexJson: metadata.indexJson,
        untrustedDangerzoneJson: metadata.dangerzoneJson,
      });
      for (const d of index.entries) {
        if (this.#written.get(d.digest) !== d.size) {
          throw new DangerzoneError(
            "ARCHIVE_INVALID",
            `the archive index lists ${d.digest.slice(0, 19)}… but that blob was not written`,
          );
        }
      }
      if (metadata.dangerzoneJson !== undefined) {
        await this.#entry(
          header("./dangerzone.json", "file", metadata.dangerzoneJson.length),
          metadata.dangerzoneJson,
        );
      }
      await this.#entry(header("./index.json", "file", metadata.indexJson.length), metadata.indexJson);
      await this.#entry(header("./oci-layout", "file", OCI_LAYOUT_BYTES.length), OCI_LAYOUT_BYTES);
      this.#controller.finalize();
      await this.#pump;
      try {
        await this.#file.sync();
        this.#file.close();
        this.#state = "finished";
        await Deno.rename(this.#partial, this.path);
      } catch (err) {
        throw ioError(err, `finishing ${this.path}`);
      }
      await syncDir(dirname(this.path));
    });
  }

  /** Stops writing and removes `FILE.partial`. Safe to call at any time, also after a failure. */
  async abort(): Promise<void> {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    this.#failure ??= new DangerzoneError("IO", "archive writing was aborted");
    try {
      this.#controller.error(this.#failure);
    } catch {
      // the packer was already stopped
    }
    await this.#pump.catch(() => {});
    try {
      this.#file.close();
    } catch {
      // already closed
    }
    await Deno.remove(this.#partial).catch(() => {});
  }

  /** Writes one entry; `body` is bytes or a stream of exactly `h.size` bytes. */
  async #entry(h: TarHeader, body?: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
    const sink = this.#controller.add(h);
    if (body instanceof ReadableStream) {
      await body.pipeTo(sink);
      return;
    }
    const w = sink.getWriter();
    if (body !== undefined && body.length > 0) await w.write(body);
    await w.close();
  }

  /** Runs `op` after every earlier call; the first failure poisons the writer and removes the partial file. */
  #serial(op: () => Promise<void>, stream?: ReadableStream<Uint8Array>): Promise<void> {
    const run = async () => {
      if (this.#state !== "open" || this.#failure !== undefined) {
        await stream?.cancel().catch(() => {});
        throw this.#failure ??
          new DangerzoneError("USAGE", `the archive ${this.path} is already ${this.#state}`);
      }
      try {
        await op();
      } catch (err) {
        this.#failure ??= wrap(err, this.path);
        await this.abort();
        throw this.#failure;
      }
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => {});
    return next;
  }
}

function unsupported(op: string): DangerzoneError {
  return new DangerzoneError("UNSUPPORTED", `${op} is not supported on an archive being written`);
}

function wrap(err: unknown, path: string): DangerzoneError {
  return err instanceof DangerzoneError ? err : ioError(err, `writing ${path}`);
}
