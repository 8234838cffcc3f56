/**
 * A pass-through of a byte stream's chunks whose errors go through a function first: to note them (an
 * upload that a source error aborted reports the source's error, not the transport's), or to name them
 * better (a layer read from an archive that fails its digest is an invalid archive). No I/O.
 *
 * @module
 */
import type { Expected } from "./verify_stream.ts";
import { isSelfVerifying, markSelfVerifying } from "./verify_stream.ts";

/**
 * The same chunks as `stream`; an error of `stream` passes through `map` before it errors the result.
 * The result errors exactly when `stream` does, so a self-verifying mark for `expected` carries over.
 *
 * @example
 * ```ts ignore
 * const named = mapStreamErrors(await layout.getBlob(desc), desc, toArchiveError);
 * ```
 */
export function mapStreamErrors(
  stream: ReadableStream<Uint8Array>,
  expected: Expected,
  map: (err: unknown) => unknown,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  const out = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        throw map(err);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  return isSelfVerifying(stream, expected) ? markSelfVerifying(out, expected) : out;
}
