/**
 * Shape checks for the JSON that podman and docker print: `unknown` in, typed values out, no casts.
 * A shape we do not know is `RUNTIME_FAILED` (fail closed), never a guess. Private to `src/runtime/`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { type Digest, isDigest } from "../oci/digest.ts";

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** True for a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses JSON text; `RUNTIME_FAILED` naming `what` when it is not JSON. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw unexpected(what, "is not JSON", err);
  }
}

/** The error for output of an unknown shape. */
export function unexpected(what: string, problem: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError("RUNTIME_FAILED", `unexpected output from ${what}: ${problem}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: "this runtime version's output is not supported; please report it with the output of --debug",
  });
}

/** Reads an object. */
export function asObject(value: unknown, what: string, path: string): JsonObject {
  if (!isObject(value)) throw unexpected(what, `${path} is not an object`);
  return value;
}

/** Reads an array. */
export function asArray(value: unknown, what: string, path: string): unknown[] {
  if (!Array.isArray(value)) throw unexpected(what, `${path} is not an array`);
  return value;
}

/** Reads a required string field. */
export function stringField(obj: JsonObject, key: string, what: string, path: string): string {
  const value = obj[key];
  if (typeof value !== "string") throw unexpected(what, `${path}.${key} is not a string`);
  return value;
}

/** Reads an optional string field (absent or null gives undefined). */
export function optionalStringField(
  obj: JsonObject,
  key: string,
  what: string,
  path: string,
): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw unexpected(what, `${path}.${key} is not a string`);
  return value;
}

/** Reads a list of strings; absent or null (podman prints `null` for an empty list) gives `[]`. */
export function stringListField(obj: JsonObject, key: string, what: string, path: string): string[] {
  const value = obj[key];
  if (value === undefined || value === null) return [];
  const list = asArray(value, what, `${path}.${key}`);
  const out: string[] = [];
  for (const [i, item] of list.entries()) {
    if (typeof item !== "string") throw unexpected(what, `${path}.${key}[${i}] is not a string`);
    out.push(item);
  }
  return out;
}

/** An image ID as `sha256:<hex>`, from podman's bare hex or docker's prefixed form. */
export function imageId(raw: string, what: string, path: string): Digest {
  const id = raw.startsWith("sha256:") ? raw : `sha256:${raw}`;
  if (!isDigest(id)) throw unexpected(what, `${path} is not a full sha256 image ID`);
  return id;
}

/** A `.Digest`-style field: a sha256 digest, or undefined when empty. */
export function optionalDigest(raw: string | undefined, what: string, path: string): Digest | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!isDigest(raw)) throw unexpected(what, `${path} is not a sha256 digest`);
  return raw;
}

/**
 * The digest of a repo digest `repository@sha256:…`; undefined for another algorithm. A value without
 * `@` is an unknown shape.
 */
export function repoDigestDigest(repoDigest: string, what: string, path: string): Digest | undefined {
  const at = repoDigest.lastIndexOf("@");
  if (at <= 0) throw unexpected(what, `${path} is not repository@digest`);
  const digest = repoDigest.slice(at + 1);
  return isDigest(digest) ? digest : undefined;
}

/** `.Digest` first, then the repo digests' digests, without duplicates. */
export function uniqueDigests(
  first: Digest | undefined,
  repoDigests: string[],
  what: string,
  path: string,
): Digest[] {
  const out: Digest[] = first === undefined ? [] : [first];
  for (const [i, rd] of repoDigests.entries()) {
    const d = repoDigestDigest(rd, what, `${path}[${i}]`);
    if (d !== undefined && !out.includes(d)) out.push(d);
  }
  return out;
}

/** A creation time: a date string or epoch seconds; undefined when missing or unparsable (display only). */
export function createdAt(value: unknown): Date | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return new Date(value * 1000);
  if (typeof value !== "string" || value === "") return undefined;
  // docker images: "2026-11-25 04:09:27 +0000 UTC"
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2})(?: \S+)?$/.exec(value);
  const text = m === null ? value : `${m[1]}T${m[2]}${m[3]}:${m[4]}`;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
