/**
 * The registry client: manifests, blobs, tags, referrers and uploads over the distribution
 * API. Every manifest digest is computed from the received bytes (a `Docker-Content-Digest`
 * header is never trusted), every blob is verified for size and digest while it streams, and
 * downloads are renamed into place only after they verified.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import type { ContentStore, ReadOptions } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, digestHex, sha256Digest } from "../oci/digest.ts";
import { parseManifest, type RawManifest } from "../oci/manifest.ts";
import { isIndexMediaType, isManifestMediaType, MANIFEST_ACCEPT, MediaType } from "../oci/media_types.ts";
import type { Reference } from "../oci/reference.ts";
import { BlobVerifier, markSelfVerifying, verifyStream } from "../oci/verify_stream.ts";
import { BlobFileWriter } from "./_blob_file_writer.ts";
import {
  type UploadBlobOptions,
  uploadBlobStream,
  uploadLocation as sessionLocation,
  type UploadOutcome,
} from "./_blob_upload.ts";
import type { RangeFetcherOptions } from "./_range_fetch.ts";
import { DEFAULT_PARALLEL_BELOW, SpeedProbe } from "./_speed_probe.ts";
import { downloadRanges, rangeRecordPath, removeDownload } from "./parallel_download.ts";
import { openAdaptiveReader } from "./parallel_stream.ts";
import {
  type BlobReader,
  readLimited,
  Transport,
  type TransportOptions,
  type TransportRequest,
} from "./transport.ts";

export type { UploadBlobOptions, UploadOutcome } from "./_blob_upload.ts";

/** Options of {@linkcode RegistryClient}: all transport options plus limits. */
export interface RegistryClientOptions extends TransportOptions {
  /** Largest manifest accepted, in bytes (default 4 MiB). */
  manifestLimit?: number;
  /** Most tags {@linkcode RegistryClient.listTags} collects (default 100 000). */
  tagLimit?: number;
  /** Parallel Range connections for a blob larger than `rangeThreshold` (default 4; 1 turns them off). */
  connections?: number;
  /** Blobs larger than this many bytes download over `connections` (default 16 MiB). */
  rangeThreshold?: number;
  /** Bytes per Range request (default: about four chunks per connection, 4-64 MiB). */
  rangeChunkSize?: number;
  /**
   * A large blob starts on one connection and continues over `connections` only when that one gives
   * less than this many bytes per second over its first 2 MiB or 500 ms (default 64 MiB/s; `Infinity`:
   * always parallel from the start).
   */
  parallelBelowRate?: number;
}

/** Options of {@linkcode RegistryClient.downloadBlob}. */
export interface DownloadOptions {
  /** Called after each write with bytes done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Aborts the download (a `resumable` partial file is kept). */
  signal?: AbortSignal;
  /**
   * `temporary` (default): write `<dest>.<random>.tmp`, removed on failure.
   * `resumable`: write `<dest>.partial`, kept on network failure and resumed next time after
   * re-hashing its bytes.
   */
  partialFile?: "temporary" | "resumable";
}

/** Options of {@linkcode RegistryClient.listTags}. */
export interface ListTagsOptions extends ReadOptions {
  /** Page size sent as `n` (default 1000). */
  pageSize?: number;
}

/** Options of {@linkcode RegistryClient.referrers}. */
export interface ReferrersOptions extends ReadOptions {
  /** Only referrers of this artifact type. */
  artifactType?: string;
}

/** Options of {@linkcode RegistryClient.putManifest}. */
export interface PutManifestOptions extends ReadOptions {
  /** Media type sent as `Content-Type` (default: the `mediaType` field of the manifest). */
  mediaType?: string;
  /** Tag to push under; without it the manifest is pushed by digest. */
  tag?: string;
}

/** Options of {@linkcode RegistryClient.putBlob}. */
export interface PutBlobOptions extends ReadOptions {
  /** Upload in `PATCH` chunks of this many bytes instead of one monolithic `PUT`. */
  chunkSize?: number;
}

const DEFAULT_MANIFEST_LIMIT = 4 * 1024 * 1024;
const MAX_PAGES = 1000;
/** Size of the reused buffer a blob's bytes are coalesced in for a default (non-BYOB) reader. */
const COALESCE_SIZE = 1024 * 1024;

