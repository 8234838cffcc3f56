/**
 * Pure planning of a parallel Range download: the chunks of a blob, the exact `Range` and
 * `Content-Range` of each request, the contiguous prefix, and the resume record kept next to a
 * `.partial` file. The record is untrusted input: it only says where to ask again from, a record
 * that does not fit is refused, and the final digest decides.
 *
 * @module
 */

/** One chunk of a blob: bytes `[start, end)`. */
export interface RangeChunk {
  /** First byte. */
  readonly start: number;
  /** One past the last byte. */
  readonly end: number;
}

/** What a resume record is checked against. */
export interface RecordExpectation {
  /** The blob's digest. */
  digest: string;
  /** The blob's size. */
  size: number;
  /** Bytes in the `.partial` file now. */
  fileSize: number;
}

/** A checked resume record: the chunk size and the bytes already on disk per chunk. */
export interface ResumeState {
  /** Chunk size the record was made with. */
  chunkSize: number;
  /** Bytes received (written) from the start of each chunk. */
  received: number[];
}

const MIB = 1024 * 1024;
const MIN_CHUNK = 4 * MIB;
const MAX_CHUNK = 64 * MIB;
/** Most chunks a record may describe (bounds the work a hostile record can cause). */
const MAX_CHUNKS = 100_000;
/** Longest record text read. */
export const MAX_RECORD_BYTES = 2 * MIB;

/**
 * The chunk size for `size` bytes over `connections`: about four chunks per connection (so a slow
 * connection delays the end by at most one chunk), between 4 and 64 MiB, a whole number of MiB.
 */
export function chunkSizeFor(size: number, connections: number): number {
  const ideal = Math.ceil(size / (Math.max(1, connections) * 4) / MIB) * MIB;
  return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, ideal));
}

/** Splits `[0, size)` into chunks of `chunkSize` bytes (the last may be shorter); every byte once. */
export function planChunks(size: number, chunkSize: number): RangeChunk[] {
  if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError("invalid size or chunk size");
  }
  const chunks: RangeChunk[] = [];
  for (let start = 0; start < size; start += chunkSize) {
    chunks.push({ start, end: Math.min(size, start + chunkSize) });
  }
  return chunks;
}

/** The `Range` header value asking for `[start, end)`: a closed range `bytes=A-B`. */
export function rangeHeader(start: number, end: number): string {
  return `bytes=${start}-${end - 1}`;
}

/**
 * True when an untrusted `Content-Range` is exactly `bytes A-B/size` for the range asked for: the
 * same start and end and the blob's own total (a `*` total or anything else is refused).
 */
export function contentRangeMatches(
  untrustedHeader: string | null,
  range: RangeChunk,
  size: number,
): boolean {
  if (untrustedHeader === null) return false;
  const m = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/.exec(untrustedHeader.trim());
  if (m === null) return false;
  return Number(m[1]) === range.start && Number(m[2]) === range.end - 1 && Number(m[3]) === size;
}

/**
 * The end of the contiguous prefix: every byte before it was received, chunk after chunk.
 * `received[i]` counts the bytes from the start of `chunks[i]`.
 */
export function contiguousEnd(chunks: readonly RangeChunk[], received: readonly number[], from = 0): number {
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i];
    if (c === undefined || c.end <= from) continue;
    const got = c.start + (received[i] ?? 0);
    if (got < c.end) return got;
  }
  return chunks.at(-1)?.end ?? 0;
}

/** The received counts of a file that holds the contiguous prefix `[0, prefix)` (a single-stream `.partial`). */
export function receivedFromPrefix(chunks: readonly RangeChunk[], prefix: number): number[] {
  return chunks.map((c) => Math.max(0, Math.min(c.end, prefix) - c.start));
}

/** The text of a resume record. */
export function encodeRecord(
  digest: string,
  chunkSize: number,
  size: number,
  received: readonly number[],
): string {
  return JSON.stringify({ version: 1, digest, size, chunkSize, received });
}

/**
 * Checks an untrusted resume record against the blob and the `.partial` file: the same digest and
 * size, a sane chunk size, one whole number per chunk within its chunk, and no claim beyond the
 * file's end. Returns `undefined` for any record that does not fit (it is then discarded).
 */
export function parseRecord(untrustedText: string, expected: RecordExpectation): ResumeState | undefined {
  let untrusted: unknown;
  try {
    untrusted = JSON.parse(untrustedText);
  } catch {
    return undefined; // not a record we wrote: discard it
  }
  if (typeof untrusted !== "object" || untrusted === null || Array.isArray(untrusted)) return undefined;
  const r: Record<string, unknown> = { ...untrusted };
  const chunkSize = r.chunkSize;
  if (r.version !== 1 || r.digest !== expected.digest || r.size !== expected.size) return undefined;
  if (typeof chunkSize !== "number" || !Number.isSafeInteger(chunkSize) || chunkSize < 1) return undefined;
  if (Math.ceil(expected.size / chunkSize) > MAX_CHUNKS) return undefined;
  const chunks = planChunks(expected.size, chunkSize);
  const list = r.received;
  if (!Array.isArray(list) || list.length !== chunks.length) return undefined;
  const received: number[] = [];
  for (const [i, c] of chunks.entries()) {
    const n: unknown = list[i];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0 || n > c.end - c.start) return undefined;
    if (n > 0 && c.start + n > expected.fileSize) return undefined;
    received.push(n);
  }
  return { chunkSize, received };
}
