/**
 * The index of an air-gapped archive: `dangerzone.json` (the full `cosign save` index, with the
 * `kind` annotations) and `index.json` (the same, filtered to the image). Checked strictly, as
 * Dangerzone's Python tool does and more: duplicate JSON keys, unknown or missing `kind`
 * annotations, duplicate entries and media types that disagree with their kind are refused too.
 * {@linkcode findBlobProblems} (blob_check.ts) then walks what the entries reference.
 * A plain `cosign save` layout (no `dangerzone.json`) is accepted: its `index.json` is then the
 * full index.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { fail, isObject } from "../oci/_assert.ts";
import { assertDescriptor, type Descriptor } from "../oci/descriptor.ts";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../oci/media_types.ts";
import { parseStrictJsonAs } from "../strict_json.ts";
import type { BlobRoot } from "./blob_check.ts";

/** The annotation `cosign save` puts on every `index.json` entry. */
export const COSIGN_KIND_ANNOTATION = "kind";

/** The values of the `kind` annotation. */
export const CosignKind = {
  IMAGE: "dev.cosignproject.cosign/image",
  IMAGE_INDEX: "dev.cosignproject.cosign/imageIndex",
  SIGNATURES: "dev.cosignproject.cosign/sigs",
  ATTESTATIONS: "dev.cosignproject.cosign/atts",
  /**
   * A referrer of the image (a manifest whose `subject` is the image: cosign v3 Sigstore bundles,
   * build attestations), listed with its `artifactType`. Our extension: `cosign save` has no kind for
   * them; Dangerzone's Python tool ignores entries of other kinds.
   */
  REFERRER: "dev.dangerzone.image/referrer",
} as const;

/** One of the {@linkcode CosignKind} values. */
export type CosignKindValue = typeof CosignKind[keyof typeof CosignKind];

/** Most entries accepted in an archive index. */
const MAX_INDEX_ENTRIES = 1000;

/** The checked index of an archive or `cosign save` layout. Descriptors are still untrusted claims about blobs. */
export interface ArchiveIndex {
  /** `dangerzone-archive` when `dangerzone.json` is present, else `cosign-save`. */
  form: "dangerzone-archive" | "cosign-save";
  /** The one image (kind `image` or `imageIndex`). */
  image: Descriptor;
  /** Entries of kind `sigs` (legacy cosign signature manifests). */
  signatures: Descriptor[];
  /** Entries of kind `atts` (cosign attestation manifests). */
  attestations: Descriptor[];
  /** Entries of kind referrer (cosign v3 bundles and other referrers of the image). */
  referrers: Descriptor[];
  /** Every entry of the full index, in order. */
  entries: Descriptor[];
}

/** The raw metadata files an archive index is checked from. */
export interface ArchiveIndexFiles {
  /** Exact bytes of `index.json`. */
  untrustedIndexJson: Uint8Array;
  /** Exact bytes of `dangerzone.json`, when the archive has one. */
  untrustedDangerzoneJson?: Uint8Array | undefined;
}

function isImageKind(kind: string | undefined): boolean {
  return kind === CosignKind.IMAGE || kind === CosignKind.IMAGE_INDEX;
}

/**
 * Checks `index.json` (and `dangerzone.json` when present) and lists the image, signatures and
 * attestations. With `dangerzone.json`, `index.json` must equal it filtered to the entries whose
 * `kind` is an image (JSON equality, as the Python tool compares). Exactly one image is required.
 * Throws `ARCHIVE_INVALID` with one line naming the problem.
 *
 * @example
 * ```ts
 * import { parseArchiveIndex } from "./archive_index.ts";
 * const entry = `{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2,` +
 *   `"digest":"sha256:${"a".repeat(64)}","annotations":{"kind":"dev.cosignproject.cosign/image"}}`;
 * const raw = new TextEncoder().encode(`{"schemaVersion":2,"manifests":[${entry}]}`);
 * const index = parseArchiveIndex({ untrustedIndexJson: raw });
 * console.log(index.image.digest);
 * ```
 */
