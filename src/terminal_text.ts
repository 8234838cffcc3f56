/**
 * The one place that makes text safe for a terminal. Attacker-controlled strings (registry error
 * bodies, a manifest's `mediaType`, unknown JSON keys, signature data, file names from archives,
 * runtime output) reach human lines, warnings and error messages; a raw `ESC ] 0; … BEL` or `ESC [2J`
 * in them would let a registry retitle the window or repaint the screen to read "verified OK". Every
 * control character is therefore shown escaped: C0 (except tab and, for multi-line human output,
 * newline), DEL, C1 (`U+0080`–`U+009F`, e.g. the 8-bit CSI `U+009B`), and the Unicode line separators
 * and bidirectional overrides that reorder what a terminal shows.
 *
 * JSON output stays exact: {@linkcode escapeJsonForTerminal} only rewrites those characters as JSON
 * `\uXXXX` escapes, which parse back to the very same strings.
 *
 * @module
 */

// C0 except \t and \n, DEL, C1, U+2028/2029, bidi embeddings/overrides/isolates.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_OR_NEWLINE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\u0000-\u0008\n\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// What JSON.stringify leaves raw (it escapes C0 itself).
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** How one unsafe character is shown: `\x1b` below U+0080, `\u009b` from there. */
function escapeChar(c: string): string {
  const n = c.charCodeAt(0);
  return n < 0x80 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
}

/**
 * Escapes every control character of `text` except tab, so it prints as one inert line (a newline
 * is escaped too: untrusted text cannot start a fake line of its own).
 *
 * @example
 * ```ts
 * import { safeForTerminal } from "./terminal_text.ts";
 * safeForTerminal("bad\x1b[2Jtype"); // "bad\\x1b[2Jtype"
 * ```
 */
export function safeForTerminal(text: string): string {
  return text.replace(UNSAFE_OR_NEWLINE, escapeChar);
}

/**
 * Like {@linkcode safeForTerminal} but keeps newlines: for a human output block of several lines
 * that the program itself laid out.
 */
export function safeLinesForTerminal(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/**
 * Rewrites, in a JSON text, the characters `JSON.stringify` leaves raw that a terminal would act on
 * (DEL, C1, line separators, bidi controls) as `\uXXXX` escapes. Inside JSON strings this is an exact
 * encoding of the same string; outside strings these characters cannot occur in `JSON.stringify`
 * output.
 *
 * @example
 * ```ts
 * import { escapeJsonForTerminal } from "./terminal_text.ts";
 * JSON.parse(escapeJsonForTerminal(JSON.stringify("a\u009bb"))); // "a\u009bb"
 * ```
 */
export function escapeJsonForTerminal(json: string): string {
  return json.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
