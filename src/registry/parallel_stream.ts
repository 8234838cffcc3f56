/**
 * Parallel Range requests delivered as ONE in-order stream (containerd 2.1's multipart fetch: each
 * chunk feeds its own queue and the queues are read in order), for consumers that stream a blob
 * somewhere other than a file of its own, such as `prepare-archive` writing its tar.
 *
 * N connections (see `_range_fetch.ts`) fetch closed ranges; a connection takes a chunk only while
 * that chunk is within N + 2 chunks of the one being read, so at most N + 2 chunks are held in memory
 * at once (with the 1 MiB chunks used here, 6 MiB for 4 connections) whatever the order of arrival:
 * {@linkcode RangeStreamStats.peakBufferedBytes} says how much was. The stream is NOT verified: the
 * caller hashes it in order (once) as it reads. When the first range is not served exactly, nothing
 * is returned and the caller streams as before; when a later one is not, the stream continues on one
 * connection from the first byte it does not hold.
 *
 * @module
 */
import type { Descriptor } from "../oci/descriptor.ts";
import { DangerzoneError } from "../errors.ts";
import { type ChunkState, RangeFetcher, type RangeFetcherOptions } from "./_range_fetch.ts";
import { planChunks } from "./_range_plan.ts";
import { SpeedProbe } from "./_speed_probe.ts";
import type { BlobRead, BlobReader, Transport, TransportRequest } from "./transport.ts";

/** Options of {@linkcode openRangeStream}. */
export interface RangeStreamOptions extends RangeFetcherOptions {
  /** Parallel connections. */
  connections: number;
  /** Chunk size (default 1 MiB: N + 2 of them is the memory bound). */
  chunkSize?: number;
  /** Aborts every connection. */
  signal?: AbortSignal;
  /** Start at this byte (the bytes before it were read elsewhere). */
  offset?: number;
}

/** What a range stream did (read it once the stream ended). */
export interface RangeStreamStats {
  /** Most bytes held in memory at once, received but not yet read. */
  peakBufferedBytes: number;
  /** Range requests sent. */
  requests: number;
  /** Why the stream continued on one connection, if it did. */
  fallback: string | undefined;
}

/** An in-order reader of a blob fetched over parallel ranges, and its statistics. */
export interface RangeStream {
  /**
   * The blob's bytes, in order, unverified, copied into the caller's buffers (the buffers the
   * connections read into are reused, so memory does not grow with the blob).
   */
  reader: BlobReader;
  /** Filled in as the reader runs. */
  stats: RangeStreamStats;
}

/** Size of the pieces a connection reads into (small: a few of them per connection are pooled). */
const PIECE_SIZE = 256 * 1024;

/**
 * Chunks a connection may run ahead beyond one per connection: a connection that finished its chunk
 * starts the next at once instead of waiting for the slowest one, so connections do not move in lockstep.
 */
const WINDOW_SLACK = 2;

/** Default chunk size of a range stream. */
export const STREAM_CHUNK_SIZE = 1024 * 1024;

/**
 * Opens the blob of `job.request` as an in-order stream over parallel ranges, or returns `undefined`
 * when the server does not answer the first range exactly (the caller then streams it on one
 * connection).
 */
export async function openRangeStream(
  transport: Transport,
  job: { request: TransportRequest; descriptor: Descriptor },
  options: RangeStreamOptions,
): Promise<RangeStream | undefined> {
  const run = new StreamRun(transport, job, options);
  return await run.start();
}

/** Options of {@linkcode openAdaptiveReader}. */
export interface AdaptiveReaderOptions extends RangeStreamOptions {
  /** Continue over parallel ranges when one connection gives less (bytes per second); `Infinity`: always. */
  belowRate: number;
}

/**
 * A reader of the blob that starts on one connection and, when that proves slower than
 * `belowRate` over its first bytes ({@linkcode SpeedProbe}), continues from where it is over parallel
 * ranges ({@linkcode openRangeStream}); with `Infinity`, parallel from the start. Unverified, like
 * `Transport.openBlobReader`.
 */
