/**
 * RFC 8785 JSON Canonicalization Scheme (JCS), which Rekor uses for the bytes its Signed Entry
 * Timestamp signs.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { isJsonObject } from "../../strict_json.ts";

/**
 * Serialises a JSON value canonically (RFC 8785): object members sorted by the UTF-16 code units of
 * their names, no whitespace, ECMAScript number and string serialisation. Lone surrogates and
 * non-finite numbers are rejected.
 *
 * @example
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * canonicalJson({ b: 1, a: "x" }); // '{"a":"x","b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid("a non-finite number");
    return JSON.stringify(value);
  }
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw invalid("a string with a lone surrogate");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(",")}]`;
  if (isJsonObject(value)) {
    const keys = Object.keys(value).sort();
    const members = keys.map((k) => `${canonicalJson(k)}:${canonicalJson(value[k])}`);
    return `{${members.join(",")}}`;
  }
  throw invalid(`a ${typeof value}`);
}

function invalid(what: string): DangerzoneError {
  return new DangerzoneError("INTERNAL", `cannot canonicalise ${what} as JSON (RFC 8785)`);
}
