/**
 * One connection's side of a parallel Range download, shared by the file engine
 * (`parallel_download.ts`) and the stream engine (`parallel_stream.ts`): closed-range requests on a
 * numbered connection (its own HTTP/1.1 client, TCP connection and Tor circuit), acceptance of only an
 * exact 206, the CDN redirect target reused until it answers 401/403, and a chunk's body read into a
 * reused buffer, asked again from where it stopped after a drop or an idle timeout.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { contentRangeMatches, type RangeChunk, rangeHeader } from "./_range_plan.ts";
import { redactedCause } from "./_redact.ts";
import type { Transport, TransportRequest } from "./transport.ts";

/** A chunk being fetched: `received` bytes from its start were delivered. */
export interface ChunkState extends RangeChunk {
  /** Bytes delivered from the chunk's start. */
  received: number;
  /** A worker took it. */
  taken: boolean;
}

/** Options of {@linkcode RangeFetcher}. */
export interface RangeFetcherOptions {
  /** Abort a range after this long without bytes, then ask again (default 60 s). */
  idleTimeoutMs?: number;
  /** Tries per range without progress before failing with `SHORT_READ` (default 4). */
  attempts?: number;
  /** Receives one line per notable event (for `--debug`). */
  onLog?: (line: string) => void;
}

/** A buffer a connection reads into; replaced when a read fails (a failed read keeps it). */
export interface ReadBuffer {
  /** The buffer. */
  buffer: ArrayBuffer;
}

/** What {@linkcode RangeFetcher.fetchChunk} gives the engine: bytes at a position, in order per chunk. */
export type Deliver = (chunk: ChunkState, bytes: Uint8Array) => Promise<void>;

/** The size of a connection's read buffer. */
export const BUFFER_SIZE = 1024 * 1024;
const FLUSH_MS = 500;
const MAX_RERESOLVES = 5;

type Opened = { response: Response } | { fallback: string };

/** Range requests for one blob, over numbered connections. */
export class RangeFetcher {
  readonly #transport: Transport;
  readonly #request: TransportRequest;
  readonly #size: number;
  readonly #options: RangeFetcherOptions;
  readonly #abort: AbortSignal;
  #cdn: URL | undefined;
  #reresolves = 0;
  /** Range requests sent. */
  requests = 0;

  /** `abort` stops every request of the run (its reason is rethrown as is). */
  constructor(
    transport: Transport,
    job: { request: TransportRequest; size: number; abort: AbortSignal },
    options: RangeFetcherOptions,
  ) {
    this.#transport = transport;
    this.#request = job.request;
    this.#size = job.size;
    this.#abort = job.abort;
    this.#options = options;
  }

