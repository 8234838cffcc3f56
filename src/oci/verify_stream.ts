/**
 * Verification of blob bytes against their descriptor while they stream (ggcr `internal/verify`).
 * The bytes are counted and hashed incrementally; more bytes than `size` fail at once, and the
 * end of the stream fails on a short body or a digest mismatch.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "./digest.ts";

/** What the bytes must match. */
export interface Expected {
  /** Expected sha256 digest. */
  digest: Digest;
  /** Expected size in bytes. */
  size: number;
}

/** Options of {@linkcode BlobVerifier}. */
export interface BlobVerifierOptions {
  /** Label for error messages (e.g. `blob sha256:ab…`). */
  label?: string;
}

/**
 * Incremental verifier: call {@linkcode BlobVerifier.update} per chunk and
 * {@linkcode BlobVerifier.finish} at the end. Used by {@linkcode verifyStream} and by resumable
 * downloads, which first feed the bytes already on disk.
 */
export class BlobVerifier {
  readonly #counter: CountingVerifier;
  readonly #hash: Hash = createHash("sha256");
  #finished = false;

  /** Starts verifying bytes that must match `expected`. */
  constructor(expected: Expected, options: BlobVerifierOptions = {}) {
    this.#counter = new CountingVerifier(expected, options);
  }

  /** Number of bytes seen so far. */
  get count(): number {
    return this.#counter.count;
  }

  /** Adds bytes; throws `SIZE_MISMATCH` as soon as they exceed the expected size. */
  update(chunk: Uint8Array): void {
    this.#counter.add(chunk.byteLength);
    this.#hash.update(chunk);
  }

  /** Checks size and digest at the end; throws `SIZE_MISMATCH` or `DIGEST_MISMATCH`. */
  finish(): void {
    // A second finish must fail as the counter's does, not on the spent hash.
    const hex = this.#finished ? "" : this.#hash.digest("hex");
    this.#finished = true;
    this.#counter.finish(hex);
  }
}

/**
 * The same checks as {@linkcode BlobVerifier} for bytes that are hashed elsewhere (e.g. on a
 * worker thread, so that hashing runs beside the network reads): {@linkcode CountingVerifier.add}
 * counts the bytes as they arrive and fails as soon as they exceed the size;
 * {@linkcode CountingVerifier.finish} takes the sha256 of exactly those bytes and checks size and
 * digest.
 */
export class CountingVerifier {
  readonly #expected: Expected;
  readonly #label: string;
  #count = 0;
  #done = false;

  /** Starts counting bytes that must match `expected`. */
  constructor(expected: Expected, options: BlobVerifierOptions = {}) {
    this.#expected = expected;
    this.#label = options.label ?? `blob ${expected.digest.slice(0, 19)}…`;
  }

  /** Number of bytes counted so far. */
  get count(): number {
    return this.#count;
  }