/**
 * A client for OCI distribution registries. Close it when done (it owns HTTP clients).
 *
 * @example
 * ```ts
 * import { RegistryClient } from "./client.ts";
 * import { parseReference } from "../oci/reference.ts";
 * using client = new RegistryClient({ insecureRegistries: ["127.0.0.1:5000"] });
 * const { descriptor, raw } = await client.getManifest(parseReference("127.0.0.1:5000/test/busybox:latest"));
 * console.log(descriptor.digest, raw.length);
 * ```
 */
export class RegistryClient {
  readonly #transport: Transport;
  readonly #manifestLimit: number;
  readonly #tagLimit: number;
  readonly #options: RegistryClientOptions;

  /** Creates a client; no I/O happens until the first call. */
  constructor(options: RegistryClientOptions = {}) {
    this.#options = options;
    this.#transport = new Transport(options);
    this.#manifestLimit = options.manifestLimit ?? DEFAULT_MANIFEST_LIMIT;
    this.#tagLimit = options.tagLimit ?? 100_000;
  }

  /** Releases the HTTP clients. */
  close(): void {
    this.#transport.close();
  }

  /** Same as {@linkcode RegistryClient.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** How traffic to `registry` is routed: `direct` or the proxy (display form, no secrets). */
  async describeRoute(registry: string): Promise<string> {
    return await this.#transport.describeRoute(registry);
  }

