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
import { DangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, digestHex } from "../oci/digest.ts";
import { MediaType } from "../oci/media_types.ts";
import { verifyStream } from "../oci/verify_stream.ts";

const REF_NAME = "org.opencontainers.image.ref.name";
const OCI_LAYOUT = new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}');
const BLOCK = 512;

/** A ustar header: regular file or directory, mode 0644/0755, uid/gid 0, mtime 0 (names < 100 bytes). */
function header(name: string, type: "file" | "directory", size: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (offset: number, text: string) => h.set(new TextEncoder().encode(text), offset);
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, "0")}\0`;
  put(0, name);
  put(100, octal(type === "directory" ? 0o755 : 0o644, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  if (size < 8 ** 11) {
    put(124, octal(size, 12));
  } else {
    // GNU base-256 for sizes of 8 GiB and more
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  put(136, octal(0, 12));
  put(148, "        ");
  put(156, type === "directory" ? "5" : "0");
  put(257, "ustar\0");
  put(263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

type Part =
  | { kind: "bytes"; bytes: Uint8Array }
  | {
    kind: "stream";
    reader: ReadableStreamDefaultReader<Uint8Array>;
    settle: (err?: unknown) => void;
  };

/**
 * An oci-archive being generated; read {@linkcode OciArchiveStream.readable} while writing. The tar is
 * pull-based: a blob's bytes are read from its source only when the reader of `readable` asks for more,
 * so memory stays at one chunk whatever the image size.
 */
export class OciArchiveStream implements ContentStore {
  /** The tar bytes. */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #written = new Map<Digest, number>();
  readonly #entries: Descriptor[] = [];
  readonly #parts: Part[] = [];
  #wake: (() => void) | undefined;
  #failure: unknown = undefined;
  #state: "open" | "finished" | "aborted" = "open";

  /** Starts the archive with its directory entries. */
  constructor() {
    this.#parts.push(
      { kind: "bytes", bytes: header("blobs/", "directory", 0) },
      { kind: "bytes", bytes: header("blobs/sha256/", "directory", 0) },
    );
    this.readable = new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: (reason) =>
        this.abort(reason ?? new DangerzoneError("RUNTIME_FAILED", "the runtime stopped reading")),
    }, { highWaterMark: 0 });
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

  /**
   * Appends a blob as `blobs/sha256/<hex>`, verified against `desc` while the reader pulls it; resolves
   * once it was read to its verified end. A failure errors the archive.
   */
  putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>): Promise<void> {
    if (this.#state !== "open") {
      return stream.cancel().catch(() => {}).then(() => {
        throw this.#failure ??
          new DangerzoneError("INTERNAL", `the archive stream is already ${this.#state}`);
      });
    }
    if (this.#written.get(desc.digest) === desc.size) return stream.cancel().catch(() => {});
    const reader = stream.pipeThrough(verifyStream(desc)).getReader();
    const done = new Promise<void>((resolve, reject) => {
      this.#parts.push({
        kind: "bytes",
        bytes: header(`blobs/sha256/${digestHex(desc.digest)}`, "file", desc.size),
      });
      this.#parts.push({
        kind: "stream",
        reader,
        settle: (err) => {
          if (err === undefined) {
            this.#written.set(desc.digest, desc.size);
            resolve();
          } else {
            reject(err);
          }
        },
      });
      const pad = (BLOCK - (desc.size % BLOCK)) % BLOCK;
      if (pad > 0) this.#parts.push({ kind: "bytes", bytes: new Uint8Array(pad) });
    });
    this.#wakeReader();
    return done;
  }

  /** Writes a manifest's bytes (verified) as a blob; with `tag`, lists it in `index.json` under that name. */
  async putManifest(desc: Descriptor, raw: Uint8Array, tag?: string): Promise<void> {
    await this.putBlob(desc, new Blob([raw as Uint8Array<ArrayBuffer>]).stream());
    if (tag === undefined) return;
    this.#entries.push({
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      annotations: { [REF_NAME]: tag },
    });
  }

  /** Appends `index.json` (the tagged manifests), `oci-layout` and the end of the tar. */
  finish(): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(
        this.#failure ?? new DangerzoneError("INTERNAL", "the archive is already finished"),
      );
    }
    if (this.#entries.length === 0) {
      return Promise.reject(
        new DangerzoneError("INTERNAL", "an archive for the runtime needs one tagged image"),
      );
    }
    const index = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: this.#entries }),
    );
    for (const [name, bytes] of [["index.json", index], ["oci-layout", OCI_LAYOUT]] as const) {
      this.#parts.push({ kind: "bytes", bytes: header(name, "file", bytes.byteLength) });
      this.#parts.push({ kind: "bytes", bytes });
      const pad = (BLOCK - (bytes.byteLength % BLOCK)) % BLOCK;
      if (pad > 0) this.#parts.push({ kind: "bytes", bytes: new Uint8Array(pad) });
    }
    this.#parts.push({ kind: "bytes", bytes: new Uint8Array(BLOCK * 2) });
    this.#state = "finished";
    this.#wakeReader();
    return Promise.resolve();
  }

  /** Errors the tar stream with `reason` (the runtime reading it is then stopped). Idempotent. */
  abort(reason: unknown): void {
    if (this.#state === "aborted") return;
    this.#state = "aborted";
    this.#failure ??= reason;
    for (const part of this.#parts.splice(0)) {
      if (part.kind === "stream") {
        part.reader.cancel(reason).catch(() => {});
        part.settle(this.#failure);
      }
    }
    this.#wakeReader();
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      if (this.#state === "aborted") throw this.#failure;
      const part = this.#parts[0];
      if (part === undefined) {
        if (this.#state === "finished") {
          controller.close();
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      if (part.kind === "bytes") {
        this.#parts.shift();
        controller.enqueue(part.bytes);
        return;
      }
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await part.reader.read();
      } catch (err) {
        this.#parts.shift();
        part.settle(err);
        this.abort(err);
        throw err;
      }
      if (step.done) {
        this.#parts.shift();
        part.settle();
        continue;
      }
      controller.enqueue(step.value);
      return;
    }
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

function unsupported(op: string): DangerzoneError {
  return new DangerzoneError("UNSUPPORTED", `${op} is not supported on an archive stream`);
}
