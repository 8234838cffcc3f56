/**
 * OCI content descriptors and platforms, with an assert function for untrusted JSON.
 *
 * @module
 */
import { type Digest, isDigest } from "./digest.ts";
import { fail, isObject, optionalString, optionalStringMap } from "./_assert.ts";

/** The platform of an index entry. */
export interface Platform {
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU architecture in Go terms, e.g. `amd64`, `arm64`. */
  architecture: string;
  /** CPU variant, e.g. `v8` for arm64, `v7` for arm. */
  variant?: string;
  /** OS version (Windows). */
  "os.version"?: string;
  /** Required OS features (Windows). */
  "os.features"?: string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** Digest of the referenced content. */
  digest: Digest;
  /** Size in bytes of the referenced content. */
  size: number;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
  /** Platform, in index entries. */
  platform?: Platform;
  /** Artifact type (OCI 1.1). */
  artifactType?: string;
  /** Alternative download URLs (never followed by this client). */
  urls?: string[];
}

/**
 * Asserts that untrusted JSON is a descriptor: sha256 digest, non-negative safe-integer size,
 * string media type, well-typed optional fields. Throws `code` (default `MANIFEST_INVALID`).
 *
 * @example
 * ```ts
 * import { assertDescriptor } from "./descriptor.ts";
 * const untrusted: unknown = JSON.parse('{"mediaType":"x","digest":"sha256:' + "a".repeat(64) + '","size":1}');
 * assertDescriptor(untrusted);
 * ```
 */
export function assertDescriptor(
  x: unknown,
  path = "descriptor",
  code: "MANIFEST_INVALID" | "ARCHIVE_INVALID" | "REGISTRY_PROTOCOL" = "MANIFEST_INVALID",
): asserts x is Descriptor {
  if (!isObject(x)) fail(code, path, "must be an object");
  if (typeof x.mediaType !== "string" || x.mediaType.length === 0 || x.mediaType.length > 255) {
    fail(code, `${path}.mediaType`, "must be a non-empty string");
  }
  if (!isDigest(x.digest)) {
    fail(code, `${path}.digest`, "must be sha256: followed by 64 lowercase hex digits");
  }
  if (typeof x.size !== "number" || !Number.isSafeInteger(x.size) || x.size < 0) {
    fail(code, `${path}.size`, "must be a non-negative integer");
  }
  optionalStringMap(code, x, "annotations", path);
  optionalString(code, x, "artifactType", path);
  if (x.urls !== undefined) {
    if (!Array.isArray(x.urls) || !x.urls.every((u) => typeof u === "string")) {
      fail(code, `${path}.urls`, "must be a list of strings");
    }
  }
  if (x.platform !== undefined) assertPlatform(x.platform, `${path}.platform`, code);
}

/** Asserts that untrusted JSON is a platform object. */
export function assertPlatform(
  x: unknown,
  path = "platform",
  code: "MANIFEST_INVALID" | "ARCHIVE_INVALID" | "REGISTRY_PROTOCOL" = "MANIFEST_INVALID",
): asserts x is Platform {
  if (!isObject(x)) fail(code, path, "must be an object");
  if (typeof x.os !== "string") fail(code, `${path}.os`, "must be a string");
  if (typeof x.architecture !== "string") fail(code, `${path}.architecture`, "must be a string");
  optionalString(code, x, "variant", path);
  optionalString(code, x, "os.version", path);
  const features = x["os.features"];
  if (features !== undefined && (!Array.isArray(features) || !features.every((f) => typeof f === "string"))) {
    fail(code, `${path}.os.features`, "must be a list of strings");
  }
}

/** A short display form of a descriptor: `mediaType sha256:abcdef012345… (N bytes)`. */
export function describeDescriptor(d: Descriptor): string {
  return `${d.mediaType} ${d.digest.slice(0, 19)}… (${d.size} bytes)`;
}
