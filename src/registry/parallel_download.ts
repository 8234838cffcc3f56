/**
 * Parallel Range downloads of one large blob (containerd 2.1 multipart fetch, aria2): the blob is
 * split into chunks, N workers each on their OWN connection (own HTTP/1.1 client, own TCP
 * connection, own Tor circuit with `torIsolation`) fetch chunks as closed ranges `bytes=A-B` and
 * write them at their offsets into the one download file, each through its own file handle.
 *
 * SHA-256 runs once, in order: a worker whose bytes start exactly where the hashed prefix ends
 * hashes them from its buffer before writing them; bytes that arrive ahead of the prefix are
 * written only, and hashed when the prefix reaches them by reading them back from the file (the
 * page cache, they were just written). Memory stays bounded by one buffer per worker plus one for
 * those reads, whatever the order of arrival; {@linkcode RangeDownloadStats.rereadBytes} says how
 * many bytes took that path.
 *
 * Only a 206 whose `Content-Range` is exactly the range asked for (and a `Content-Length`, if any,
 * of that length) is accepted; any other answer (a 200, a wrong or missing range) ends the
 * parallel attempt with a `fallback` result: the file is cut to its contiguous prefix and the
 * caller continues with one stream. A dropped range is asked again from where it stopped. A
 * redirect (a CDN with signed URLs) is followed once and its target asked directly afterwards,
 * until it answers 401/403 (expired): then the registry is asked again for a fresh one.
 *
 * With `resumable`, a small record next to the file (`<file>.ranges`, written atomically) says how
 * many bytes of each chunk are on disk, so a killed run resumes; it is never trusted (a record
 * that does not fit is discarded, and the final digest decides).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { BlobVerifier } from "../oci/verify_stream.ts";
import {
  chunkSizeFor,
  contiguousEnd,
  encodeRecord,
  MAX_RECORD_BYTES,
  parseRecord,
  planChunks,
  receivedFromPrefix,
  type ResumeState,
} from "./_range_plan.ts";
import { ioFailure } from "./_blob_file_writer.ts";
import { BUFFER_SIZE, type ChunkState, RangeFetcher } from "./_range_fetch.ts";
import type { Transport, TransportRequest } from "./transport.ts";

/** Options of {@linkcode downloadRanges}. */
export interface RangeDownloadOptions {
  /** Parallel connections (at least 2 to be worth it). */
  connections: number;
  /** Chunk size (default: {@linkcode chunkSizeFor}). */
  chunkSize?: number;
  /** Keep a resume record next to the file and adopt what an earlier run left. */
  resumable: boolean;
  /** Keep what the file holds as a contiguous prefix when there is no record (a single stream handed over). */
  adoptPrefix?: boolean;
  /** Abort a range after this long without bytes, then ask again (default 60 s). */
  idleTimeoutMs?: number;
  /** Tries per range without progress before failing with `SHORT_READ` (default 4). */
  attempts?: number;
  /** Bytes received by all connections together (including bytes resumed from disk), and the total. */
  onProgress?: (received: number, total: number) => void;
  /** Receives one line per notable event (for `--debug`). */
  onLog?: (line: string) => void;
  /** Aborts the download (the file and record are kept when resumable). */
  signal?: AbortSignal;
}

/** What to download and where. */
export interface RangeJob {
  /** The blob request (registry, path, scope); each range adds its own `Range` and connection. */
  request: TransportRequest;
  /** The blob's descriptor: its size and digest are what the bytes must match. */
  descriptor: Descriptor;
  /** The download file (created if missing). */
  file: string;
}

/** What a parallel download did. */
export interface RangeDownloadStats {
  /** Bytes hashed from a worker's buffer as they arrived. */
  inOrderBytes: number;
  /** Bytes that arrived ahead of the hashed prefix and were read back from the file to hash them. */
  rereadBytes: number;
  /** Range requests sent. */
  requests: number;
  /** Bytes adopted from an earlier run. */
  resumedBytes: number;
}

