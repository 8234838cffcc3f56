/**
 * The one content interface (ggcr `v1` plus regclient `scheme.API`), implemented by the registry
 * client, the OCI layout directory and the archive tar. Types only.
 *
 * @module
 */
import type { Descriptor } from "./descriptor.ts";
import type { Reference } from "./reference.ts";

/** Options for reads that may be cancelled. */
export interface ReadOptions {
  /** Aborts the operation. */
  signal?: AbortSignal;
}

/**
 * A store of manifests and blobs addressed by descriptor. Every read is verified against the
 * descriptor (size and digest) before data is handed out as usable; unsupported operations
 * throw `UNSUPPORTED`.
 */
export interface ContentStore {
  /** Resolves a reference (tag or digest) to the descriptor of its manifest, digest computed by us. */
  resolve(ref: Reference, options?: ReadOptions): Promise<Descriptor>;
  /** The exact, verified bytes of the manifest `desc` names. */
  getManifest(desc: Descriptor, options?: ReadOptions): Promise<Uint8Array>;
  /** A stream of the blob's bytes that errors unless they match `desc` (checked at EOF). */
  getBlob(desc: Descriptor, options?: ReadOptions): Promise<ReadableStream<Uint8Array>>;
  /** True when the store holds the blob (implementations must not trust size alone for reuse). */
  hasBlob(desc: Descriptor, options?: ReadOptions): Promise<boolean>;
  /** Stores a blob; the stream is verified against `desc` before it becomes visible. */
  putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>, options?: ReadOptions): Promise<void>;
  /** Stores a manifest's exact bytes, optionally under `tag`. */
  putManifest(desc: Descriptor, raw: Uint8Array, tag?: string, options?: ReadOptions): Promise<void>;
}
