import assert from "node:assert/strict";
import { escapeJsonForTerminal, safeForTerminal, safeLinesForTerminal } from "../src/terminal_text.ts";

const ATTACK = "\x1b]0;pwned\x07\x1b[2J\u009b31mOK\x7f\u202eevil\r\n";

Deno.test("safeForTerminal() escapes C0, ESC, BEL, DEL, C1, CR, LF and bidi overrides; keeps tab and text", () => {
  assert.equal(
    safeForTerminal(ATTACK),
    "\\x1b]0;pwned\\x07\\x1b[2J\\u009b31mOK\\x7f\\u202eevil\\x0d\\x0a",
  );
  assert.equal(safeForTerminal("a\tb é ✓ 日本"), "a\tb é ✓ 日本");
  assert.equal(safeForTerminal("\u0000\u0085\u2028"), "\\x00\\u0085\\u2028");
});

Deno.test("safeLinesForTerminal() keeps newlines but escapes everything else", () => {
  assert.equal(safeLinesForTerminal("one\ntwo\x1b[2J"), "one\ntwo\\x1b[2J");
});

Deno.test("escapeJsonForTerminal() leaves no DEL/C1/bidi raw and parses back to the exact strings", () => {
  const doc = { message: ATTACK, [`k\u009b\x1b`]: "\u2029\u007f" };
  const text = escapeJsonForTerminal(JSON.stringify(doc, null, 2));
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
  assert.deepEqual(JSON.parse(text), doc);
});
