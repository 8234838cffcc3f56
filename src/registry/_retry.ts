/**
 * Private: the retry policy of the transport (how many tries, exponential backoff with jitter,
 * `Retry-After`) and the abortable sleep it waits with.
 *
 * @module
 */

/** Retry policy for 408, 429, 5xx, dropped connections and response-header timeouts. */
export interface RetryOptions {
  /** Total tries per request, including the first (default 4). */
  attempts?: number;
  /** First backoff delay (default 500 ms), doubled per retry. */
  baseDelayMs?: number;
  /** Backoff ceiling (default 8000 ms). */
  maxDelayMs?: number;
  /** Longest `Retry-After` honoured; longer waits fail with `REGISTRY_RATE_LIMITED` (default 30 s). */
  retryAfterCapMs?: number;
}

/** {@linkcode RetryOptions} with every default filled in. */
export type RetryPolicy = Required<RetryOptions>;

/** Fills in the defaults of `options` (at least one attempt). */
export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    attempts: Math.max(1, options.attempts ?? 4),
    baseDelayMs: options.baseDelayMs ?? 500,
    maxDelayMs: options.maxDelayMs ?? 8000,
    retryAfterCapMs: options.retryAfterCapMs ?? 30_000,
  };
}

/** Statuses worth another try: the server may answer differently later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The delay before retry number `attempt` (1-based): doubling, capped, with 50-100 % jitter. */
export function backoff(retry: RetryPolicy, attempt: number): number {
  const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp * (0.5 + Math.random() * 0.5));
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** True when `err` is the caller's own abort (not a failure to retry or report). */
export function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && (err === signal.reason || (err instanceof DOMException));
}