  /**
   * Fetches a manifest or index by tag or digest with the full Accept list. Its digest is the
   * sha256 of the bytes received; for a digest reference it must equal the requested digest
   * (`DIGEST_MISMATCH`). Larger than the limit: `SIZE_LIMIT_EXCEEDED`.
   */
  async getManifest(ref: Reference, options: ReadOptions = {}): Promise<RawManifest> {
    const { response, url } = await this.#transport.request({
      ...this.#base(ref, "pull", options),
      path: `/v2/${ref.repository}/manifests/${ref.identifier()}`,
      headers: { Accept: MANIFEST_ACCEPT.join(", ") },
    });
    const raw = await readLimited(response, this.#manifestLimit, `manifest ${url}`);
    const digest = await sha256Digest(raw);
    if (ref.digest !== undefined && digest !== ref.digest) {
      throw new DangerzoneError(
        "DIGEST_MISMATCH",
        `manifest of ${ref.format()} hashes to ${digest.slice(0, 19)}…, not the requested digest`,
        { hint: "the registry or a mirror served wrong content; do not use it" },
      );
    }
    const mediaType = manifestMediaType(raw, response.headers.get("content-type"));
    return { descriptor: { mediaType, digest, size: raw.byteLength }, raw };
  }

  /** The descriptor of the manifest `ref` names (digest computed from the bytes). */
  async resolve(ref: Reference, options: ReadOptions = {}): Promise<Descriptor> {
    return (await this.getManifest(ref, options)).descriptor;
  }

  /**
   * A stream of the blob that errors (`SIZE_MISMATCH`/`DIGEST_MISMATCH`) unless it matches
   * `descriptor`: too many bytes fail at once, a short body or a wrong digest fail instead of the
   * clean end. Marked self-verifying (`markSelfVerifying`) for `descriptor`, so a consumer expecting
   * the same descriptor only counts the bytes instead of hashing them again.
   *
   * It is a byte stream: a BYOB reader gets the body read straight into its own buffers; a default
   * reader gets a copy of up to 1 MiB coalesced in one reused buffer per read (it may keep its
   * chunks). A dropped connection resumes with `Range` below the verifier.
   */
  async getBlob(
    ref: Reference,
    descriptor: Descriptor,
    options: ReadOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const request = this.#blobRequest(ref, descriptor, options);
    const reader = this.#parallel(descriptor)
      // large blobs: over parallel ranges when one connection is slow, hashed once, in order, as read
      ? await openAdaptiveReader(this.#transport, { request, descriptor }, {
        ...this.#rangeOptions(options.signal),
        connections: this.#options.connections ?? 4,
        belowRate: this.#options.parallelBelowRate ?? DEFAULT_PARALLEL_BELOW,
        ...(this.#options.rangeChunkSize === undefined ? {} : { chunkSize: this.#options.rangeChunkSize }),
      })
      : await this.#transport.openBlobReader(request, { size: descriptor.size });
    return verifiedBlobStream(reader, descriptor);
  }

  /** True when the registry has the blob (HEAD 200), false on 404. */
  async hasBlob(ref: Reference, descriptor: Descriptor, options: ReadOptions = {}): Promise<boolean> {
    const { response } = await this.#transport.request({
      ...this.#blobRequest(ref, descriptor, options),
      method: "HEAD",
      acceptStatus: [404],
    });
    await response.body?.cancel();
    return response.status !== 404;
  }

  /**
   * Downloads a blob to `destPath`: bytes stream into a temporary (or `.partial`) file while being
   * counted and hashed, a dropped connection resumes with `Range`, and the file is renamed to
   * `destPath` only after size and digest matched. A blob larger than `rangeThreshold` comes over
   * `connections` parallel Range requests (`parallel_download.ts`), or one stream when the server
   * does not serve ranges exactly. Progress counts the bytes received by all connections.
   */
  async downloadBlob(
    ref: Reference,
    descriptor: Descriptor,
    destPath: string,
    options: DownloadOptions = {},
  ): Promise<void> {
    const resumable = options.partialFile === "resumable";
    const tmpPath = resumable ? `${destPath}.partial` : `${destPath}.${randomSuffix()}.tmp`;
    try {
      await this.#downloadTo(ref, descriptor, tmpPath, resumable, options);
    } catch (err) {
      const badBytes = isDangerzoneError(err, "DIGEST_MISMATCH", "SIZE_MISMATCH");
      if (resumable && badBytes && err instanceof DangerzoneError && err.message.includes("resumed")) {
        // the partial file from an earlier run was wrong: start once from zero
        await removeDownload(tmpPath);
        await this.#downloadTo(ref, descriptor, tmpPath, resumable, options).catch(async (again) => {
          await removeDownload(tmpPath);
          throw again;
        });
      } else {
        if (!resumable || badBytes) await removeDownload(tmpPath);
        throw err;
      }
    }
    await Deno.rename(tmpPath, destPath);
    if (resumable) await removeDownload(tmpPath); // the resume record of a parallel download
  }

  /** All tags of the repository, following `Link` pagination (`n`/`last`). */
  async listTags(ref: Reference, options: ListTagsOptions = {}): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${ref.repository}/tags/list?n=${options.pageSize ?? 1000}`;
    for (let page = 0; path !== undefined; page++) {
      if (page >= MAX_PAGES) {
        throw new DangerzoneError(
          "SIZE_LIMIT_EXCEEDED",
          `tag list of ${ref.name()} has more than ${MAX_PAGES} pages`,
        );
      }
      const { response, url } = await this.#transport.request({ ...this.#base(ref, "pull", options), path });
      const next = nextLink(response.headers.get("link"), ref);
      const untrusted = parseJson(await readLimited(response, this.#manifestLimit, `tag list ${url}`), url);
      if (!isObject(untrusted)) throw protocol(`tag list from ${url} is not an object`);
      const list = untrusted.tags;
      if (list !== null && list !== undefined) {
        if (!Array.isArray(list)) throw protocol(`tag list from ${url} has no tags array`);
        for (const t of list) {
          if (typeof t !== "string") throw protocol(`tag list from ${url} holds a non-string tag`);
          tags.push(t);
        }
      }
      if (tags.length > this.#tagLimit) {
        throw new DangerzoneError(
          "SIZE_LIMIT_EXCEEDED",
          `${ref.name()} has more than ${this.#tagLimit} tags`,
        );
      }
      path = next;
    }
    return tags;
  }

  /**
   * Manifests that refer to `digest` (OCI 1.1 referrers API), optionally of one artifact type.
   * When the registry lacks the API (404/400/405), falls back to the referrers tag schema: the
   * index tagged `sha256-<hex>`; no such tag means no referrers.
   */
  async referrers(ref: Reference, digest: Digest, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    const query = options.artifactType === undefined
      ? ""
      : `?artifactType=${encodeURIComponent(options.artifactType)}`;
    const { response, url } = await this.#transport.request({
      ...this.#base(ref, "pull", options),
      path: `/v2/${ref.repository}/referrers/${digest}${query}`,
      headers: { Accept: MediaType.OCI_INDEX },
      acceptStatus: [404, 400, 405],
    });
    let descriptors: Descriptor[];
    const contentType = response.headers.get("content-type")?.split(";")[0]?.trim();
    if (response.status === 200 && contentType === MediaType.OCI_INDEX) {
      const raw = await readLimited(response, this.#manifestLimit, `referrers ${url}`);
      descriptors = indexEntries(raw, url);
    } else {
      await response.body?.cancel();
      descriptors = await this.#referrersFromTag(ref, digest, options);
    }
    if (options.artifactType === undefined) return descriptors;
    return descriptors.filter((d) => d.artifactType === options.artifactType);
  }

  /** Pushes a manifest's exact bytes (by tag, or by its digest) and returns its descriptor. */
  async putManifest(ref: Reference, raw: Uint8Array, options: PutManifestOptions = {}): Promise<Descriptor> {
    return (await this.pushManifest(ref, raw, options)).descriptor;
  }

  /**
   * Like {@linkcode RegistryClient.putManifest}, and says whether the registry indexed the manifest's
   * `subject` for its referrers API (the OCI 1.1 `OCI-Subject` response header); when it did not, a
   * referrer must be listed in the referrers tag schema by the client.
   */
  async pushManifest(
    ref: Reference,
    raw: Uint8Array,
    options: PutManifestOptions = {},
  ): Promise<{ descriptor: Descriptor; subjectIndexed: boolean }> {
    const digest = await sha256Digest(raw);
    const mediaType = options.mediaType ?? manifestMediaType(raw, null);
    const { response } = await this.#transport.request({
      ...this.#base(ref, "pull,push", options),
      method: "PUT",
      path: `/v2/${ref.repository}/manifests/${options.tag ?? digest}`,
      headers: { "Content-Type": mediaType },
      body: raw,
    });
    await response.body?.cancel();
    const subjectIndexed = response.headers.get("oci-subject") !== null;
    return { descriptor: { mediaType, digest, size: raw.byteLength }, subjectIndexed };
  }

  /**
   * Uploads a blob from a stream without holding it (`POST`, then one `PUT ?digest=` streaming the
   * body), or mounts it from `options.mountFrom` on the same registry. The stream must error unless its
   * bytes match `descriptor` (a verified stream): the request then aborts and nothing is committed.
   * The `PUT` is not retried (a stream is read once): restart from the source on failure.
   */
  async uploadBlob(
    ref: Reference,
    descriptor: Descriptor,
    stream: ReadableStream<Uint8Array>,
    options: UploadBlobOptions = {},
  ): Promise<UploadOutcome> {
    return await uploadBlobStream((r) => this.#transport.request(r), ref, descriptor, stream, options);
  }

  /** Uploads a blob (monolithic, or chunked with `chunkSize`); skips it if the registry has it. */
  async putBlob(
    ref: Reference,
    descriptor: Descriptor,
    data: Uint8Array,
    options: PutBlobOptions = {},
  ): Promise<void> {
    const verifier = new BlobVerifier(descriptor);
    verifier.update(data);
    verifier.finish();
    if (await this.hasBlob(ref, descriptor, options)) return;
    const base = this.#base(ref, "pull,push", options);
    const start = await this.#transport.request({
      ...base,
      method: "POST",
      path: `/v2/${ref.repository}/blobs/uploads/`,
    });
    let location = await uploadLocation(start.response, start.url, ref);
    const chunk = options.chunkSize;
    if (chunk !== undefined && chunk > 0) {
      for (let off = 0; off < data.byteLength; off += chunk) {
        const part = data.subarray(off, Math.min(off + chunk, data.byteLength));
        const r = await this.#transport.request({
          ...base,
          method: "PATCH",
          path: location,
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Range": `${off}-${off + part.byteLength - 1}`,
          },
          body: part,
        });
        location = await uploadLocation(r.response, r.url, ref);
      }
    }
    const finish = new URL(location);
    finish.searchParams.set("digest", descriptor.digest);
    const body = chunk !== undefined && chunk > 0 ? new Uint8Array() : data;
    const done = await this.#transport.request({
      ...base,
      method: "PUT",
      path: finish.toString(),
      headers: { "Content-Type": "application/octet-stream" },
      body,
    });
    await done.response.body?.cancel();
  }

  /** A {@linkcode ContentStore} view of one repository (for the shared copy path). */
  store(ref: Reference): ContentStore {
    return new RegistryStore(this, ref);
  }

  // ---- internals -------------------------------------------------------------------------

  #base(ref: Reference, actions: string, options: ReadOptions): Omit<TransportRequest, "path"> {
    return {
      registry: ref.registry,
      scope: `repository:${ref.repository}:${actions}`,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
  }

  #blobRequest(ref: Reference, descriptor: Descriptor, options: ReadOptions): TransportRequest {
    return { ...this.#base(ref, "pull", options), path: `/v2/${ref.repository}/blobs/${descriptor.digest}` };
  }

  async #referrersFromTag(ref: Reference, digest: Digest, options: ReadOptions): Promise<Descriptor[]> {
    let manifest: RawManifest;
    try {
      manifest = await this.getManifest(ref.withTag(`sha256-${digestHex(digest)}`), options);
    } catch (err) {
      if (isDangerzoneError(err, "REGISTRY_NOT_FOUND")) return [];
      throw err;
    }
    if (!isIndexMediaType(manifest.descriptor.mediaType)) return [];
    return indexEntries(manifest.raw, ref.name());
  }

  /** Downloads over parallel ranges when the blob is large enough, else (or as a fallback) one stream. */
  async #downloadTo(
    ref: Reference,
    descriptor: Descriptor,
    tmpPath: string,
    resumable: boolean,
    options: DownloadOptions,
  ): Promise<void> {
    if (!this.#parallel(descriptor)) {
      await this.#downloadStream(ref, descriptor, tmpPath, resumable, options);
      return;
    }
    const below = this.#options.parallelBelowRate ?? DEFAULT_PARALLEL_BELOW;
    // a parallel run's file has holes; only its record says what it holds
    const parallelBefore = resumable && (await exists(rangeRecordPath(tmpPath)));
    if (below !== Infinity && !parallelBefore) {
      const probe = new SpeedProbe(below);
      if (await this.#downloadStream(ref, descriptor, tmpPath, resumable, options, probe) === "done") return;
      this.#options.onLog?.(`one connection gives ${probe.rate()} B/s; continuing over parallel ranges`);
    }
    const result = await downloadRanges(
      this.#transport,
      { request: this.#blobRequest(ref, descriptor, options), descriptor, file: tmpPath },
      {
        ...this.#rangeOptions(options.signal),
        connections: this.#options.connections ?? 4,
        resumable,
        adoptPrefix: true,
        ...(this.#options.rangeChunkSize === undefined ? {} : { chunkSize: this.#options.rangeChunkSize }),
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      },
    );
    // the server does not serve ranges as asked: the file holds a prefix, continue on one stream
    if (result.kind === "fallback") {
      await this.#downloadStream(ref, descriptor, tmpPath, true, options);
      return;
    }
    const { stats } = result;
    this.#options.onLog?.(
      `${
        descriptor.digest.slice(0, 19)
      }…: ${stats.requests} range requests; ${stats.inOrderBytes} bytes hashed ` +
        `as they arrived, ${stats.rereadBytes} read back from the file (arrived ahead of the prefix)`,
    );
  }

  /** True when `descriptor` is large enough for parallel ranges and more than one connection is allowed. */
  #parallel(descriptor: Descriptor): boolean {
    return (this.#options.connections ?? 4) > 1 &&
      descriptor.size > (this.#options.rangeThreshold ?? 16 * 1024 * 1024);
  }

  /** The options both range engines take from the client's. */
  #rangeOptions(signal: AbortSignal | undefined): RangeFetcherOptions & { signal?: AbortSignal } {
    return {
      ...(this.#options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: this.#options.idleTimeoutMs }),
      ...(this.#options.retry?.attempts === undefined ? {} : { attempts: this.#options.retry.attempts }),
      ...(this.#options.onLog === undefined ? {} : { onLog: this.#options.onLog }),
      ...(signal === undefined ? {} : { signal }),
    };
  }

  /**
   * One stream into the file, appending to what it holds when `resume` (re-hashing those bytes first).
   * With a `probe` that finds the connection slow, it stops early (`handover`): the file then holds a
   * contiguous prefix, unverified, for the parallel engine to continue.
   */
  async #downloadStream(
    ref: Reference,
    descriptor: Descriptor,
    tmpPath: string,
    resume: boolean,
    options: DownloadOptions,
    probe?: SpeedProbe,
  ): Promise<"done" | "handover"> {
    const resumable = resume;
    // bytes are hashed here, on the main thread, while the writer's writes run on I/O threads
    const verifier = new BlobVerifier(descriptor);
    const writer = await BlobFileWriter.open(tmpPath, {
      resume: resumable,
      size: descriptor.size,
      onExisting: (bytes) => verifier.update(bytes),
    });
    let offset = writer.offset;
    const resumedFrom = offset;
    const total = descriptor.size;
    let written: number;
    try {
      options.onProgress?.(offset, total);
      if (offset < total) {
        const received = await this.#receive(ref, descriptor, {
          writer,
          verifier,
          offset,
          resumable,
          options,
          probe,
        });
        offset = received.offset;
        if (received.handover) {
          await writer.finish();
          return "handover";
        }
      }
      written = await writer.finish();
    } finally {
      await writer.close();
    }
    if (written !== verifier.count) {
      throw new DangerzoneError(
        "INTERNAL",
        `blob writer wrote ${written} bytes, ${verifier.count} were received`,
      );
    }
    try {
      verifier.finish();
    } catch (err) {
      if (resumedFrom > 0 && err instanceof DangerzoneError) {
        throw new DangerzoneError(err.code, `${err.message} (resumed from byte ${resumedFrom})`, {
          cause: err,
        });
      }
      throw err;
    }
    return "done";
  }

  /**
   * Reads the blob body from `offset` into the writer's buffers (filled to the brim, so each
   * disk write is large) and hands each full buffer to the writer; returns the final offset. On
   * a failure, a resumable download hands over what it has before rethrowing, so the `.partial`
   * file keeps every byte received.
   */
  async #receive(
    ref: Reference,
    descriptor: Descriptor,
    state: {
      writer: BlobFileWriter;
      verifier: BlobVerifier;
      offset: number;
      resumable: boolean;
      options: DownloadOptions;
      probe: SpeedProbe | undefined;
    },
  ): Promise<{ offset: number; handover: boolean }> {
    const { writer, verifier, resumable, options, probe } = state;
    let handover = false;
    const total = descriptor.size;
    let offset = state.offset;
    const reader = await this.#transport.openBlobReader(this.#blobRequest(ref, descriptor, options), {
      size: total,
      offset,
    });
    let buffer = await writer.takeBuffer();
    let filled = 0;
    try {
      for (;;) {
        const { bytes, done } = await reader.read(new Uint8Array(buffer, filled));
        buffer = bytes.buffer;
        if (done) break;
        // checked against the size and hashed before a byte is written
        verifier.update(bytes);
        filled += bytes.byteLength;
        if (probe?.add(bytes.byteLength) === "slow") {
          handover = true;
          await reader.cancel().catch(() => {});
          break;
        }
        if (filled === buffer.byteLength) {
          writer.write(buffer, filled);
          offset += filled;
          filled = 0;
          options.onProgress?.(offset, total);
          buffer = await writer.takeBuffer();
        }
      }
    } catch (err) {
      await reader.cancel().catch(() => {});
      if (filled > 0 && resumable && !isDangerzoneError(err, "SIZE_MISMATCH")) {
        writer.write(buffer, filled);
      }
      throw err;
    }
    if (filled > 0) {
      writer.write(buffer, filled);
      offset += filled;
      options.onProgress?.(offset, total);
    }
    return { offset, handover };
  }
}

