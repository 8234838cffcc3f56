/**
 * Private: reading streams with a reusable buffer, and the brand of streams that verify
 * themselves.
 *
 * Fresh 1 MiB chunks per read double the time and RSS of a blob copy (measured: 482 ms and
 * 110 MiB vs 252 ms and 44 MiB for 256 MiB), so byte streams are read BYOB into one buffer
 * that is handed back and forth; other streams are read normally.
 *
 * @module
 */

/** Size of the reusable read buffer. */
export const CHUNK_SIZE: number = 1 << 20;

/** Reads chunks from a stream; each chunk is valid only until the next `read()`. */
export interface ChunkReader {
  /** The next chunk, or null at the end. */
  read(): Promise<Uint8Array | null>;
  /** Cancels the stream (with `reason`) and releases it. */
  cancel(reason?: unknown): Promise<void>;
  /** Releases the lock without cancelling. */
  release(): void;
}

/** A chunk reader over `stream`: BYOB with one reused buffer when the stream is a byte stream. */
export function chunkReader(stream: ReadableStream<Uint8Array>): ChunkReader {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  if (byob !== undefined) {
    const reader = byob;
    let buffer: ArrayBuffer = new ArrayBuffer(CHUNK_SIZE);
    return {
      async read() {
        const { done, value } = await reader.read(new Uint8Array(buffer, 0, CHUNK_SIZE));
        if (done || value === undefined) return null;
        buffer = value.buffer;
        return value;
      },
      cancel: (reason) => reader.cancel(reason).catch(() => {}),
      release: () => reader.releaseLock(),
    };
  }
  const reader = stream.getReader();
  return {
    async read() {
      const { done, value } = await reader.read();
      return done ? null : value;
    },
    cancel: (reason) => reader.cancel(reason).catch(() => {}),
    release: () => reader.releaseLock(),
  };
}

const verifiedStreams = new WeakMap<ReadableStream<Uint8Array>, { digest: string; size: number }>();

/**
 * Marks a stream as one that checks its own bytes against `expected` and errors at EOF unless
 * they match (for example {@linkcode OciLayoutDir.getBlob}). A consumer expecting the very same
 * digest and size may then skip hashing; it must still count bytes and fail when the stream errors.
 */
export function markSelfVerifying<T extends ReadableStream<Uint8Array>>(
  stream: T,
  expected: { digest: string; size: number },
): T {
  verifiedStreams.set(stream, { digest: expected.digest, size: expected.size });
  return stream;
}

/** True for a stream marked by {@linkcode markSelfVerifying} with exactly this digest and size. */
export function isSelfVerifying(
  stream: ReadableStream<Uint8Array>,
  expected: { digest: string; size: number },
): boolean {
  const mark = verifiedStreams.get(stream);
  return mark !== undefined && mark.digest === expected.digest && mark.size === expected.size;
}
