/**
 * Private: the deadlines of every request, so that no registry, proxy or CDN can hang a command.
 *
 * - Connect, TLS and response headers of each HTTP exchange: {@linkcode withHeadersDeadline}
 *   (a timeout is retried like a dropped connection).
 * - Documents (manifests, tokens, signatures, referrers, bundles, error bodies: everything read
 *   with `readLimited`): one total deadline from the start of the exchange to the last byte,
 *   attached to the response by {@linkcode setDocumentDeadline}.
 * - Blob bodies (unbounded in time, bounded in size): an idle timeout and a minimum rate over a
 *   window, checked by {@linkcode RateWindow}; a stall is resumed with `Range`.
 *
 * The defaults suit Tor, slow but moving: building a circuit and a TLS handshake over it can
 * take tens of seconds, so 60 s for headers; a document is at most a few MiB and usually a few
 * KiB, so 120 s in total; a blob may take hours, so only a stall ends it: 60 s without a byte,
 * or under 1 KiB/s averaged over 60 s (a live Tor circuit moves far more, a trickle far less).
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";

/** Every deadline, in milliseconds (rates in bytes per second). */
export interface Deadlines {
  /** Connect, TLS and response headers of one HTTP exchange. */
  headersMs: number;
  /** A whole document: from sending the request to its last byte. */
  documentMs: number;
  /** A blob body without a single byte for this long is a stall. */
  blobIdleMs: number;
  /** A blob body below this average rate over {@linkcode Deadlines.blobRateWindowMs} is a stall (0: off). */
  blobMinBytesPerSecond: number;
  /** The window the minimum rate is averaged over. */
  blobRateWindowMs: number;
}

/** The defaults (see the module documentation for why). */
export const DEFAULT_DEADLINES: Readonly<Deadlines> = {
  headersMs: 60_000,
  documentMs: 120_000,
  blobIdleMs: 60_000,
  blobMinBytesPerSecond: 1024,
  blobRateWindowMs: 60_000,
};

/** Seconds for a message: `2 s`, `0.5 s`. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** The error of every deadline: one line naming the host and what timed out. */
export function timeoutError(host: string, what: string, hint?: string): DangerzoneError {
  return new DangerzoneError("REGISTRY_TIMEOUT", `${host}: ${what}`, {
    hint: hint ?? "the registry or the network is too slow or not answering; " +
        "check the network and proxy, or allow more time with --timeout SECONDS",
  });
}

/** The response headers of an exchange did not arrive in time; retried like a dropped connection. */
export class HeadersTimeout extends Error {
  /** The host that did not answer. */
  readonly host: string;
  /** The deadline that passed. */
  readonly ms: number;

  /** Records who did not answer within `ms`. */
  constructor(host: string, ms: number) {
    super(`no response from ${host} within ${seconds(ms)}`);
    this.name = "HeadersTimeout";
    this.host = host;
    this.ms = ms;
  }

  /** The user-facing error once no retry is left. */
  toError(attempts: number): DangerzoneError {
    const tries = attempts > 1 ? `, tried ${attempts} times` : "";
    return timeoutError(
      this.host,
      `no response within ${seconds(this.ms)} (connect and response headers)${tries}`,
    );
  }
}

/**
 * Runs `send` (one fetch) with a signal that aborts when its response headers have not arrived
 * within `ms`; that failure is a {@linkcode HeadersTimeout}. The timer stops once `send`
 * resolved, so it never cuts the body that follows.
 */
export async function withHeadersDeadline<T>(
  host: string,
  ms: number,
  signal: AbortSignal | undefined,
  send: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController();
  const timeout = new HeadersTimeout(host, ms);
  const timer = setTimeout(() => deadline.abort(timeout), ms);
  try {
    return await send(signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]));
  } catch (err) {
    if (deadline.signal.aborted && signal?.aborted !== true) throw timeout;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** When a document response must be complete. */
export interface DocumentDeadline {
  /** The host it comes from. */
  host: string;
  /** `Date.now()` value by which its last byte must have arrived. */
  at: number;
  /** The deadline's length, for messages. */
  ms: number;
}

const documentDeadlines = new WeakMap<Response, DocumentDeadline>();

/**
 * Attaches the total deadline of its exchange to a response. `readLimited` enforces it, so every
 * bounded document has one, whoever reads it; a blob stream read otherwise is not bound by it.
 */
export function setDocumentDeadline(response: Response, deadline: DocumentDeadline): void {
  documentDeadlines.set(response, deadline);
}

/** The deadline attached to `response`, if the transport produced it. */
export function documentDeadlineOf(response: Response): DocumentDeadline | undefined {
  return documentDeadlines.get(response);
}

/**
 * The minimum-rate check of a blob body: time spent waiting for bytes (not time the consumer
 * spent elsewhere) and bytes received add up over a window; a full window below the minimum
 * rate is a stall.
 */
export class RateWindow {
  readonly #minBytesPerSecond: number;
  readonly #windowMs: number;
  #waitedMs = 0;
  #bytes = 0;

  /** A window of `windowMs` that needs `minBytesPerSecond` on average (0: never a stall). */
  constructor(minBytesPerSecond: number, windowMs: number) {
    this.#minBytesPerSecond = minBytesPerSecond;
    this.#windowMs = windowMs;
  }

  /** Starts a new window (after a resume). */
  reset(): void {
    this.#waitedMs = 0;
    this.#bytes = 0;
  }

  /**
   * Adds one read: `waitedMs` waiting, `bytes` received. Returns `stall` when a full window
   * fell short of the rate, `healthy` when a full window met it (a new one starts), else
   * `open`.
   */
  add(waitedMs: number, bytes: number): "stall" | "healthy" | "open" {
    this.#waitedMs += waitedMs;
    this.#bytes += bytes;
    if (this.#waitedMs < this.#windowMs) return "open";
    const enough = this.#bytes >= this.#minBytesPerSecond * (this.#waitedMs / 1000);
    this.reset();
    return enough ? "healthy" : "stall";
  }

  /** The rule, for messages: `under 1024 B/s over 60 s`. */
  describe(): string {
    return `under ${this.#minBytesPerSecond} B/s over ${seconds(this.#windowMs)}`;
  }
}
