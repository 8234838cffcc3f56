/**
 * An oci-archive generated on the fly as a `ReadableStream`, for `runtime.load()`: the write side
 * of a {@linkcode ContentStore} whose blobs stream straight into the tar (never staged on disk a
 * second time, never held in memory). Every blob is verified against its descriptor on the way;
 * when one fails, the tar stream errors, and the runtime adapter kills the runtime before it sees
 * the end of its input, so nothing is loaded.
 *
 * `index.json` lists only the manifests stored with a tag (`org.opencontainers.image.ref.name`),
 * which is how the runtime learns the name to give the image.
 *
 * @module
 */
import { createTarPacker, type TarHeader } from "modern-tar";
import { DangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, digestHex } from "../oci/digest.ts";
import { MediaType } from "../oci/media_types.ts";
import { verifyStream } from "../oci/verify_stream.ts";

const REF_NAME = "org.opencontainers.image.ref.name";
const OCI_LAYOUT = new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}');

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
    mtime: new Date(0),
  };
}

/** An oci-archive being generated; read {@linkcode OciArchiveStream.readable} while writing. */
export class OciArchiveStream implements ContentStore {
  /** The tar bytes. */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #controller: ReturnType<typeof createTarPacker>["controller"];
  readonly #written = new Map<Digest, number>();
  readonly #entries: Descriptor[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #failure: unknown = undefined;
  #state: "open" | "finished" | "aborted" = "open";

  /** Starts the archive with its directory entries. */
  constructor() {
    const { readable, controller } = createTarPacker();
    this.readable = readable;
    this.#controller = controller;
    void this.#serial(async () => {
      for (const dir of ["blobs/", "blobs/sha256/"]) await this.#entry(header(dir, "directory", 0));
    }).catch(() => {});
  }

  /** Not readable. */
  resolve(): Promise<Descriptor> {
    return Promise.reject(unsupported("resolve"));
  }

  /** Not readable. */
  getManifest(): Promise<Uint8Array> {
    return Promise.reject(unsupported("getManifest"));
  }

  /** Not readable. */
  getBlob(): Promise<ReadableStream<Uint8Array>> {
    return Promise.reject(unsupported("getBlob"));
  }

  /** True when this archive already holds the blob. */
  hasBlob(desc: Descriptor): Promise<boolean> {
    return Promise.resolve(this.#written.get(desc.digest) === desc.size);
  }

  /** Streams a blob into `blobs/sha256/<hex>`, verified against `desc`; a failure errors the archive. */
  putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>): Promise<void> {
    return this.#serial(async () => {
      if (this.#written.get(desc.digest) === desc.size) {
        await stream.cancel().catch(() => {});
        return;
      }
      const verified = stream.pipeThrough(verifyStream(desc));
      await this.#entry(header(`blobs/sha256/${digestHex(desc.digest)}`, "file", desc.size), verified);
      this.#written.set(desc.digest, desc.size);
    }, stream);
  }

  /** Writes a manifest's bytes (verified) as a blob; with `tag`, lists it in `index.json` under that name. */
  putManifest(desc: Descriptor, raw: Uint8Array, tag?: string): Promise<void> {
    const bytes = new Blob([raw as Uint8Array<ArrayBuffer>]).stream();
    return this.putBlob(desc, bytes).then(() => {
      if (tag === undefined) return;
      this.#entries.push({
        mediaType: desc.mediaType,
        digest: desc.digest,
        size: desc.size,
        annotations: { [REF_NAME]: tag },
      });
    });
  }

  /** Writes `index.json` (the tagged manifests) and `oci-layout`, then ends the tar. */
  finish(): Promise<void> {
    return this.#serial(async () => {
      if (this.#entries.length === 0) {
        throw new DangerzoneError("INTERNAL", "an archive for the runtime needs one tagged image");
      }
      const index = new TextEncoder().encode(
        JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: this.#entries }),
      );
      await this.#entry(header("index.json", "file", index.byteLength), index);
      await this.#entry(header("oci-layout", "file", OCI_LAYOUT.byteLength), OCI_LAYOUT);
      this.#controller.finalize();
      this.#state = "finished";
    });
  }

  /** Errors the tar stream with `reason` (the runtime reading it is then stopped). Idempotent. */
  abort(reason: unknown): void {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    this.#failure ??= reason;
    try {
      this.#controller.error(this.#failure);
    } catch {
      // the packer already stopped
    }
  }

  async #entry(h: TarHeader, body?: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
    const sink = this.#controller.add(h);
    if (body instanceof ReadableStream) {
      await body.pipeTo(sink);
      return;
    }
    const w = sink.getWriter();
    if (body !== undefined && body.byteLength > 0) await w.write(body);
    await w.close();
  }

  #serial(op: () => Promise<void>, stream?: ReadableStream<Uint8Array>): Promise<void> {
    const run = async () => {
      if (this.#state !== "open") {
        await stream?.cancel().catch(() => {});
        throw this.#failure ??
          new DangerzoneError("INTERNAL", `the archive stream is already ${this.#state}`);
      }
      try {
        await op();
      } catch (err) {
        this.abort(err);
        throw err;
      }
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => {});
    return next;
  }
}

function unsupported(op: string): DangerzoneError {
  return new DangerzoneError("UNSUPPORTED", `${op} is not supported on an archive stream`);
}