  /** Counts `byteCount` more bytes; throws `SIZE_MISMATCH` as soon as they exceed the size. */
  add(byteCount: number): void {
    if (this.#done) throw new DangerzoneError("INTERNAL", `${this.#label}: add after finish`);
    this.#count += byteCount;
    if (this.#count > this.#expected.size) {
      this.#done = true;
      throw tooLarge(this.#label, this.#expected);
    }
  }

  /**
   * Checks size and digest at the end, given the sha256 (hex) of exactly the counted bytes;
   * throws `SIZE_MISMATCH` or `DIGEST_MISMATCH`.
   */
  finish(sha256Hex: string): void {
    if (this.#done) throw new DangerzoneError("INTERNAL", `${this.#label}: finish called twice`);
    this.#done = true;
    checkEnd(this.#label, this.#expected, this.#count, sha256Hex);
  }
}

function tooLarge(label: string, expected: Expected): DangerzoneError {
  return new DangerzoneError(
    "SIZE_MISMATCH",
    `${label} is larger than its descriptor's ${expected.size} bytes`,
    { hint: "the registry or mirror served wrong content; try again or use another source" },
  );
}

function checkEnd(label: string, expected: Expected, count: number, sha256Hex: string): void {
  if (count !== expected.size) {
    throw new DangerzoneError(
      "SIZE_MISMATCH",
      `${label} has ${count} bytes, its descriptor says ${expected.size}`,
      { hint: "the download was cut short or the content is wrong; try again" },
    );
  }
  const got = `sha256:${sha256Hex}`;
  if (got !== expected.digest) {
    throw new DangerzoneError(
      "DIGEST_MISMATCH",
      `${label} does not match its digest (got ${got.slice(0, 19)}…)`,
      { hint: "the registry or mirror served wrong content; do not use it" },
    );
  }
}

/**
 * A `TransformStream` that passes bytes through while verifying them against `expected`.
 * The readable side errors with `SIZE_MISMATCH` or `DIGEST_MISMATCH`; consumers must treat
 * the data as usable only after the stream closed cleanly.
 *
 * @example
 * ```ts
 * import { verifyStream } from "./verify_stream.ts";
 * import { sha256Digest } from "./digest.ts";
 * const bytes = new TextEncoder().encode("hello");
 * const verified = new Blob([bytes]).stream().pipeThrough(
 *   verifyStream({ digest: await sha256Digest(bytes), size: bytes.length }),
 * );
 * await new Response(verified).arrayBuffer();
 * ```
 */
export function verifyStream(
  expected: Expected,
  options: BlobVerifierOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const verifier = new BlobVerifier(expected, options);
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      verifier.update(chunk);
      controller.enqueue(chunk);
    },
    flush() {
      verifier.finish();
    },
  });
}

const selfVerifying = new WeakMap<ReadableStream<Uint8Array>, Expected>();

/**
 * Marks `stream` as one that checks its own bytes against `expected` and errors at its end unless
 * they match (e.g. a blob read from an OCI layout through a {@linkcode BlobVerifier}). A consumer
 * expecting the very same digest and size may then skip hashing the bytes a second time; it must
 * still count them and treat them as usable only once the stream closed cleanly. Returns `stream`.
 */
export function markSelfVerifying<T extends ReadableStream<Uint8Array>>(stream: T, expected: Expected): T {
  selfVerifying.set(stream, { digest: expected.digest, size: expected.size });
  return stream;
}

/** True for a stream marked by {@linkcode markSelfVerifying} with exactly this digest and size. */
export function isSelfVerifying(stream: ReadableStream<Uint8Array>, expected: Expected): boolean {
  const mark = selfVerifying.get(stream);
  return mark !== undefined && mark.digest === expected.digest && mark.size === expected.size;
}

/** The checks a consumer runs on a blob's bytes: {@linkcode blobCheckFor}. */
export interface BlobCheck {
  /** Takes the next chunk; throws `SIZE_MISMATCH` as soon as the bytes exceed the size. */
  update(chunk: Uint8Array): void;
  /** Checks the end: throws `SIZE_MISMATCH` or `DIGEST_MISMATCH`. */
  finish(): void;
}

/**
 * The checks for reading `stream` as the blob `expected`: a full {@linkcode BlobVerifier}, or, for a
 * stream marked by {@linkcode markSelfVerifying} with this very digest and size (it errors before its end
 * unless its bytes hash right), only the byte count, so the bytes are hashed once.
 */
export function blobCheckFor(
  stream: ReadableStream<Uint8Array>,
  expected: Expected,
  options: BlobVerifierOptions = {},
): BlobCheck {
  if (!isSelfVerifying(stream, expected)) return new BlobVerifier(expected, options);
  const counter = new CountingVerifier(expected, options);
  const label = options.label ?? `blob ${expected.digest.slice(0, 19)}…`;
  return {
    update: (chunk) => counter.add(chunk.byteLength),
    finish: () => {
      if (counter.count !== expected.size) {
        throw new DangerzoneError(
          "SIZE_MISMATCH",
          `${label} has ${counter.count} bytes, its descriptor says ${expected.size}`,
          { hint: "the source served wrong content; do not use it" },
        );
      }
    },
  };
}
