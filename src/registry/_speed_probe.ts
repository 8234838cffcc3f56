/**
 * When to add connections: a blob starts on one connection, and only when that connection proves slow
 * (below a rate, measured over its first bytes) does the rest come over parallel ranges. A fast link
 * (a local mirror, a LAN registry) keeps the cheaper single stream, whose bytes are hashed and written
 * with no reordering; a capped one (a Tor circuit, a CDN's per-connection cap) gets the parallel ranges.
 *
 * @module
 */

/** Bytes after which the first connection's rate is judged. */
export const PROBE_BYTES = 2 * 1024 * 1024;
/** Milliseconds after which the first connection's rate is judged, however few bytes came. */
export const PROBE_MS = 500;
/** Default rate below which a blob continues over parallel ranges: 64 MiB/s. */
export const DEFAULT_PARALLEL_BELOW = 64 * 1024 * 1024;

/** The verdict on the first connection. */
export type ProbeVerdict = "slow" | "fast";

/**
 * Judges the first connection's rate once. The clock starts at its first bytes (the time to the first
 * byte is latency, which more connections do not shorten), and the bytes of that first read do not count.
 */
export class SpeedProbe {
  readonly #below: number;
  readonly #now: () => number;
  #started: number | undefined;
  #bytes = 0;
  #verdict: ProbeVerdict | undefined;

  /** `belowRate` is in bytes per second; `now` in milliseconds (for tests). */
  constructor(belowRate: number, now: () => number = () => performance.now()) {
    this.#below = belowRate;
    this.#now = now;
  }

  /** Counts `n` more bytes; returns the verdict the first time it is reached, else `undefined`. */
  add(n: number): ProbeVerdict | undefined {
    if (this.#verdict !== undefined) return undefined;
    if (this.#started === undefined) {
      this.#started = this.#now();
      return undefined;
    }
    this.#bytes += n;
    const elapsed = this.#now() - this.#started;
    if (this.#bytes < PROBE_BYTES && elapsed < PROBE_MS) return undefined;
    const rate = elapsed > 0 ? (this.#bytes * 1000) / elapsed : Infinity;
    this.#verdict = rate < this.#below ? "slow" : "fast";
    return this.#verdict;
  }

  /** Bytes per second measured (for a log line). */
  rate(): number {
    const elapsed = this.#now() - (this.#started ?? this.#now());
    return elapsed > 0 ? Math.round((this.#bytes * 1000) / elapsed) : 0;
  }
}