export async function openAdaptiveReader(
  transport: Transport,
  job: { request: TransportRequest; descriptor: Descriptor },
  options: AdaptiveReaderOptions,
): Promise<BlobReader> {
  const size = job.descriptor.size;
  const request = options.signal === undefined ? job.request : { ...job.request, signal: options.signal };
  const single = (offset: number) => transport.openBlobReader(request, { size, offset });
  if (options.belowRate === Infinity) {
    return (await openRangeStream(transport, job, options))?.reader ?? await single(0);
  }
  const probe = new SpeedProbe(options.belowRate);
  let current = await single(0);
  let pos = 0;
  let decided = false;
  return {
    read: async (view) => {
      const r = await current.read(view);
      if (decided || r.done) return r;
      pos += r.bytes.byteLength;
      const verdict = probe.add(r.bytes.byteLength);
      decided = verdict !== undefined;
      if (verdict === "slow" && pos < size) {
        await current.cancel();
        options.onLog?.(`one connection gives ${probe.rate()} B/s; continuing over parallel ranges`);
        const ranged = await openRangeStream(transport, job, { ...options, offset: pos });
        current = ranged?.reader ?? await single(pos);
      }
      return r;
    },
    cancel: (reason) => current.cancel(reason),
  };
}

class StreamRun {
  readonly #transport: Transport;
  readonly #request: TransportRequest;
  readonly #size: number;
  readonly #options: RangeStreamOptions;
  readonly #chunks: ChunkState[];
  readonly #queues: Uint8Array<ArrayBuffer>[][];
  readonly #abort = new AbortController();
  readonly #fetcher: RangeFetcher;
  readonly #stats: RangeStreamStats = { peakBufferedBytes: 0, requests: 0, fallback: undefined };
  readonly #probe = Promise.withResolvers<boolean>();
  #frontier = 0;
  #buffered = 0;
  #failure: unknown;
  #wake = Promise.withResolvers<void>();
  #workers: Promise<void>[] = [];
  /** Buffers read into by connections, free again once their bytes were copied out. */
  readonly #pool: ArrayBuffer[] = [];
  /** Bytes of the frontier's first queued piece already copied out. */
  #pieceOffset = 0;
  #single: BlobReader | undefined;

