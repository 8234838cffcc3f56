/**
 * Private: a resumable reader of one blob body. After a dropped connection or a stall it asks
 * again with `Range: bytes=N-` from where it stopped; it reads into the caller's buffers and never
 * repeats a byte. It does not verify the bytes: its caller feeds them to a verifier.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { discard } from "./_body.ts";
import { redactedCause } from "./_redact.ts";
import { type Deadlines, RateWindow, seconds, timeoutError } from "./_deadlines.ts";
import { apiHost } from "./_hosts.ts";
import { backoff, isAbort, type RetryPolicy, sleep } from "./_retry.ts";
import type { TransportRequest, TransportResponse } from "./_request.ts";

/** Options of {@linkcode Transport.openBlob}. */
export interface OpenBlobOptions {
  /** Expected total size: a short body is resumed until this many bytes arrived. */
  size: number;
  /** Start at this byte (a `.partial` file already holds the bytes before it). */
  offset?: number;
}

/** One read of a {@linkcode BlobReader}. */
export interface BlobRead {
  /**
   * The bytes read, at the start of the view passed in. When that view covered its whole buffer,
   * the buffer was moved (or, after a dropped connection, replaced by one of the same length):
   * continue with `bytes.buffer`. Empty when `done`.
   */
  bytes: Uint8Array<ArrayBuffer>;
  /** The blob ended (all `size` bytes were delivered, or the server sent more than promised). */
  done: boolean;
}

/** A resumable reader of a blob body that reads into the caller's buffers. */
export interface BlobReader {
  /** Reads at least one byte into `view` (its buffer is moved; use the returned one). */
  read(view: Uint8Array<ArrayBuffer>): Promise<BlobRead>;
  /** Stops reading and releases the connection. */
  cancel(reason?: unknown): Promise<void>;
}

/** The transport's side of a blob reader. */
export interface BlobReaderDeps {
  /** Sends one request with auth, retries and redirects. */
  request(req: TransportRequest): Promise<TransportResponse>;
  /** The retry policy (its attempts bound the resumes in a row). */
  retry: RetryPolicy;
  /** The blob idle timeout and minimum rate (the headers deadline is the request's). */
  deadlines: Deadlines;
  /** Most bytes discarded when a server answers a `Range` request with 200. */
  maxRangeDiscard: number;
  /** Logs one line. */
  log(line: string): void;
}

const SCRATCH_SIZE = 1024 * 1024;

/**
 * A reader of a blob body that resumes after a dropped connection with `Range: bytes=N-` from
 * where it stopped. A resumed response must be 206 with a `Content-Range` starting at exactly N;
 * a 200 is accepted only if its first N bytes can be discarded within a fixed limit. It reads
 * into the caller's buffers (no allocation per chunk), never repeats bytes and does not verify
 * them: feed them to a verifier.
 */
