import assert from "node:assert/strict";
import { canonicalJson } from "../../../src/sigstore/formats/canonical_json.ts";
import { DangerzoneError } from "../../../src/errors.ts";

Deno.test("canonicalJson() follows RFC 8785 (sorting by UTF-16 code units, number and string forms)", () => {
  // RFC 8785 section 3.2.3 sorting example (subset) and section 3.2.2.3 numbers.
  const value = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew",
    "1": "One",
    "\ud83d\ude00": "Emoji",
    "\u0080": "Control",
  };
  assert.equal(
    canonicalJson(value),
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji","\ufb33":"Hebrew"}',
  );
  assert.equal(
    canonicalJson([1e21, 1e-7, -0, 0.1, 333333333.3333333, 4.5]),
    "[1e+21,1e-7,0,0.1,333333333.3333333,4.5]",
  );
  assert.equal(canonicalJson({ b: [true, null], a: '\u001f"' }), '{"a":"\\u001f\\"","b":[true,null]}');
});

Deno.test("canonicalJson() of a Rekor SET payload matches what cosign signs", () => {
  assert.equal(
    canonicalJson({ logIndex: 5, logID: "ab", integratedTime: 7, body: "eyJ9" }),
    '{"body":"eyJ9","integratedTime":7,"logID":"ab","logIndex":5}',
  );
});

Deno.test("canonicalJson() refuses non-finite numbers and lone surrogates", () => {
  for (const v of [NaN, Infinity, "\ud800", { k: undefined }]) {
    assert.throws(
      () => canonicalJson(v),
      (e: unknown) => e instanceof DangerzoneError && e.code === "INTERNAL",
    );
  }
});