/** The outcome of {@linkcode downloadRanges}. */
export type RangeDownloadResult =
  /** The file holds the whole blob; size and digest matched. */
  | { kind: "done"; stats: RangeDownloadStats }
  /** The server does not serve ranges as asked: the file holds the contiguous prefix `prefix`. */
  | { kind: "fallback"; reason: string; prefix: number };

/** Path of the resume record of a download file. */
export function rangeRecordPath(path: string): string {
  return `${path}.ranges`;
}

/**
 * Downloads the blob of `request` into the file at `path` over parallel Range requests and checks
 * its size and digest (`SIZE_MISMATCH`, `DIGEST_MISMATCH`; a mismatch after a resume says
 * `resumed`). Returns `fallback` when the server does not serve ranges exactly.
 */
export async function downloadRanges(
  transport: Transport,
  job: RangeJob,
  options: RangeDownloadOptions,
): Promise<RangeDownloadResult> {
  const run = await RangeRun.open(transport, job, options);
  return await run.run();
}

const RECORD_MS = 1000;

class RangeRun {
  readonly #descriptor: Descriptor;
  readonly #path: string;
  readonly #options: RangeDownloadOptions;
  readonly #chunks: ChunkState[];
  readonly #chunkSize: number;
  readonly #verifier: BlobVerifier;
  readonly #abort = new AbortController();
  readonly #stats: RangeDownloadStats = { inOrderBytes: 0, rereadBytes: 0, requests: 0, resumedBytes: 0 };
  #hashed = 0;
  #hashing = false;
  #hashFile: Deno.FsFile | undefined;
  /** One buffer for every read-back of bytes that arrived ahead of the hashed prefix. */
  #hashBuffer: Uint8Array<ArrayBuffer> | undefined;
  #received = 0;
  readonly #fetcher: RangeFetcher;
  #fallback: string | undefined;
  #failure: unknown;
  #lastRecord = 0;
  #recordWrite: Promise<void> = Promise.resolve();
  #probe: PromiseWithResolvers<boolean> = Promise.withResolvers<boolean>();