export async function openBlobReader(
  deps: BlobReaderDeps,
  req: TransportRequest,
  options: OpenBlobOptions,
): Promise<BlobReader> {
  const size = options.size;
  let pos = options.offset ?? 0;
  const idleMs = deps.deadlines.blobIdleMs;
  const rate = new RateWindow(deps.deadlines.blobMinBytesPerSecond, deps.deadlines.blobRateWindowMs);
  const maxDiscard = deps.maxRangeDiscard;
  const maxStalls = deps.retry.attempts;
  let stalls = 0;
  let timeouts = 0;
  let totalResumes = 0;
  let idleFired = false;
  let host = apiHost(req.registry);
  let reader: ReadableStreamBYOBReader | undefined;
  let skip = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let controllerAbort: AbortController | undefined;
  const userSignal = req.signal;

  const arm = () => {
    if (timer !== undefined) clearTimeout(timer);
    const ac = controllerAbort;
    timer = setTimeout(() => {
      idleFired = true;
      ac?.abort(new DOMException("idle timeout", "TimeoutError"));
    }, idleMs);
  };
  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const open = async (): Promise<void> => {
    controllerAbort = new AbortController();
    const signal = userSignal === undefined
      ? controllerAbort.signal
      : AbortSignal.any([userSignal, controllerAbort.signal]);
    const headers: Record<string, string> = { ...(req.headers ?? {}) };
    if (pos > 0) headers.Range = `bytes=${pos}-`;
    // connect and headers have the request's own deadline (and retries)
    const { response, url } = await deps.request({ ...req, headers, signal, acceptStatus: [206] });
    host = hostOf(url) ?? host;
    rate.reset();
    if (response.body === null) {
      throw new DangerzoneError("REGISTRY_PROTOCOL", `empty body from ${url}`);
    }
    skip = 0;
    if (pos > 0 && response.status === 206) {
      const start = contentRangeStart(response.headers.get("content-range"));
      if (start !== pos) {
        await discard(response);
        throw new DangerzoneError(
          "REGISTRY_PROTOCOL",
          `resumed download of ${url} starts at byte ${start ?? "?"} instead of ${pos}`,
          { hint: "the registry or proxy mishandles Range requests; try again" },
        );
      }
    } else if (pos > 0) {
      if (pos > maxDiscard) {
        await discard(response);
        throw new DangerzoneError(
          "REGISTRY_PROTOCOL",
          `the server ignored the Range request for ${url} and ${pos} bytes are too many to skip`,
          { hint: "try again; the download restarts from the beginning" },
        );
      }
      skip = pos;
    } else if (response.status !== 200) {
      await discard(response);
      throw new DangerzoneError("REGISTRY_PROTOCOL", `unexpected HTTP ${response.status} for ${url}`);
    }
    reader = response.body.getReader({ mode: "byob" });
  };

  // A read from the body moves (detaches) the buffer it reads into, and a failed read loses it.
  // Reads go straight into the caller's buffer only when the view covers all of it (nothing
  // of the caller's can be lost); otherwise into a scratch buffer, copied into the view.
  let scratch: ArrayBuffer | undefined;
  // An idle or slow connection is dropped and resumed; a healthy window forgives earlier ones.
  const stalled = (what: string): void => {
    timeouts++;
    totalResumes++;
    if (timeouts >= maxStalls || totalResumes > 100) {
      const times = timeouts > 1 ? ` (${timeouts} times in a row)` : "";
      throw timeoutError(host, `the blob download ${what}${times}`);
    }
    deps.log(`blob from ${host} ${what} at byte ${pos}; resuming`);
  };
  const read = async (into: Uint8Array<ArrayBuffer>): Promise<BlobRead> => {
    if (into.byteLength === 0) throw new DangerzoneError("INTERNAL", "blob read into an empty view");
    const direct = into.byteOffset === 0 && into.byteLength === into.buffer.byteLength;
    const length = direct ? into.byteLength : Math.min(into.byteLength, SCRATCH_SIZE);
    const fresh = (): Uint8Array<ArrayBuffer> => {
      if (direct) return new Uint8Array(new ArrayBuffer(length));
      if (scratch === undefined || scratch.byteLength < length) scratch = new ArrayBuffer(SCRATCH_SIZE);
      return new Uint8Array(scratch, 0, length);
    };
    let target = direct ? into : fresh();
    for (;;) {
      if (reader === undefined) await open();
      const r = reader;
      if (r === undefined) throw new DangerzoneError("INTERNAL", "no blob reader");
      let chunk: ReadableStreamReadResult<Uint8Array<ArrayBuffer>>;
      arm();
      const waitStart = performance.now();
      try {
        chunk = await r.read(target);
      } catch (err) {
        disarm();
        reader = undefined;
        scratch = undefined;
        target = fresh();
        if (isAbort(err, userSignal)) throw err;
        if (idleFired) {
          idleFired = false;
          stalled(`sent no data for ${seconds(idleMs)}`);
          continue;
        }
        stalls++;
        totalResumes++;
        if (stalls > maxStalls || totalResumes > 100) {
          throw new DangerzoneError("SHORT_READ", `the connection dropped ${totalResumes} times`, {
            cause: redactedCause(err),
            hint: "check the network and try again; the download resumes where it stopped",
          });
        }
        deps.log(`blob connection dropped at byte ${pos}; resuming`);
        await sleep(backoff(deps.retry, stalls), userSignal);
        continue;
      }
      disarm();
      const got = chunk.value;
      if (got !== undefined) {
        target = new Uint8Array(got.buffer, 0, length);
        if (!direct) scratch = got.buffer;
      }
      if (!chunk.done) {
        const verdict = rate.add(performance.now() - waitStart, got?.byteLength ?? 0);
        if (verdict === "healthy") timeouts = 0;
        if (verdict === "stall") {
          // keep this chunk's bytes; the next read resumes after them on a new connection
          reader = undefined;
          await r.cancel().catch(() => {});
          stalled(`was ${rate.describe()}`);
        }
      }
      if (chunk.done) {
        reader = undefined;
        if (pos < size && skip === 0) {
          stalls++;
          totalResumes++;
          if (stalls > maxStalls || totalResumes > 100) {
            throw new DangerzoneError("SHORT_READ", `the blob ended at byte ${pos} of ${size}`, {
              hint: "try again; the download resumes where it stopped",
            });
          }
          deps.log(`blob body ended early at byte ${pos}; resuming`);
          continue;
        }
        return { bytes: direct ? target.subarray(0, 0) : into.subarray(0, 0), done: true };
      }
      let n = got?.byteLength ?? 0;
      if (skip > 0) {
        if (n <= skip) {
          skip -= n;
          continue;
        }
        target.copyWithin(0, skip, n);
        n -= skip;
        skip = 0;
      }
      if (n === 0) continue;
      pos += n;
      stalls = 0;
      if (direct) return { bytes: target.subarray(0, n), done: false };
      into.set(target.subarray(0, n));
      return { bytes: into.subarray(0, n), done: false };
    }
  };

  await open();
  return {
    read,
    cancel: async (reason?: unknown) => {
      disarm();
      await reader?.cancel(reason).catch(() => {});
      reader = undefined;
    },
  };
}

function contentRangeStart(value: string | null): number | undefined {
  if (value === null) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  return m ? Number(m[1]) : undefined;
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}
