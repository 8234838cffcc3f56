/**
 * Private: a streamed blob upload (go-containerregistry `remote/write.go`): a cross-repository mount
 * when the blob is in another repository of the same registry, else `POST` an upload session and one
 * `PUT ?digest=` whose body is the stream, so a blob of any size passes through without being held in
 * memory. The registry checks the digest before it commits the blob; a stream that errors (our own
 * verifier at EOF) aborts the request, so nothing is committed either.
 *
 * The session start is retried by the transport like any request; the `PUT` with the stream is sent
 * once (a stream cannot be replayed): its caller restarts the whole upload from the source.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { mapStreamErrors } from "../oci/map_stream_errors.ts";
import type { Reference } from "../oci/reference.ts";
import type { TransportRequest, TransportResponse } from "./transport.ts";

/** Bytes per chunk handed to `fetch` for an upload body. */
const UPLOAD_CHUNK = 1024 * 1024;

/** How a blob reached the destination. */
export type UploadOutcome = "mounted" | "uploaded";

/** Options of {@linkcode uploadBlobStream}. */
export interface UploadBlobOptions {
  /** A repository of the same registry that holds the blob: try a cross-repository mount first. */
  mountFrom?: string;
  /** Aborts the upload. */
  signal?: AbortSignal;
  /** Called with an error of the body stream itself (e.g. its verifier at EOF) before the upload fails. */
  onBodyError?: (err: unknown) => void;
}

/**
 * Uploads `stream` (which must yield exactly the bytes `desc` names) to `ref`'s repository, or mounts
 * it from `options.mountFrom`. A mount the registry answers with an upload session instead (202: the
 * source is not readable with our credentials, or the registry does not mount) falls back to the
 * upload in that very session.
 */
export async function uploadBlobStream(
  send: (req: TransportRequest) => Promise<TransportResponse>,
  ref: Reference,
  desc: Descriptor,
  stream: ReadableStream<Uint8Array>,
  options: UploadBlobOptions = {},
): Promise<UploadOutcome> {
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const mountFrom = options.mountFrom !== undefined && options.mountFrom !== ref.repository
    ? options.mountFrom
    : undefined;
  const scope = `repository:${ref.repository}:pull,push` +
    (mountFrom === undefined ? "" : ` repository:${mountFrom}:pull`);
  const base = { registry: ref.registry, scope, ...signal };
  const query = mountFrom === undefined
    ? ""
    : `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(mountFrom)}`;
  let start: TransportResponse;
  try {
    start = await send({ ...base, method: "POST", path: `/v2/${ref.repository}/blobs/uploads/${query}` });
  } catch (err) {
    await stream.cancel().catch(() => {});
    throw err;
  }
  await start.response.body?.cancel();
  if (start.response.status === 201 && mountFrom !== undefined) {
    await stream.cancel().catch(() => {});
    return "mounted";
  }
  let location: string;
  try {
    location = uploadLocation(start.response, start.url, ref);
  } catch (err) {
    await stream.cancel().catch(() => {});
    throw err;
  }
  const finish = new URL(location);
  finish.searchParams.set("digest", desc.digest);
  const done = await send({
    ...base,
    method: "PUT",
    path: finish.toString(),
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(desc.size) },
    body: releasedChunks(stream, desc, options.onBodyError),
    bodyLength: desc.size,
  });
  await done.response.body?.cancel();
  return "uploaded";
}

/**
 * The body as `fetch` sends it: chunks in buffers of our own (read from a byte stream with BYOB reads),
 * each released (detached) once `fetch` has handed it to the network layer, so its memory is freed as
 * soon as it is sent instead of at a later garbage collection (fresh 1 MiB chunks otherwise pile up to
 * ~64 MB before V8 collects them). `fetch` keeps its own reference to a chunk's memory until it is
 * written, so releasing ours is safe; with a high-water mark of 0 a chunk is produced only for a pending
 * read, which takes it at once, so every chunk but the newest has been handed over when the next pull
 * starts. A stream that is not a byte stream passes through unchanged.
 */
export function releasedChunks(
  stream: ReadableStream<Uint8Array>,
  desc: Descriptor,
  onError: ((err: unknown) => void) | undefined,
): ReadableStream<Uint8Array> {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    // not a byte stream: its chunks are not ours to release
    return mapStreamErrors(stream, desc, (err) => {
      onError?.(err);
      return err;
    });
  }
  const handed: ArrayBuffer[] = [];
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (handed.length > 1) handed.shift()?.transfer(0);
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await byob.read(new Uint8Array(new ArrayBuffer(UPLOAD_CHUNK)));
      } catch (err) {
        onError?.(err);
        throw err;
      }
      if (result.done) {
        controller.close();
        return;
      }
      const buffer = result.value.buffer;
      if (buffer instanceof ArrayBuffer) handed.push(buffer);
      controller.enqueue(result.value);
    },
    cancel: (reason) => byob.cancel(reason),
  }, { highWaterMark: 0 });
}

/** The absolute upload URL of a session response; a relative one must stay in the repository. */
export function uploadLocation(response: Response, url: string, ref: Reference): string {
  const location = response.headers.get("location");
  if (location === null) {
    throw new DangerzoneError("REGISTRY_PROTOCOL", `upload to ${url} returned no Location`);
  }
  if (/^https?:\/\//i.test(location)) return location;
  if (!location.startsWith(`/v2/${ref.repository}/`)) {
    throw new DangerzoneError("REGISTRY_PROTOCOL", `upload Location from ${url} leaves the repository`);
  }
  const base = new URL(url);
  return new URL(location, `${base.protocol}//${base.host}`).toString();
}
