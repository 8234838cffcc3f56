import assert from "node:assert/strict";
import { parseStrictJson, parseStrictJsonArray, StrictJsonError } from "../src/strict_json.ts";

Deno.test("parseStrictJson() refuses what JSON.parse lets through", () => {
  for (
    const text of [
      '{"a":1,"a":2}',
      '{"a":1} x',
      "[1,]",
      "01",
      "1e999",
      '"\u0001"',
      "{'a':1}",
      "[".repeat(40) + "]".repeat(40),
    ]
  ) {
    assert.throws(() => parseStrictJson(text), StrictJsonError, text.slice(0, 20));
  }
});

Deno.test("parseStrictJson() parses ordinary JSON like JSON.parse and keeps __proto__ as data", () => {
  const text = '{"a":[1,2.5,-3e2,true,false,null],"b":"\\u00e9\\n\\"","c":{}}';
  assert.deepEqual(JSON.parse(JSON.stringify(parseStrictJson(text))), JSON.parse(text));
  const v = parseStrictJson('{"__proto__":{"polluted":1}}');
  assert.equal(Object.getPrototypeOf(v), null);
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
});

Deno.test("parseStrictJsonArray() returns each element's exact text and bounds the count", () => {
  const els = parseStrictJsonArray('[ {"a": 1} ,\n{"b":[2]}]', 10);
  assert.deepEqual(els.map((e) => e.raw), ['{"a": 1}', '{"b":[2]}']);
  assert.throws(() => parseStrictJsonArray("[1,2,3]", 2), /more than 2/);
  assert.throws(() => parseStrictJsonArray("{}", 2), StrictJsonError);
});