export function parseArchiveIndex(files: ArchiveIndexFiles): ArchiveIndex {
  const indexValue = parseStrictJsonAs(files.untrustedIndexJson, "index.json");
  const indexEntries = checkIndexShape(indexValue, "index.json");
  let form: ArchiveIndex["form"] = "cosign-save";
  let entries = indexEntries;
  if (files.untrustedDangerzoneJson !== undefined) {
    form = "dangerzone-archive";
    const fullValue = parseStrictJsonAs(files.untrustedDangerzoneJson, "dangerzone.json");
    entries = checkIndexShape(fullValue, "dangerzone.json");
    if (!isObject(fullValue) || !Array.isArray(fullValue.manifests)) {
      throw new DangerzoneError("INTERNAL", "dangerzone.json shape check let a non-index through");
    }
    const images = fullValue.manifests.filter((m: unknown) =>
      isObject(m) && isObject(m.annotations) &&
      isImageKind(stringOrUndefined(m.annotations[COSIGN_KIND_ANNOTATION]))
    );
    const expected = { ...fullValue, manifests: images };
    if (!jsonEqual(expected, indexValue)) {
      throw new DangerzoneError(
        "ARCHIVE_INVALID",
        "index.json does not equal dangerzone.json filtered to the image entries",
        { hint: "the archive was altered after it was made; do not use it" },
      );
    }
  }
  const source = form === "dangerzone-archive" ? "dangerzone.json" : "index.json";
  const images = entries.filter((d) => isImageKind(d.annotations?.[COSIGN_KIND_ANNOTATION]));
  const image = images[0];
  if (image === undefined || images.length !== 1) {
    throw new DangerzoneError(
      "ARCHIVE_INVALID",
      `${source} lists ${images.length} images; an archive must hold exactly one`,
      { hint: "make the archive again for a single platform with prepare-archive" },
    );
  }
  return {
    form,
    image,
    signatures: entries.filter((d) => d.annotations?.[COSIGN_KIND_ANNOTATION] === CosignKind.SIGNATURES),
    attestations: entries.filter((d) => d.annotations?.[COSIGN_KIND_ANNOTATION] === CosignKind.ATTESTATIONS),
    referrers: entries.filter((d) => d.annotations?.[COSIGN_KIND_ANNOTATION] === CosignKind.REFERRER),
    entries,
  };
}

function stringOrUndefined(x: unknown): string | undefined {
  return typeof x === "string" ? x : undefined;
}

/** Shape of a `cosign save` index: schemaVersion 2, OCI index media type, annotated descriptors. */
function checkIndexShape(value: unknown, file: string): Descriptor[] {
  const code = "ARCHIVE_INVALID";
  if (!isObject(value)) fail(code, file, "must be a JSON object");
  if (value.schemaVersion !== 2) fail(code, `${file}.schemaVersion`, "must be 2");
  if (value.mediaType !== undefined && value.mediaType !== MediaType.OCI_INDEX) {
    fail(code, `${file}.mediaType`, `must be ${MediaType.OCI_INDEX}`);
  }
  if (value.layers !== undefined || value.config !== undefined) {
    fail(code, file, "is a manifest, not an index");
  }
  const list = value.manifests;
  if (!Array.isArray(list)) fail(code, `${file}.manifests`, "must be a list");
  if (list.length > MAX_INDEX_ENTRIES) {
    fail(code, `${file}.manifests`, `has more than ${MAX_INDEX_ENTRIES} entries`);
  }
  const seen = new Set<string>();
  const out: Descriptor[] = [];
  list.forEach((d: unknown, i: number) => {
    const path = `${file}.manifests[${i}]`;
    assertDescriptor(d, path, code);
    const kind = d.annotations?.[COSIGN_KIND_ANNOTATION];
    switch (kind) {
      case CosignKind.IMAGE:
      case CosignKind.SIGNATURES:
      case CosignKind.ATTESTATIONS:
      case CosignKind.REFERRER:
        if (!isManifestMediaType(d.mediaType)) {
          fail(code, `${path}.mediaType`, `is not a manifest type for ${kind}`);
        }
        break;
      case CosignKind.IMAGE_INDEX:
        if (!isIndexMediaType(d.mediaType)) {
          fail(code, `${path}.mediaType`, `is not an index type for ${kind}`);
        }
        break;
      case undefined:
        fail(code, path, "has no 'kind' annotation (not a cosign save layout)");
        break;
      default:
        fail(code, `${path}.annotations.kind`, `is unknown ('${kind.slice(0, 80)}')`);
    }
    if (seen.has(d.digest)) fail(code, path, `lists ${d.digest.slice(0, 19)}… a second time`);
    seen.add(d.digest);
    out.push(d);
  });
  return out;
}

/** JSON value equality: objects compare by key set (order-insensitive), arrays by order. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x: unknown, i: number) => jsonEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The walk roots of an archive index for {@linkcode findBlobProblems}: every entry, or only
 * those whose `kind` is in `kinds` (for example signatures and attestations).
 */
export function archiveRoots(index: ArchiveIndex, kinds?: readonly CosignKindValue[]): BlobRoot[] {
  const file = index.form === "dangerzone-archive" ? "dangerzone.json" : "index.json";
  const out: BlobRoot[] = [];
  index.entries.forEach((descriptor, i) => {
    const kind = descriptor.annotations?.[COSIGN_KIND_ANNOTATION] ?? "";
    if (kinds !== undefined && !kinds.some((k) => k === kind)) return;
    out.push({
      descriptor,
      label: `${file} manifests[${i}] (${kind.replace("dev.cosignproject.cosign/", "")})`,
    });
  });
  return out;
}
