/**
 * A paranoid JSON parser for untrusted input (containers/image `paranoidUnmarshalJSONObject`):
 * duplicate keys, trailing data, non-finite numbers, lone surrogates in keys and excessive nesting
 * are rejected, where `JSON.parse` silently keeps the last duplicate. Objects are created without a
 * prototype, so a `__proto__` key is plain data. Also holds the small shape readers the payload,
 * signature, log-entry and layout parsers share.
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "./errors.ts";

/** Thrown for malformed JSON; callers convert it into their own {@linkcode DangerzoneError}. */
export class StrictJsonError extends Error {
  /** Creates a strict JSON error. */
  constructor(message: string) {
    super(message);
    this.name = "StrictJsonError";
  }
}

/** A parsed JSON object (null prototype). */
export type JsonObject = { [key: string]: unknown };

/** One element of a top-level JSON array with its exact source text. */
export interface JsonArrayElement {
  /** The parsed value. */
  readonly value: unknown;
  /** The element's exact text in the input, for byte-faithful re-writing. */
  readonly raw: string;
}

const MAX_DEPTH = 32;

/** Parses a JSON text, or UTF-8 bytes, strictly (see {@linkcode parseStrictJsonBytes}). */
export function parseStrictJsonInput(untrusted: string | Uint8Array): unknown {
  return typeof untrusted === "string" ? parseStrictJson(untrusted) : parseStrictJsonBytes(untrusted);
}

/** Size of a JSON input as given (characters of text, or bytes), for the size bound checked first. */
export function jsonInputSize(untrusted: string | Uint8Array): number {
  return typeof untrusted === "string" ? untrusted.length : untrusted.byteLength;
}

/** Parses UTF-8 bytes strictly (fatal decoding, a byte order mark is rejected). */
export function parseStrictJsonBytes(untrusted: Uint8Array): unknown {
  return parseStrictJson(decodeUtf8(untrusted));
}

/** Parses a JSON text strictly. */
export function parseStrictJson(untrusted: string): unknown {
  const p = new Parser(untrusted);
  p.ws();
  const value = p.value(0);
  p.ws();
  if (p.pos !== untrusted.length) throw new StrictJsonError(`trailing data at offset ${p.pos}`);
  return value;
}

/**
 * Parses a top-level JSON array strictly and returns each element with its exact source text.
 * `maxElements` bounds the work before anything else is parsed.
 */
export function parseStrictJsonArray(untrusted: string, maxElements: number): JsonArrayElement[] {
  const p = new Parser(untrusted);
  p.ws();
  p.expect("[");
  const out: JsonArrayElement[] = [];
  p.ws();
  if (p.peek() === "]") {
    p.pos++;
  } else {
    for (;;) {
      if (out.length >= maxElements) {
        throw new StrictJsonError(`more than ${maxElements} elements`);
      }
      p.ws();
      const start = p.pos;
      const value = p.value(1);
      out.push({ value, raw: untrusted.slice(start, p.pos) });
      p.ws();
      const c = p.next();
      if (c === "]") break;
      if (c !== ",") throw new StrictJsonError(`expected ',' or ']' at offset ${p.pos - 1}`);
    }
  }
  p.ws();
  if (p.pos !== untrusted.length) throw new StrictJsonError(`trailing data at offset ${p.pos}`);
  return out;
}

/** Decodes UTF-8 strictly; invalid sequences and a byte order mark are errors. */
export function decodeUtf8(untrusted: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(untrusted);
  } catch (cause) {
    throw new StrictJsonError(`invalid UTF-8 (${String(cause)})`);
  }
  if (text.charCodeAt(0) === 0xfeff) throw new StrictJsonError("byte order mark before JSON");
  return text;
}

class Parser {
  pos = 0;
  constructor(readonly text: string) {}

  peek(): string {
    return this.text.charAt(this.pos);
  }

  next(): string {
    if (this.pos >= this.text.length) throw new StrictJsonError("unexpected end of JSON");
    return this.text.charAt(this.pos++);
  }

  expect(c: string): void {
    if (this.next() !== c) throw new StrictJsonError(`expected '${c}' at offset ${this.pos - 1}`);
  }

  ws(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new StrictJsonError(`nesting deeper than ${MAX_DEPTH}`);
    const c = this.peek();
    switch (c) {
      case "{":
        return this.object(depth);
      case "[":
        return this.array(depth);
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      default:
        if (c === "-" || (c >= "0" && c <= "9")) return this.number();
        throw new StrictJsonError(`unexpected character at offset ${this.pos}`);
    }
  }

  literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) throw new StrictJsonError(`invalid literal at ${this.pos}`);
    this.pos += word.length;
    return value;
  }

  number(): number {
    const re = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (m === null) throw new StrictJsonError(`invalid number at offset ${this.pos}`);
    this.pos += m[0].length;
    const n = Number(m[0]);
    if (!Number.isFinite(n)) throw new StrictJsonError(`number out of range at offset ${this.pos}`);
    return n;
  }

  string(): string {
    this.expect('"');
    let out = "";
    let chunkStart = this.pos;
    for (;;) {
      const code = this.text.charCodeAt(this.pos);
      if (Number.isNaN(code)) throw new StrictJsonError("unterminated string");
      if (code === 0x22) {
        out += this.text.slice(chunkStart, this.pos);
        this.pos++;
        return out;
      }
      if (code < 0x20) throw new StrictJsonError(`control character in string at offset ${this.pos}`);
      if (code === 0x5c) {
        out += this.text.slice(chunkStart, this.pos);
        this.pos++;
        const e = this.next();
        switch (e) {
          case '"':
          case "\\":
          case "/":
            out += e;
            break;
          case "b":
            out += "\b";
            break;
          case "f":
            out += "\f";
            break;
          case "n":
            out += "\n";
            break;
          case "r":
            out += "\r";
            break;
          case "t":
            out += "\t";
            break;
          case "u": {
            const hex = this.text.slice(this.pos, this.pos + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new StrictJsonError(`invalid \\u escape at ${this.pos}`);
            out += String.fromCharCode(parseInt(hex, 16));
            this.pos += 4;
            break;
          }
          default:
            throw new StrictJsonError(`invalid escape at offset ${this.pos - 1}`);
        }
        chunkStart = this.pos;
        continue;
      }
      this.pos++;
    }
  }

  array(depth: number): unknown[] {
    this.expect("[");
    const out: unknown[] = [];
    this.ws();
    if (this.peek() === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.next();
      if (c === "]") return out;
      if (c !== ",") throw new StrictJsonError(`expected ',' or ']' at offset ${this.pos - 1}`);
    }
  }

  object(depth: number): JsonObject {
    this.expect("{");
    const out: JsonObject = Object.create(null);
    this.ws();
    if (this.peek() === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.peek() !== '"') throw new StrictJsonError(`expected a key at offset ${this.pos}`);
      const key = this.string();
      if (!key.isWellFormed()) throw new StrictJsonError("lone surrogate in an object key");
      if (Object.hasOwn(out, key)) throw new StrictJsonError(`duplicate key "${key.slice(0, 40)}"`);
      this.ws();
      this.expect(":");
      this.ws();
      Object.defineProperty(out, key, {
        value: this.value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.ws();
      const c = this.next();
      if (c === "}") return out;
      if (c !== ",") throw new StrictJsonError(`expected ',' or '}' at offset ${this.pos - 1}`);
    }
  }
}

/** True when `value` is a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Shape readers that report a {@linkcode DangerzoneError} with the caller's code and rule text. */
export class ShapeReader {
  /** Creates a reader whose errors carry `code` and start with `context`. */
  constructor(readonly code: ErrorCode, readonly context: string) {}

  /** Fails with the reader's code. */
  fail(detail: string, cause?: unknown): never {
    throw new DangerzoneError(this.code, `${this.context}: ${detail}`, cause === undefined ? {} : { cause });
  }

  /** A JSON object whose keys are all in `required` or `optional`, with every `required` key present. */
  object(
    value: unknown,
    what: string,
    required: readonly string[],
    optional: readonly string[] = [],
  ): JsonObject {
    if (!isJsonObject(value)) this.fail(`${what} is not a JSON object`);
    const obj = value;
    for (const key of Object.keys(obj)) {
      if (!required.includes(key) && !optional.includes(key)) {
        this.fail(`${what} has an unknown key "${key.slice(0, 40)}"`);
      }
    }
    for (const key of required) {
      if (!Object.hasOwn(obj, key)) this.fail(`${what} lacks "${key}"`);
    }
    return obj;
  }

  /** A string. */
  string(value: unknown, what: string): string {
    if (typeof value !== "string") this.fail(`${what} is not a string`);
    return value;
  }

  /** A non-negative safe integer (no fraction, no exponent overflow). */
  integer(value: unknown, what: string): number {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      this.fail(`${what} is not a non-negative integer`);
    }
    return value;
  }
}

/**
 * Parses UTF-8 bytes strictly and reports any defect as one {@linkcode DangerzoneError} with `code`,
 * naming the input by `label` (e.g. "index.json").
 */
export function parseStrictJsonAs(
  untrusted: Uint8Array,
  label: string,
  code: ErrorCode = "ARCHIVE_INVALID",
): unknown {
  try {
    return parseStrictJsonBytes(untrusted);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new DangerzoneError(code, `${label} is not valid strict JSON: ${reason}`, { cause });
  }
}