  /**
   * Fetches the rest of `chunk` on `connection`, handing each filled buffer to `deliver` (which must
   * copy what it keeps) and asking again from where it stopped after drops. Returns the fallback
   * reason when the server does not answer with exactly the range asked for; `onServed` is called
   * when it did.
   */
  async fetchChunk(
    connection: number,
    chunk: ChunkState,
    io: { state: ReadBuffer; deliver: Deliver; onServed: () => void },
  ): Promise<string | undefined> {
    const attempts = this.#options.attempts ?? 4;
    const idleMs = this.#options.idleTimeoutMs ?? 60_000;
    const bufferSize = io.state.buffer.byteLength;
    let failures = 0;
    while (chunk.start + chunk.received < chunk.end) {
      const from = chunk.start + chunk.received;
      const idle = new AbortController();
      const signal = AbortSignal.any([this.#abort, idle.signal]);
      const expire = () => idle.abort(new DOMException("idle", "TimeoutError"));
      let timer = setTimeout(expire, idleMs);
      const rearm = () => {
        clearTimeout(timer);
        timer = setTimeout(expire, idleMs);
      };
      try {
        const opened = await this.#open(connection, { start: from, end: chunk.end }, signal);
        if ("fallback" in opened) return opened.fallback;
        io.onServed();
        const before = chunk.received;
        const body = opened.response.body;
        if (body === null) throw new DangerzoneError("REGISTRY_PROTOCOL", "a range response has no body");
        await receive(chunk, body.getReader({ mode: "byob" }), io, rearm);
        if (chunk.received > before) failures = 0;
        if (chunk.start + chunk.received < chunk.end) throw new Error("the range ended early");
      } catch (err) {
        if (this.#abort.aborted || err instanceof DangerzoneError) throw err;
        io.state.buffer = new ArrayBuffer(bufferSize);
        if (++failures > attempts) {
          throw new DangerzoneError(
            "SHORT_READ",
            `a range of the blob dropped ${failures} times at byte ${chunk.start + chunk.received}`,
            {
              cause: redactedCause(err),
              hint: "check the network and try again; the download resumes where it stopped",
            },
          );
        }
        this.#options.onLog?.(`connection ${connection}: range at byte ${from} dropped; asking again`);
        await delay(Math.min(4000, 250 * 2 ** failures), this.#abort);
      } finally {
        clearTimeout(timer);
      }
    }
    return undefined;
  }

  /** One range request on `connection`: the CDN target once known, else the registry. */
  async #open(connection: number, range: RangeChunk, signal: AbortSignal): Promise<Opened> {
    for (;;) {
      const cdn = this.#cdn;
      const headers = { ...(this.#request.headers ?? {}), Range: rangeHeader(range.start, range.end) };
      let redirected: URL | undefined;
      const req: TransportRequest = cdn === undefined
        ? { ...this.#request, headers, connection, signal, onRedirect: (u) => (redirected = u) }
        : { ...this.#request, path: cdn.href, headers, connection, signal, acceptStatus: [401, 403] };
      this.requests++;
      const { response, url } = await this.#transport.request(req);
      if (cdn !== undefined && (response.status === 401 || response.status === 403)) {
        await response.body?.cancel().catch(() => {});
        if (++this.#reresolves > MAX_RERESOLVES) {
          throw new DangerzoneError("REGISTRY_DENIED", `the blob's download URL keeps refusing: ${url}`, {
            hint: "the registry's CDN refuses the signed URLs it hands out; try again later",
          });
        }
        this.#options.onLog?.(`${url} answered ${response.status} (expired?); asking the registry again`);
        if (this.#cdn === cdn) this.#cdn = undefined;
        continue;
      }
      if (redirected !== undefined) this.#cdn = redirected;
      const length = response.headers.get("content-length");
      const problem = response.status !== 206
        ? `HTTP ${response.status} instead of 206`
        : !contentRangeMatches(response.headers.get("content-range"), range, this.#size)
        ? `Content-Range '${response.headers.get("content-range") ?? ""}' is not the range asked for`
        : length !== null && Number(length) !== range.end - range.start
        ? `Content-Length ${length} is not the range's length`
        : undefined;
      if (problem !== undefined) {
        await response.body?.cancel().catch(() => {});
        return { fallback: `${url}: ${problem}`.slice(0, 300) };
      }
      return { response };
    }
  }
}

/** Reads one range body into the connection's buffer and delivers it in pieces, in order. */
async function receive(
  chunk: ChunkState,
  reader: ReadableStreamBYOBReader,
  io: { state: ReadBuffer; deliver: Deliver },
  rearm: () => void,
): Promise<void> {
  const { state } = io;
  let filled = 0;
  let lastFlush = performance.now();
  try {
    for (;;) {
      const at = chunk.start + chunk.received + filled;
      // at the range's end, one more read sees the body's end, so the connection is kept for reuse
      const want = Math.max(1, Math.min(state.buffer.byteLength - filled, chunk.end - at));
      const r = await reader.read(new Uint8Array(state.buffer, filled, want));
      rearm();
      if (r.value !== undefined) {
        state.buffer = r.value.buffer;
        if (at >= chunk.end && r.value.byteLength > 0) return; // more than asked for: dropped, unread
        filled += r.value.byteLength;
      }
      const end = r.done || at + (r.value?.byteLength ?? 0) >= chunk.end;
      const full = filled === state.buffer.byteLength;
      if (full || (filled > 0 && (end || performance.now() - lastFlush > FLUSH_MS))) {
        await io.deliver(chunk, new Uint8Array(state.buffer, 0, filled));
        filled = 0;
        lastFlush = performance.now();
      }
      if (r.done) return;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Waits `ms`, or rejects with the signal's reason. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