  private constructor(
    transport: Transport,
    job: RangeJob,
    options: RangeDownloadOptions,
    resume: ResumeState,
  ) {
    this.#descriptor = job.descriptor;
    this.#path = job.file;
    this.#options = options;
    this.#chunkSize = resume.chunkSize;
    this.#chunks = planChunks(job.descriptor.size, resume.chunkSize).map((c, i) => ({
      ...c,
      received: resume.received[i] ?? 0,
      taken: false,
    }));
    this.#received = resume.received.reduce((a, b) => a + b, 0);
    this.#stats.resumedBytes = this.#received;
    this.#verifier = new BlobVerifier(job.descriptor);
    this.#fetcher = new RangeFetcher(
      transport,
      { request: job.request, size: job.descriptor.size, abort: this.#abort.signal },
      options,
    );
  }

  /** Opens (creating) the file and adopts what an earlier run left, if it fits. */
  static async open(
    transport: Transport,
    job: RangeJob,
    options: RangeDownloadOptions,
  ): Promise<RangeRun> {
    const { descriptor, file: path } = job;
    const chunkSize = options.chunkSize ?? chunkSizeFor(descriptor.size, options.connections);
    let resume: ResumeState = { chunkSize, received: planChunks(descriptor.size, chunkSize).map(() => 0) };
    try {
      using file = await Deno.open(path, { write: true, create: true });
      const fileSize = (await file.stat()).size;
      if ((options.resumable || options.adoptPrefix === true) && fileSize > 0) {
        const adopted = options.resumable ? await readRecord(path, descriptor, fileSize) : undefined;
        if (adopted !== undefined && adopted !== "discard") {
          resume = adopted;
        } else if (adopted === undefined && fileSize <= descriptor.size) {
          // no record: a single-stream `.partial`, which is a contiguous prefix
          resume.received = receivedFromPrefix(planChunks(descriptor.size, chunkSize), fileSize);
        } else {
          await file.truncate(0);
        }
      } else if (fileSize > 0) {
        await file.truncate(0);
      }
    } catch (err) {
      throw ioFailure(err, path);
    }
    const run = new RangeRun(transport, job, options, resume);
    // the record exists before any byte is written at an offset, so a file without one is a prefix
    if (options.resumable) await run.#writeRecord();
    return run;
  }

  async run(): Promise<RangeDownloadResult> {
    const workers = Math.max(1, Math.min(this.#options.connections, this.#chunks.length));
    try {
      this.#hashFile = await Deno.open(this.#path, { read: true });
    } catch (err) {
      throw ioFailure(err, this.#path);
    }
    const userSignal = this.#options.signal;
    const onUserAbort = () => this.#abort.abort(userSignal?.reason);
    userSignal?.addEventListener("abort", onUserAbort, { once: true });
    try {
      this.#options.onProgress?.(this.#received, this.#descriptor.size);
      const tasks = [this.#guard(() => this.#advanceHash())];
      for (let w = 1; w <= workers; w++) tasks.push(this.#guard(() => this.#worker(w)));
      await Promise.all(tasks);
      if (userSignal?.aborted) throw userSignal.reason;
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#fallback !== undefined) return await this.#toPrefix(this.#fallback);
      await this.#advanceHash();
      if (this.#failure !== undefined) throw this.#failure;
    } catch (err) {
      if (this.#options.resumable) await this.#writeRecord().catch(() => {});
      throw err;
    } finally {
      userSignal?.removeEventListener("abort", onUserAbort);
      this.#hashFile?.close();
      this.#hashFile = undefined;
      await this.#recordWrite.catch(() => {});
    }
    try {
      this.#verifier.finish();
    } catch (err) {
      if (this.#stats.resumedBytes > 0 && err instanceof DangerzoneError) {
        throw new DangerzoneError(err.code, `${err.message} (resumed ${this.#stats.resumedBytes} bytes)`, {
          cause: err,
        });
      }
      throw err;
    }
    return { kind: "done", stats: { ...this.#stats, requests: this.#fetcher.requests } };
  }

  /** Runs a task; its first failure stops every other task (they end quietly on the abort). */
  async #guard(task: () => Promise<void>): Promise<void> {
    try {
      await task();
    } catch (err) {
      if (this.#abort.signal.aborted && this.#failure === undefined && this.#fallback !== undefined) return;
      if (this.#abort.signal.aborted && err === this.#abort.signal.reason) return;
      this.#failure ??= err;
      this.#probe.resolve(false);
      this.#abort.abort(err);
    }
  }

  async #worker(connection: number): Promise<void> {
    // only the first connection asks before the server proved that it serves ranges exactly
    if (connection > 1 && !(await this.#probe.promise)) return;
    using file = await Deno.open(this.#path, { write: true }).catch((err) => {
      throw ioFailure(err, this.#path);
    });
    const state = { buffer: new ArrayBuffer(BUFFER_SIZE) };
    for (;;) {
      if (this.#abort.signal.aborted) return;
      const chunk = this.#chunks.find((c) => !c.taken && c.received < c.end - c.start);
      if (chunk === undefined) {
        this.#probe.resolve(true); // everything was on disk already
        return;
      }
      chunk.taken = true;
      const fallback = await this.#fetcher.fetchChunk(connection, chunk, {
        state,
        deliver: (c, bytes) => this.#flush(c, file, bytes),
        onServed: () => this.#probe.resolve(true),
      });
      if (fallback !== undefined) return this.#fallBack(fallback);
    }
  }

  /** Hashes bytes that extend the prefix, writes them at their offset, then lets the prefix grow. */
  async #flush(chunk: ChunkState, file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
    const at = chunk.start + chunk.received;
    if (at === this.#hashed && !this.#hashing) {
      this.#verifier.update(bytes);
      this.#hashed += bytes.byteLength;
      this.#stats.inOrderBytes += bytes.byteLength;
    }
    try {
      await file.seek(at, Deno.SeekMode.Start);
      let off = 0;
      while (off < bytes.byteLength) off += await file.write(bytes.subarray(off));
    } catch (err) {
      throw ioFailure(err, this.#path);
    }
    chunk.received += bytes.byteLength;
    this.#received += bytes.byteLength;
    this.#options.onProgress?.(this.#received, this.#descriptor.size);
    if (this.#options.resumable && performance.now() - this.#lastRecord > RECORD_MS) {
      this.#recordWrite = this.#recordWrite.then(() => this.#writeRecord());
    }
    await this.#advanceHash();
  }

  /** Hashes, in order, the bytes on disk beyond the hashed prefix (one pass at a time). */
  async #advanceHash(): Promise<void> {
    if (this.#hashing) return;
    const file = this.#hashFile;
    if (file === undefined) return;
    this.#hashing = true;
    try {
      for (;;) {
        const target = contiguousEnd(this.#chunks, this.#chunks.map((c) => c.received), this.#hashed);
        if (target <= this.#hashed) return;
        this.#hashBuffer ??= new Uint8Array(BUFFER_SIZE);
        const buffer = this.#hashBuffer;
        await file.seek(this.#hashed, Deno.SeekMode.Start);
        while (this.#hashed < target) {
          const n = await file.read(buffer.subarray(0, Math.min(buffer.byteLength, target - this.#hashed)));
          if (n === null) {
            throw new DangerzoneError("IO", `the download file ${this.#path} is shorter than written`);
          }
          this.#verifier.update(buffer.subarray(0, n));
          this.#hashed += n;
          this.#stats.rereadBytes += n;
        }
      }
    } catch (err) {
      if (err instanceof DangerzoneError) throw err;
      throw ioFailure(err, this.#path);
    } finally {
      this.#hashing = false;
    }
  }

  #fallBack(reason: string): void {
    this.#fallback ??= reason;
    this.#probe.resolve(false);
    this.#abort.abort(new DOMException("fallback", "AbortError"));
  }

  /** Cuts the file to its contiguous prefix and drops the record, for a single-stream continuation. */
  async #toPrefix(reason: string): Promise<RangeDownloadResult> {
    const prefix = contiguousEnd(this.#chunks, this.#chunks.map((c) => c.received));
    try {
      await Deno.truncate(this.#path, prefix);
      await removeIfExists(rangeRecordPath(this.#path));
    } catch (err) {
      throw ioFailure(err, this.#path);
    }
    this.#log(`parallel download falls back to one stream at byte ${prefix}: ${reason}`);
    return { kind: "fallback", reason, prefix };
  }

  /** Writes the record atomically (a temporary file renamed over it). */
  async #writeRecord(): Promise<void> {
    this.#lastRecord = performance.now();
    const text = encodeRecord(
      this.#descriptor.digest,
      this.#chunkSize,
      this.#descriptor.size,
      this.#chunks.map((c) => c.received),
    );
    const path = rangeRecordPath(this.#path);
    const tmp = `${path}.tmp`;
    try {
      await Deno.writeTextFile(tmp, text);
      await Deno.rename(tmp, path);
    } catch (err) {
      throw ioFailure(err, path);
    }
  }

  #log(line: string): void {
    this.#options.onLog?.(line);
  }
}

/** The checked record of `path`; `undefined` when there is none, `discard` when it does not fit. */
async function readRecord(
  path: string,
  descriptor: Descriptor,
  fileSize: number,
): Promise<ResumeState | "discard" | undefined> {
  let text: string;
  try {
    const recordPath = rangeRecordPath(path);
    if ((await Deno.stat(recordPath)).size > MAX_RECORD_BYTES) return undefined;
    text = await Deno.readTextFile(recordPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  // a record that does not fit says nothing about the file either: the caller starts over
  return parseRecord(text, { digest: descriptor.digest, size: descriptor.size, fileSize }) ?? "discard";
}

/** Removes a download file and its resume record (either may be missing). */
export async function removeDownload(path: string): Promise<void> {
  await removeIfExists(path);
  await removeIfExists(rangeRecordPath(path));
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
