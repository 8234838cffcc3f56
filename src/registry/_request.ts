/**
 * The request and response shapes of `Transport` (in their own file so that the concern
 * modules it composes can name them without importing the transport back).
 *
 * @module
 */
/** One request to a registry. */
export interface TransportRequest {
  /** Registry `host[:port]` as in a reference (`docker.io` is mapped to its API host). */
  registry: string;
  /** Path starting with `/v2/`, with query; or an absolute URL (e.g. an upload `Location`). */
  path: string;
  /** HTTP method (default GET). */
  method?: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** Extra request headers. */
  headers?: Record<string, string>;
  /**
   * Request body: bytes (retries resend them), or a stream for an upload (sent once: a dropped
   * connection or a 401 is not retried here; the caller restarts the upload from its source).
   */
  body?: Uint8Array | ReadableStream<Uint8Array>;
  /** Bytes of a stream body, so the headers deadline allows for sending it at the minimum rate. */
  bodyLength?: number;
  /** Token scope, e.g. `repository:foo/bar:pull`. */
  scope?: string;
  /** Non-2xx statuses returned to the caller instead of thrown (e.g. 404 for a fallback). */
  acceptStatus?: readonly number[];
  /** Aborts the request. */
  signal?: AbortSignal;
  /** Send on this numbered connection: its own HTTP/1.1 client (own TCP connection, own Tor circuit). */
  connection?: number;
  /** Told each redirect target, unredacted and already checked (to ask a CDN again directly). */
  onRedirect?: (url: URL) => void;
}

/** A successful response and the final (post-redirect) URL, redacted. */
export interface TransportResponse {
  /** The response; the caller must consume or cancel its body. */
  response: Response;
  /** The redacted final URL, for messages. */
  url: string;
}