/** {@linkcode ContentStore} over one registry repository. */
class RegistryStore implements ContentStore {
  readonly #client: RegistryClient;
  readonly #ref: Reference;

  constructor(client: RegistryClient, ref: Reference) {
    this.#client = client;
    this.#ref = ref;
  }

  resolve(ref: Reference, options: ReadOptions = {}): Promise<Descriptor> {
    return this.#client.resolve(ref, options);
  }

  async getManifest(desc: Descriptor, options: ReadOptions = {}): Promise<Uint8Array> {
    const m = await this.#client.getManifest(this.#ref.withDigest(desc.digest), options);
    if (m.raw.byteLength !== desc.size) {
      throw new DangerzoneError("SIZE_MISMATCH", `manifest ${desc.digest.slice(0, 19)}… has the wrong size`);
    }
    return m.raw;
  }

  getBlob(desc: Descriptor, options: ReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#client.getBlob(this.#ref, desc, options);
  }

  hasBlob(desc: Descriptor, options: ReadOptions = {}): Promise<boolean> {
    return this.#client.hasBlob(this.#ref, desc, options);
  }

  async putBlob(
    desc: Descriptor,
    stream: ReadableStream<Uint8Array>,
    options: ReadOptions = {},
  ): Promise<void> {
    const data = new Uint8Array(await new Response(stream.pipeThrough(verifyStream(desc))).arrayBuffer());
    await this.#client.putBlob(this.#ref, desc, data, options);
  }

