import assert from "node:assert/strict";
import { DangerzoneError } from "../../../src/errors.ts";
import {
  decodeCosignSignature,
  MAX_SIGNATURE_LIST_BYTES,
  MAX_SIGNATURES,
  parseSignatureList,
  serializeSignatureList,
  signatureEntryFromLayer,
} from "../../../src/sigstore/cosign/cosign_signature.ts";
import { readFileBounded } from "../../../src/read_bounded.ts";

const VECTORS = new URL("../../testdata/vectors/", import.meta.url);
const enc = new TextEncoder();
const isCode = (code: string) => (e: unknown) => e instanceof DangerzoneError && e.code === code;

Deno.test("parseSignatureList() and serializeSignatureList() round-trip a Dangerzone store file byte for byte", async () => {
  const path = new URL(
    "dangerzone/tests/assets/signatures/valid/95b432860b272938246b10e1cfc89a24e1db352b3aebaa799c4284c42c46bd95/fa948726aac29a6ac49f01ec8fbbac18522b35b2491fdf716236a0b3502a2ca7.json",
    VECTORS,
  );
  const bytes = await Deno.readFile(path);
  const entries = parseSignatureList(bytes);
  assert.equal(entries.length, 3);
  assert.deepEqual(serializeSignatureList(entries), bytes);
});

Deno.test("parseSignatureList() CVE-2023-46737: more than 1,000 signatures are refused", () => {
  const list = `[${Array(MAX_SIGNATURES + 1).fill("{}").join(",")}]`;
  assert.throws(
    () => parseSignatureList(enc.encode(list)),
    (e: unknown) => isCode("SIGNATURE_INVALID")(e) && /rule 7/.test(String(e)),
  );
  assert.equal(
    parseSignatureList(enc.encode(`[${Array(MAX_SIGNATURES).fill("{}").join(",")}]`)).length,
    MAX_SIGNATURES,
  );
});

Deno.test("readFileBounded() CVE-2023-46737: an endless file stops at the limit", async () => {
  await assert.rejects(
    readFileBounded("/dev/zero", {
      limit: MAX_SIGNATURE_LIST_BYTES,
      tooLargeCode: "SIGNATURE_INVALID",
      what: "signature file",
    }),
    isCode("SIGNATURE_INVALID"),
  );
});

Deno.test("parseSignatureList() refuses non-lists, duplicate keys and trailing data", () => {
  for (const text of ["{}", '[{"a":1,"a":2}]', "[] []", "", "\ufeff[]"]) {
    assert.throws(() => parseSignatureList(enc.encode(text)), isCode("SIGNATURE_INVALID"), text);
  }
});

Deno.test("decodeCosignSignature() refuses non-canonical base64 in every field", () => {
  const good = { Base64Signature: "AAAA", Payload: "e30=", Bundle: null };
  for (
    const [change, code] of [
      [{ Base64Signature: "AA AA" }, "SIGNATURE_INVALID"],
      [{ Base64Signature: "AAB=" }, "SIGNATURE_INVALID"],
      [{ Payload: "e30" }, "PAYLOAD_INVALID"],
      [{ Payload: "Invalid base64 payload" }, "PAYLOAD_INVALID"],
      [{
        Bundle: {
          SignedEntryTimestamp: "!",
          Payload: { body: "", integratedTime: 1, logIndex: 1, logID: "a".repeat(64) },
        },
      }, "TLOG_SET_INVALID"],
      [{
        Bundle: {
          SignedEntryTimestamp: "AAAA",
          Payload: { body: "", integratedTime: 1.5, logIndex: 1, logID: "a".repeat(64) },
        },
      }, "TLOG_SET_INVALID"],
      [{
        Bundle: {
          SignedEntryTimestamp: "AAAA",
          Payload: { body: "", integratedTime: 1, logIndex: -1, logID: "a".repeat(64) },
        },
      }, "TLOG_SET_INVALID"],
      [{
        Bundle: {
          SignedEntryTimestamp: "AAAA",
          Payload: { body: "", integratedTime: 1, logIndex: 1, logID: "A".repeat(64) },
        },
      }, "TLOG_SET_INVALID"],
    ] as const
  ) {
    const [entry] = parseSignatureList(enc.encode(JSON.stringify([{ ...good, ...change }])));
    assert.ok(entry !== undefined);
    assert.throws(() => decodeCosignSignature(entry), isCode(code), JSON.stringify(change));
  }
});

Deno.test("signatureEntryFromLayer() rebuilds the cosign download form from .sig annotations", () => {
  const payload = enc.encode("{}");
  const entry = signatureEntryFromLayer({
    untrustedSignatureAnnotation: "AAAA",
    untrustedBundleAnnotation:
      '{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","integratedTime":1,"logIndex":2,"logID":"' +
      "a".repeat(64) + '"}}',
    untrustedPayload: payload,
  }, 3);
  assert.equal(entry.index, 3);
  const decoded = decodeCosignSignature(entry);
  assert.deepEqual(decoded.untrustedPayload, payload);
  assert.equal(decoded.untrustedTlogEntry?.untrustedLogIndex, 2);
  const noBundle = signatureEntryFromLayer({
    untrustedSignatureAnnotation: "AAAA",
    untrustedPayload: payload,
  }, 0);
  assert.equal(decodeCosignSignature(noBundle).untrustedTlogEntry, null);
  const badBundle = signatureEntryFromLayer({
    untrustedSignatureAnnotation: "AAAA",
    untrustedBundleAnnotation: "{",
    untrustedPayload: payload,
  }, 0);
  assert.throws(() => decodeCosignSignature(badBundle), isCode("TLOG_SET_INVALID"));
});
