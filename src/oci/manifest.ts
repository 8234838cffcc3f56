/**
 * Strict parsing of OCI and Docker image manifests and indexes from their exact raw bytes.
 * Raw bytes are the source of truth: parsed objects are derived from them and never
 * re-serialised to compute digests or write files.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { assertDescriptor, type Descriptor } from "./descriptor.ts";
import { fail, isObject, type JsonObject, optionalString, optionalStringMap } from "./_assert.ts";
import { isIndexMediaType, isManifestMediaType, MediaType } from "./media_types.ts";

/** A single-platform image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  /** Discriminator. */
  kind: "manifest";
  /** The manifest media type (from the body, else the transport's Content-Type). */
  mediaType: string;
  /** The config blob. */
  config: Descriptor;
  /** Layer blobs, in order. */
  layers: Descriptor[];
  /** OCI 1.1 subject, if any. */
  subject?: Descriptor;
  /** OCI 1.1 artifact type, if any. */
  artifactType?: string;
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** A multi-platform index (OCI image index or Docker manifest list). */
export interface ImageIndex {
  /** Discriminator. */
  kind: "index";
  /** The index media type. */
  mediaType: string;
  /** The entries. */
  manifests: Descriptor[];
  /** OCI 1.1 subject, if any. */
  subject?: Descriptor;
  /** OCI 1.1 artifact type, if any. */
  artifactType?: string;
  /** Annotations. */
  annotations?: Record<string, string>;
}

/** A parsed manifest or index. */
export type Manifest = ImageManifest | ImageIndex;

/** A manifest's exact bytes and the descriptor that vouches for them. */
export interface RawManifest {
  /** Descriptor whose digest is the sha256 of `raw` (computed by us). */
  descriptor: Descriptor;
  /** The exact bytes. */
  raw: Uint8Array;
}

/** Hard upper bound on manifest entries we are willing to parse. */
const MAX_ENTRIES = 10_000;

/**
 * Parses manifest bytes strictly: UTF-8, a JSON object, `schemaVersion` 2, a known media type
 * (from the body, or `contentType` when the body has none; they must agree when both exist),
 * and well-formed descriptors. Throws `MANIFEST_INVALID`.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * const raw = new TextEncoder().encode('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
 * const m = parseManifest(raw);
 * console.log(m.kind);
 * ```
 */
export function parseManifest(raw: Uint8Array, contentType?: string): Manifest {
  let untrusted: unknown;
  try {
    untrusted = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (cause) {
    throw new DangerzoneError("MANIFEST_INVALID", "manifest is not valid UTF-8 JSON", { cause });
  }
  if (!isObject(untrusted)) fail("MANIFEST_INVALID", "manifest", "must be a JSON object");
  if (untrusted.schemaVersion !== 2) fail("MANIFEST_INVALID", "manifest.schemaVersion", "must be 2");
  const bodyType = optionalString("MANIFEST_INVALID", untrusted, "mediaType", "manifest");
  const headerType = contentType === undefined ? undefined : contentType.split(";")[0]?.trim();
  const knownHeader =
    headerType !== undefined && (isManifestMediaType(headerType) || isIndexMediaType(headerType))
      ? headerType
      : undefined;
  if (bodyType !== undefined && knownHeader !== undefined && bodyType !== knownHeader) {
    fail(
      "MANIFEST_INVALID",
      "manifest.mediaType",
      `'${bodyType}' disagrees with Content-Type '${knownHeader}'`,
    );
  }
  let mediaType = bodyType ?? knownHeader;
  if (mediaType === undefined) {
    const hasManifests = untrusted.manifests !== undefined;
    const hasLayers = untrusted.layers !== undefined || untrusted.config !== undefined;
    if (hasManifests === hasLayers) {
      fail("MANIFEST_INVALID", "manifest.mediaType", "missing and not inferable");
    }
    mediaType = hasManifests ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST;
  }
  if (isIndexMediaType(mediaType)) return parseIndex(untrusted, mediaType);
  if (isManifestMediaType(mediaType)) return parseImageManifest(untrusted, mediaType);
  return fail(
    "MANIFEST_INVALID",
    "manifest.mediaType",
    `unsupported media type '${mediaType.slice(0, 100)}'`,
  );
}

function parseImageManifest(obj: JsonObject, mediaType: string): ImageManifest {
  if (obj.manifests !== undefined) {
    fail("MANIFEST_INVALID", "manifest.manifests", "not allowed in a manifest");
  }
  assertDescriptor(obj.config, "manifest.config");
  const layers = descriptorList(obj.layers, "manifest.layers");
  const out: ImageManifest = { kind: "manifest", mediaType, config: obj.config, layers };
  addCommon(out, obj);
  return out;
}

function parseIndex(obj: JsonObject, mediaType: string): ImageIndex {
  if (obj.layers !== undefined || obj.config !== undefined) {
    fail("MANIFEST_INVALID", "manifest.layers", "not allowed in an index");
  }
  const manifests = descriptorList(obj.manifests, "manifest.manifests");
  const out: ImageIndex = { kind: "index", mediaType, manifests };
  addCommon(out, obj);
  return out;
}

function addCommon(out: ImageManifest | ImageIndex, obj: JsonObject): void {
  if (obj.subject !== undefined) {
    assertDescriptor(obj.subject, "manifest.subject");
    out.subject = obj.subject;
  }
  const artifactType = optionalString("MANIFEST_INVALID", obj, "artifactType", "manifest");
  if (artifactType !== undefined) out.artifactType = artifactType;
  const annotations = optionalStringMap("MANIFEST_INVALID", obj, "annotations", "manifest");
  if (annotations !== undefined) out.annotations = annotations;
}

function descriptorList(x: unknown, path: string): Descriptor[] {
  if (!Array.isArray(x)) fail("MANIFEST_INVALID", path, "must be a list");
  if (x.length > MAX_ENTRIES) fail("MANIFEST_INVALID", path, `has more than ${MAX_ENTRIES} entries`);
  const out: Descriptor[] = [];
  x.forEach((d: unknown, i) => {
    assertDescriptor(d, `${path}[${i}]`);
    out.push(d);
  });
  return out;
}