  async putManifest(
    desc: Descriptor,
    raw: Uint8Array,
    tag?: string,
    options: ReadOptions = {},
  ): Promise<void> {
    const digest = await sha256Digest(raw);
    if (digest !== desc.digest || raw.byteLength !== desc.size) {
      throw new DangerzoneError(
        "DIGEST_MISMATCH",
        `manifest bytes do not match ${desc.digest.slice(0, 19)}…`,
      );
    }
    await this.#client.putManifest(this.#ref, raw, {
      mediaType: desc.mediaType,
      ...(tag === undefined ? {} : { tag }),
      ...options,
    });
  }
}

/**
 * The byte stream of a blob reader that errors (`SIZE_MISMATCH`/`DIGEST_MISMATCH`) unless the bytes
 * match `descriptor`, marked self-verifying: see {@linkcode RegistryClient.getBlob}.
 */
function verifiedBlobStream(reader: BlobReader, descriptor: Descriptor): ReadableStream<Uint8Array> {
  const verifier = new BlobVerifier(descriptor);
  let coalesce: ArrayBuffer = new ArrayBuffer(COALESCE_SIZE);
  const pull = async (controller: ReadableByteStreamController): Promise<void> => {
    const request = controller.byobRequest;
    const view = request?.view;
    if (request !== null && view !== null && view !== undefined) {
      // the reader's own buffer: read into it, hash, hand it back
      const { bytes, done } = await reader.read(
        new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
      );
      if (done) {
        verifier.finish();
        controller.close();
      } else {
        verifier.update(bytes);
      }
      // after close(), the pending read is answered with the (empty) view on its moved buffer
      request.respondWithNewView(bytes);
      return;
    }
    // a default reader may hold its chunks: fill our buffer, enqueue a copy
    let filled = 0;
    let done = false;
    while (filled < COALESCE_SIZE) {
      const r = await reader.read(new Uint8Array(coalesce, filled));
      coalesce = r.bytes.buffer;
      if (r.done) {
        done = true;
        break;
      }
      verifier.update(r.bytes);
      filled += r.bytes.byteLength;
    }
    if (done) verifier.finish();
    if (filled > 0) controller.enqueue(new Uint8Array(coalesce.slice(0, filled)));
    if (done) controller.close();
  };
  const stream = new ReadableStream({
    type: "bytes",
    async pull(controller) {
      try {
        await pull(controller);
      } catch (err) {
        // the stream errors (never closes cleanly); release the connection too
        await reader.cancel(err).catch(() => {});
        throw err;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return markSelfVerifying(stream, descriptor);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function randomSuffix(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** The manifest's media type: its `mediaType` field, else a known `Content-Type`. */
function manifestMediaType(raw: Uint8Array, contentType: string | null): string {
  const header = contentType?.split(";")[0]?.trim();
  let field: string | undefined;
  try {
    const untrusted: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
    if (isObject(untrusted) && typeof untrusted.mediaType === "string") field = untrusted.mediaType;
  } catch (cause) {
    throw new DangerzoneError("MANIFEST_INVALID", "the registry sent a manifest that is not JSON", { cause });
  }
  if (field !== undefined) return field;
  if (header !== undefined && (isManifestMediaType(header) || isIndexMediaType(header))) return header;
  return parseManifest(raw).mediaType;
}

function indexEntries(raw: Uint8Array, where: string): Descriptor[] {
  const m = parseManifest(raw, MediaType.OCI_INDEX);
  if (m.kind !== "index") throw protocol(`referrers from ${where} are not an index`);
  return m.manifests;
}

function nextLink(header: string | null, ref: Reference): string | undefined {
  if (header === null) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header);
  const target = m?.[1];
  if (target === undefined) return undefined;
  if (/^https?:\/\//i.test(target)) {
    throw protocol(`pagination link of ${ref.name()} points to another origin`);
  }
  if (!target.startsWith(`/v2/${ref.repository}/`)) {
    throw protocol(`pagination link of ${ref.name()} leaves the repository`);
  }
  return target;
}

async function uploadLocation(response: Response, url: string, ref: Reference): Promise<string> {
  await response.body?.cancel();
  return sessionLocation(response, url, ref);
}

function parseJson(bytes: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new DangerzoneError("REGISTRY_PROTOCOL", `invalid JSON from ${where}`, { cause });
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function protocol(message: string): DangerzoneError {
  return new DangerzoneError("REGISTRY_PROTOCOL", message);
}
