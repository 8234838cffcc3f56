/**
 * The `tuf-js` fetcher, over our network stack instead of its default (Node's `fetch` with no
 * proxy, Tor or CA settings): every download goes through the `Deno.HttpClient` the registry rules
 * chose (`src/registry/http_client_for.ts`), is bounded by the length TUF allows for it (a response
 * larger than that is cut off and refused: endless data), and times out when the server stalls.
 * Private to `src/tuf/`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { join } from "../fs_path.ts";
import type { Fetcher } from "tuf-js";
import { DownloadHTTPError } from "tuf-js/dist/error.js";
import { DangerzoneError } from "../errors.ts";

/** Options of {@linkcode TufFetcher}. */
export interface TufFetcherOptions {
  /** The client every request goes through. */
  client: Deno.HttpClient;
  /** Directory for downloaded target files before they are verified (inside the staging area). */
  tmpDir: string;
  /** Longest wait for response headers (default 30 s). */
  headersTimeoutMs?: number | undefined;
  /** Longest wait between two body chunks (default 30 s). */
  idleTimeoutMs?: number | undefined;
  /** `User-Agent` header. */
  userAgent?: string | undefined;
  /** Receives one line per request (for `--debug`). */
  onLog?: ((line: string) => void) | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * A `tuf-js` {@linkcode Fetcher}. It remembers the last failure it reported, because `tuf-js` wraps
 * some failures in a plain `RuntimeError` text: {@linkcode TufFetcher.lastFailure} lets the caller
 * keep the network error's code (exit 12) apart from a verification failure (exit 10).
 */
export class TufFetcher implements Fetcher {
  readonly #options: TufFetcherOptions;
  #lastFailure: DangerzoneError | undefined;
  #files = 0;

  /** Creates a fetcher; no I/O until the first download. */
  constructor(options: TufFetcherOptions) {
    this.#options = options;
  }

  /** The last error this fetcher threw, if any. */
  get lastFailure(): DangerzoneError | undefined {
    return this.#lastFailure;
  }

  /** Downloads at most `maxLength` bytes into memory (TUF metadata, whose length TUF bounds). */
  async downloadBytes(url: string, maxLength: number): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    await this.#download(url, maxLength, (chunk) => {
      chunks.push(chunk);
      return Promise.resolve();
    });
    return Buffer.concat(chunks);
  }

  /** Streams at most `maxLength` bytes into a temp file, hands it to `handler`, then removes it. */
  async downloadFile<T>(url: string, maxLength: number, handler: (file: string) => Promise<T>): Promise<T> {
    const path = join(this.#options.tmpDir, `download-${this.#files++}.tmp`);
    const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
    try {
      try {
        await this.#download(url, maxLength, async (chunk) => {
          let written = 0;
          while (written < chunk.length) written += await file.write(chunk.subarray(written));
        });
      } finally {
        file.close();
      }
      return await handler(path);
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  }

  async #download(url: string, maxLength: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    try {
      await this.#stream(url, maxLength, sink);
    } catch (err) {
      if (err instanceof DangerzoneError) this.#lastFailure = err;
      throw err;
    }
  }

  async #stream(url: string, maxLength: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    const name = displayName(url);
    const abort = new AbortController();
    const headersTimeout = this.#options.headersTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer = setTimeout(() => abort.abort(), headersTimeout);
    let response: Response;
    try {
      response = await fetch(url, {
        client: this.#options.client,
        signal: abort.signal,
        headers: { "User-Agent": this.#options.userAgent ?? "dangerzone-image" },
      });
    } catch (cause) {
      clearTimeout(timer);
      throw abort.signal.aborted
        ? unreachable(
          `the TUF repository did not answer for ${name} within ${headersTimeout / 1000} s`,
          cause,
        )
        : unreachable(`cannot reach the TUF repository for ${name}: ${firstLine(cause)}`, cause);
    }
    clearTimeout(timer);
    this.#options.onLog?.(`GET ${url} -> ${response.status}`);
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      const failure = new DangerzoneError(
        "TUF_HTTP",
        `the TUF repository answered HTTP ${response.status} for ${name}`,
        { hint: "check --tuf-url and try again later; nothing was changed" },
      );
      if (response.status !== 403 && response.status !== 404) throw failure;
      // tuf-js ends the root walk on exactly this error class (the newest root was reached);
      // elsewhere it is a failure, recognised by its message
      this.#lastFailure = failure;
      throw new DownloadHTTPError(failure.message, response.status);
    }
    const declared = Number(response.headers.get("content-length") ?? "NaN");
    if (Number.isFinite(declared) && declared > maxLength) {
      await response.body.cancel();
      throw tooLarge(name, maxLength);
    }
    const idle = this.#options.idleTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const reader = response.body.getReader();
    let received = 0;
    try {
      for (;;) {
        timer = setTimeout(() => abort.abort(), idle);
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (cause) {
          throw abort.signal.aborted
            ? unreachable(`the TUF repository stalled for ${idle / 1000} s while sending ${name}`, cause)
            : unreachable(`the connection dropped while downloading ${name}: ${firstLine(cause)}`, cause);
        } finally {
          clearTimeout(timer);
        }
        if (next.done) return;
        received += next.value.length;
        if (received > maxLength) throw tooLarge(name, maxLength);
        await sink(next.value);
      }
    } catch (err) {
      await reader.cancel().catch(() => {});
      throw err;
    } finally {
      reader.releaseLock();
    }
  }
}

function tooLarge(name: string, maxLength: number): DangerzoneError {
  return new DangerzoneError(
    "TUF_RESPONSE_TOO_LARGE",
    `TUF ${name} is larger than the ${maxLength} bytes allowed for it (endless data attack?)`,
    { hint: "the previous trust root is kept; check --tuf-url and the network path" },
  );
}

function unreachable(message: string, cause: unknown): DangerzoneError {
  return new DangerzoneError("TUF_UNREACHABLE", message, {
    cause,
    hint: "check the network, proxy settings and --tuf-url; nothing was changed",
  });
}

/** The file name of a TUF URL, for messages (no query, no host). */
function displayName(url: string): string {
  try {
    return new URL(url).pathname.split("/").pop() || url;
  } catch {
    return url;
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]?.slice(0, 200) ?? "";
}
