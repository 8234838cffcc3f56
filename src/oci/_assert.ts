/**
 * Private shape checks shared by the OCI parsers. Every failure is a {@linkcode DangerzoneError}
 * with the code the caller chose, naming the JSON path that was wrong.
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "../errors.ts";

/** A JSON object (not an array, not null). */
export type JsonObject = Record<string, unknown>;

/** True when `x` is a plain JSON object. */
export function isObject(x: unknown): x is JsonObject {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Throws `code` naming `path` as wrong. */
export function fail(code: ErrorCode, path: string, why: string): never {
  throw new DangerzoneError(code, `${path}: ${why}`);
}

/** Returns the optional string field `key` of `obj`, or throws. */
export function optionalString(
  code: ErrorCode,
  obj: JsonObject,
  key: string,
  path: string,
): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") fail(code, `${path}.${key}`, "must be a string");
  return v;
}

/** Returns the string-to-string map field `key` of `obj`, or throws. */
export function optionalStringMap(
  code: ErrorCode,
  obj: JsonObject,
  key: string,
  path: string,
): Record<string, string> | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (!isObject(v)) fail(code, `${path}.${key}`, "must be an object of strings");
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== "string") fail(code, `${path}.${key}.${k}`, "must be a string");
    out[k] = val;
  }
  return out;
}
