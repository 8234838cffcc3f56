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
import { digestHex } from "../oci/digest.ts";
import { type BlobCheck, blobCheckFor } from "../oci/verify_stream.ts";
import { taggedDescriptor, taggedIndexJson, WriteOnlyTarStore } from "../layout/_tar_entries.ts";

const OCI_LAYOUT = new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}');
const BLOCK = 512;
/** Size of each reusable read buffer. */
const CHUNK = 1024 * 1024;
/**
 * Number of reusable read buffers. A chunk handed to the reader of `readable` is overwritten only
 * after `RING - 1` later chunks were handed out: a consumer that writes each chunk before reading
 * far ahead (the runtime adapter awaits every write; `pipeTo` holds at most two) never sees it
 * change, and one that keeps chunks longer sees them detached (empty), never silently altered.
 */
const RING = 4;

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

/** Reads a blob's chunks: BYOB into the archive's reusable buffers for a byte stream. */
interface BlobChunks {
  /** The next chunk, or null at the end. */
  read(): Promise<Uint8Array | null>;
  cancel(reason: unknown): Promise<void>;
}

type Part =
  | { kind: "bytes"; bytes: Uint8Array }
  | {
    kind: "stream";
    chunks: BlobChunks;
    check: BlobCheck;
    settle: (err?: unknown) => void;
  };

/**
 * An oci-archive being generated; read {@linkcode OciArchiveStream.readable} while writing. The tar is
 * pull-based with one chunk of read-ahead: a blob's bytes are read from its source only as the reader
 * of `readable` asks for more. A byte-stream source (a layout's blob file) is read into a small ring of
 * reused buffers, so memory stays at a few MiB whatever the image size; a chunk the reader got stays
 * intact until it has read three more. A source marked with `markSelfVerifying` for the same
 * descriptor is counted, not hashed a second time; any other is hashed here.
 */
export class OciArchiveStream extends WriteOnlyTarStore implements ContentStore {
  /** The tar bytes. */
  readonly readable: ReadableStream<Uint8Array>;
  readonly #entries: Descriptor[] = [];
  readonly #parts: Part[] = [];
  readonly #ring: ArrayBuffer[] = [];
  #next = 0;
  #wake: (() => void) | undefined;
  #failure: unknown = undefined;
  #state: "open" | "finished" | "aborted" = "open";

  /** Starts the archive with its directory entries. */
  constructor() {
    super("an archive stream");
    this.#parts.push(
      { kind: "bytes", bytes: header("blobs/", "directory", 0) },
      { kind: "bytes", bytes: header("blobs/sha256/", "directory", 0) },
    );
    this.readable = new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: (reason) =>
        this.abort(reason ?? new DangerzoneError("RUNTIME_FAILED", "the runtime stopped reading")),
    }, { highWaterMark: 1 });
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
    if (this.written.get(desc.digest) === desc.size) return stream.cancel().catch(() => {});
    const label = `blob ${desc.digest.slice(0, 19)}…`;
    const check = blobCheckFor(stream, desc, { label });
    const chunks = this.#chunksOf(stream);
    const done = new Promise<void>((resolve, reject) => {
      this.#parts.push({
        kind: "bytes",
        bytes: header(`blobs/sha256/${digestHex(desc.digest)}`, "file", desc.size),
      });
      this.#parts.push({
        kind: "stream",
        chunks,
        check,
        settle: (err) => {
          if (err === undefined) {
            this.written.set(desc.digest, desc.size);
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
    this.#entries.push(taggedDescriptor(desc, tag));
  }

  /** Appends `index.json` (the tagged manifests), `oci-layout` and the end of the tar. */
  finish(): Promise<void> {
    if (this.#state !== "open") {
      return Promise.reject(
        this.#failure ?? new DangerzoneError("INTERNAL", "the archive is already finished"),
      );
    }
    let index: Uint8Array;
    try {
      index = taggedIndexJson(this.#entries);
    } catch (err) {
      return Promise.reject(err);
    }
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
        part.chunks.cancel(reason).catch(() => {});
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
      let chunk: Uint8Array | null;
      try {
        chunk = await part.chunks.read();
        if (chunk === null) part.check.finish();
        else part.check.update(chunk);
      } catch (err) {
        this.#parts.shift();
        part.chunks.cancel(err).catch(() => {});
        part.settle(err);
        this.abort(err);
        throw err;
      }
      if (chunk === null) {
        this.#parts.shift();
        part.settle();
        continue;
      }
      if (chunk.byteLength === 0) continue;
      controller.enqueue(chunk);
      return;
    }
  }

  /** A chunk reader of `stream`: BYOB into the ring for a byte stream, else its own chunks. */
  #chunksOf(stream: ReadableStream<Uint8Array>): BlobChunks {
    let byob: ReadableStreamBYOBReader | undefined;
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      // not a byte stream: read its chunks as they come
    }
    if (byob === undefined) {
      const reader = stream.getReader();
      return {
        read: async () => {
          const step = await reader.read();
          return step.done ? null : step.value;
        },
        cancel: (reason) => reader.cancel(reason),
      };
    }
    const reader = byob;
    return {
      read: async () => {
        const slot = this.#next;
        this.#next = (slot + 1) % RING;
        const buffer = this.#ring[slot] ?? new ArrayBuffer(CHUNK);
        const step = await reader.read(new Uint8Array(buffer, 0, buffer.byteLength));
        // the read moved the buffer: keep its new owner for the next turn
        if (step.value !== undefined) this.#ring[slot] = step.value.buffer;
        return step.done ? null : step.value;
      },
      cancel: (reason) => reader.cancel(reason),
    };
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
