/**
 * Private: a collector for shape checks of untrusted protobuf-JSON documents (Sigstore bundles and
 * trusted roots). Every check records the path of an invalid field and carries on, so one error can
 * list every invalid path (as `@sigstore/bundle`'s `assertBundle` does).
 *
 * @module
 */

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const BASE64URL_RE = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;
const UINT64_RE = /^(?:0|[1-9][0-9]{0,19})$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** A plain JSON object. */
export type JsonObject = { readonly [key: string]: unknown };

/** Collects the paths of invalid fields of one document. */
export class ShapeChecker {
  /** Every invalid path found so far, in document order. */
  readonly problems: string[] = [];

  /** Records an invalid path. */
  fail(path: string): undefined {
    this.problems.push(path);
    return undefined;
  }

  /** An object whose keys are all in `allowed` (unknown keys are reported as invalid paths). */
  object(value: unknown, path: string, allowed: readonly string[]): JsonObject | undefined {
    if (!isJsonObject(value)) return this.fail(path);
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail(`${path === "" ? "" : `${path}.`}${key} (unknown field)`);
    }
    return value;
  }

  /** An array (optionally with at least `min` items). */
  array(value: unknown, path: string, min = 0): readonly unknown[] | undefined {
    if (!Array.isArray(value) || value.length < min) return this.fail(path);
    return value;
  }

  /** A string (non-empty unless `allowEmpty`). */
  string(value: unknown, path: string, allowEmpty = false): string | undefined {
    if (typeof value !== "string" || (!allowEmpty && value.length === 0)) return this.fail(path);
    return value;
  }

  /** One of the given strings. */
  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T | undefined {
    for (const candidate of allowed) if (candidate === value) return candidate;
    return this.fail(path);
  }

  /** Base64 (standard or URL-safe alphabet, as protobuf JSON allows) decoding to non-empty bytes. */
  bytes(value: unknown, path: string): Uint8Array | undefined {
    if (typeof value !== "string" || value.length === 0) return this.fail(path);
    let standard = value;
    if (!BASE64_RE.test(value)) {
      if (!BASE64URL_RE.test(value)) return this.fail(path);
      standard = value.replaceAll("-", "+").replaceAll("_", "/");
    }
    const padded = standard + "=".repeat((4 - (standard.length % 4)) % 4);
    try {
      const binary = atob(padded);
      const out = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
      return out.length === 0 ? this.fail(path) : out;
    } catch {
      return this.fail(path);
    }
  }

  /** A protobuf-JSON uint64/int64 (a decimal string, or a safe non-negative integer number). */
  uint64(value: unknown, path: string): bigint | undefined {
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
    if (typeof value === "string" && UINT64_RE.test(value)) return BigInt(value);
    return this.fail(path);
  }

  /** An RFC 3339 timestamp. */
  time(value: unknown, path: string): Date | undefined {
    if (typeof value !== "string" || !RFC3339_RE.test(value)) return this.fail(path);
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? this.fail(path) : date;
  }
}

/** True for a non-null, non-array object. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Formats the problems of a checker for a one-line message (at most `max` paths). */
export function formatProblems(problems: readonly string[], max = 8): string {
  const shown = problems.slice(0, max).join(", ");
  return problems.length > max ? `${shown} and ${problems.length - max} more` : shown;
}