  constructor(
    transport: Transport,
    job: { request: TransportRequest; descriptor: Descriptor },
    options: RangeStreamOptions,
  ) {
    this.#transport = transport;
    this.#request = job.request;
    this.#size = job.descriptor.size;
    this.#options = options;
    const offset = options.offset ?? 0;
    this.#chunks = planChunks(this.#size - offset, options.chunkSize ?? STREAM_CHUNK_SIZE).map((c) => ({
      start: c.start + offset,
      end: c.end + offset,
      received: 0,
      taken: false,
    }));
    this.#queues = this.#chunks.map(() => []);
    this.#fetcher = new RangeFetcher(
      transport,
      { request: job.request, size: this.#size, abort: this.#abort.signal },
      options,
    );
  }

  async start(): Promise<RangeStream | undefined> {
    const user = this.#options.signal;
    user?.addEventListener("abort", () => this.#stop(user.reason), { once: true });
    const workers = Math.max(1, Math.min(this.#options.connections, this.#chunks.length));
    for (let w = 1; w <= workers; w++) this.#workers.push(this.#guard(() => this.#worker(w)));
    const served = await this.#probe.promise;
    if (this.#failure !== undefined) {
      await this.#settle();
      throw this.#failure;
    }
    if (!served) {
      await this.#settle();
      return undefined;
    }
    const reader: BlobReader = {
      read: (view) => this.#read(view),
      cancel: async (reason) => {
        this.#stop(reason ?? new DOMException("cancelled", "AbortError"));
        await this.#single?.cancel(reason);
        await this.#settle();
      },
    };
    return { reader, stats: this.#stats };
  }

  async #worker(connection: number): Promise<void> {
    if (connection > 1 && !(await this.#probe.promise)) return;
    const state = { buffer: this.#pool.pop() ?? new ArrayBuffer(PIECE_SIZE) };
    for (;;) {
      const index = this.#chunks.findIndex((c) => !c.taken);
      if (index < 0 || this.#abort.signal.aborted || this.#stats.fallback !== undefined) return;
      // a chunk more than N + 2 ahead of the one being read waits: at most N + 2 chunks are in memory
      if (index >= this.#frontier + this.#options.connections + WINDOW_SLACK) {
        await this.#changed();
        continue;
      }
      const chunk = this.#chunks[index];
      if (chunk === undefined) return;
      chunk.taken = true;
      const fallback = await this.#fetcher.fetchChunk(connection, chunk, {
        state,
        deliver: (c, bytes) => {
          // the queue takes the buffer itself; the connection reads on into a new one
          this.#queues[this.#chunks.indexOf(c)]?.push(new Uint8Array(state.buffer, 0, bytes.byteLength));
          state.buffer = this.#pool.pop() ?? new ArrayBuffer(PIECE_SIZE);
          c.received += bytes.byteLength;
          this.#buffered += bytes.byteLength;
          this.#stats.peakBufferedBytes = Math.max(this.#stats.peakBufferedBytes, this.#buffered);
          this.#notify();
          return Promise.resolve();
        },
        onServed: () => this.#probe.resolve(true),
      });
      if (fallback !== undefined) {
        this.#stats.fallback ??= fallback;
        this.#probe.resolve(false);
        this.#stop(new DOMException("fallback", "AbortError"));
        return;
      }
    }
  }

  /** Copies the next bytes in order into `view`; waits for the connection that has them. */
  async #read(view: Uint8Array<ArrayBuffer>): Promise<BlobRead> {
    if (view.byteLength === 0) throw new DangerzoneError("INTERNAL", "range read into an empty view");
    for (;;) {
      if (this.#single !== undefined) return await this.#single.read(view);
      if (this.#failure !== undefined) throw this.#failure;
      const chunk = this.#chunks[this.#frontier];
      if (chunk === undefined) {
        this.#stats.requests = this.#fetcher.requests;
        return { bytes: view.subarray(0, 0), done: true };
      }
      const queue = this.#queues[this.#frontier] ?? [];
      const piece = queue[0];
      if (piece !== undefined) {
        const n = Math.min(view.byteLength, piece.byteLength - this.#pieceOffset);
        view.set(piece.subarray(this.#pieceOffset, this.#pieceOffset + n));
        this.#pieceOffset += n;
        this.#buffered -= n;
        if (this.#pieceOffset === piece.byteLength) {
          queue.shift();
          this.#pieceOffset = 0;
          if (this.#pool.length < 2 * this.#options.connections) this.#pool.push(piece.buffer);
        }
        return { bytes: view.subarray(0, n), done: false };
      }
      if (chunk.start + chunk.received === chunk.end) {
        this.#frontier++;
        this.#notify();
        continue;
      }
      if (this.#stats.fallback !== undefined) {
        await this.#continueSingle(chunk.start + chunk.received);
        continue;
      }
      await this.#changed();
    }
  }

  /** Continues on one connection from `from` (a later range was not served exactly). */
  async #continueSingle(from: number): Promise<void> {
    await this.#settle();
    for (const q of this.#queues) q.length = 0;
    this.#buffered = 0;
    this.#pool.length = 0;
    this.#options.onLog?.(
      `parallel stream continues on one connection at byte ${from}: ${this.#stats.fallback}`,
    );
    this.#single = await this.#transport.openBlobReader(
      { ...this.#request, ...(this.#options.signal === undefined ? {} : { signal: this.#options.signal }) },
      { size: this.#size, offset: from },
    );
  }

  async #guard(task: () => Promise<void>): Promise<void> {
    try {
      await task();
    } catch (err) {
      if (this.#abort.signal.aborted && err === this.#abort.signal.reason) return;
      if (this.#abort.signal.aborted && this.#stats.fallback !== undefined) return;
      this.#failure ??= err;
      this.#probe.resolve(false);
      this.#stop(err);
    }
  }

  #stop(reason: unknown): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
    this.#notify();
  }

  async #settle(): Promise<void> {
    await Promise.all(this.#workers);
  }

  #changed(): Promise<void> {
    return this.#wake.promise;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = Promise.withResolvers<void>();
    w.resolve();
  }
}
