/**
 * Private: what the two oci-archive writers ({@linkcode OciArchiveWriter} and {@linkcode ImageTarStream})
 * share: the write-only half of a {@linkcode ContentStore}, the
 * header/body/padding of a small file entry, and the `index.json` of the tagged manifests.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { ContentStore } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { MediaType } from "../oci/media_types.ts";
import { entryHeader, paddingFor } from "./_tar_header.ts";
import { REF_NAME_ANNOTATION } from "./_oci_layout_file.ts";

/**
 * A {@linkcode ContentStore} that is only written: reads throw `UNSUPPORTED`, and `hasBlob` answers
 * from the blobs a subclass recorded in {@linkcode WriteOnlyTarStore.written}.
 */
export abstract class WriteOnlyTarStore implements ContentStore {
  /** Size of each blob written so far, by digest. */
  protected readonly written = new Map<Digest, number>();
  readonly #what: string;

  /** `what` names the store in errors ("an archive stream"). */
  protected constructor(what: string) {
    this.#what = what;
  }

  /** Not readable. */
  resolve(): Promise<Descriptor> {
    return Promise.reject(this.#unsupported("resolve"));
  }

  /** Not readable. */
  getManifest(): Promise<Uint8Array> {
    return Promise.reject(this.#unsupported("getManifest"));
  }

  /** Not readable. */
  getBlob(): Promise<ReadableStream<Uint8Array>> {
    return Promise.reject(this.#unsupported("getBlob"));
  }

  /** True when this store already holds the blob. */
  hasBlob(desc: Descriptor): Promise<boolean> {
    return Promise.resolve(this.written.get(desc.digest) === desc.size);
  }

  /** Writes a blob. */
  abstract putBlob(desc: Descriptor, stream: ReadableStream<Uint8Array>): Promise<void>;

  /** Writes a manifest. */
  abstract putManifest(desc: Descriptor, raw: Uint8Array, tag?: string): Promise<void>;

  #unsupported(op: string): DangerzoneError {
    return new DangerzoneError("UNSUPPORTED", `${op} is not supported on ${this.#what}`);
  }
}

/** The tar entry of a small file: header, body, padding (the body is not copied). */
export function fileEntry(name: string, bytes: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  return [entryHeader(name, "file", bytes.byteLength), bytes, paddingFor(bytes.byteLength)];
}

/** The index entry naming `desc` as `tag`. */
export function taggedDescriptor(desc: Descriptor, tag: string): Descriptor {
  return {
    mediaType: desc.mediaType,
    digest: desc.digest,
    size: desc.size,
    annotations: { [REF_NAME_ANNOTATION]: tag },
  };
}

/** The bytes of `index.json` listing the tagged manifests `entries` (at least one, else `INTERNAL`). */
export function taggedIndexJson(entries: readonly Descriptor[]): Uint8Array {
  if (entries.length === 0) {
    throw new DangerzoneError("INTERNAL", "an archive for the runtime needs one tagged image");
  }
  return new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: entries }),
  );
}
