/**
 * Private: strict JSON for layout metadata. Valid UTF-8, no byte-order mark, no duplicate object
 * keys (`JSON.parse` silently keeps the last one, and another reader may keep the first), no
 * trailing data, bounded nesting.
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "../errors.ts";

const MAX_DEPTH = 64;

/** Parses `raw` strictly, throwing `code` with `label` on any defect. */
export function parseStrictJson(
  raw: Uint8Array,
  label: string,
  code: ErrorCode = "ARCHIVE_INVALID",
): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
  } catch (cause) {
    throw new DangerzoneError(code, `${label} is not valid UTF-8`, { cause });
  }
  if (text.startsWith("\uFEFF")) throw new DangerzoneError(code, `${label} starts with a byte-order mark`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new DangerzoneError(code, `${label} is not valid JSON`, { cause });
  }
  const defect = findStructuralDefect(text);
  if (defect !== undefined) throw new DangerzoneError(code, `${label} ${defect}`);
  return value;
}

/**
 * Scans JSON text that `JSON.parse` already accepted for a key that appears twice in one object,
 * or nesting deeper than {@linkcode MAX_DEPTH}; returns the defect. Values are skipped.
 */
function findStructuralDefect(text: string): string | undefined {
  // Each open container: a Set of keys for objects, null for arrays.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "{") {
      stack.push(new Set());
      if (stack.length > MAX_DEPTH) return `nests deeper than ${MAX_DEPTH} levels`;
      expectKey = true;
      i++;
    } else if (c === "[") {
      stack.push(null);
      if (stack.length > MAX_DEPTH) return `nests deeper than ${MAX_DEPTH} levels`;
      expectKey = false;
      i++;
    } else if (c === "}" || c === "]") {
      stack.pop();
      expectKey = false;
      i++;
    } else if (c === ",") {
      expectKey = stack[stack.length - 1] instanceof Set;
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (expectKey) {
        const key: unknown = JSON.parse(text.slice(i, j + 1));
        const keys = stack[stack.length - 1];
        if (typeof key === "string" && keys instanceof Set) {
          if (keys.has(key)) return `has a duplicate key '${key.slice(0, 80)}'`;
          keys.add(key);
        }
        expectKey = false;
      }
      i = j + 1;
    } else {
      i++;
    }
  }
  return undefined;
}
