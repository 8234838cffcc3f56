/** `parseBundle()`: shape checks before meaning, every invalid path in one BUNDLE_INVALID error. */
import assert from "node:assert/strict";
import { isDangerzoneError } from "../../../src/errors.ts";
import { bundleFromObject, MAX_BUNDLE_BYTES, parseBundle } from "../../../src/sigstore/formats/bundle.ts";
import { bundleJson, CASES_DIR, conformanceCases } from "../crypto/_conformance_cases.ts";

// deno-lint-ignore no-explicit-any
type Loose = any;

function refuses(input: string | Uint8Array | Record<string, unknown>, message?: RegExp): void {
  const run = () =>
    typeof input === "string" || input instanceof Uint8Array ? parseBundle(input) : bundleFromObject(input);
  assert.throws(run, (e: unknown) => {
    assert.ok(isDangerzoneError(e, "BUNDLE_INVALID"), String(e));
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

Deno.test("parseBundle() accepts every well-formed conformance bundle (v0.1-v0.3, DSSE, Rekor v2, TSA)", () => {
  const skip = new Set(["bundle-malformed-json_fail", "rekor2-no-inclusion-proof_fail"]);
  let parsed = 0;
  for (const c of conformanceCases()) {
    if (skip.has(c.name)) continue;
    const bundle = parseBundle(Deno.readFileSync(c.bundleFile));
    assert.ok(bundle.verificationMaterial.tlogEntries.length >= 1, c.name);
    parsed++;
  }
  assert.equal(parsed, 18);
});

Deno.test("parseBundle() refuses truncated JSON and oversized input", () => {
  refuses(Deno.readFileSync(`${CASES_DIR}bundle-malformed-json_fail/bundle.sigstore.json`), /JSON/);
  refuses(new Uint8Array(MAX_BUNDLE_BYTES + 1), /larger/);
  refuses("[]");
});

Deno.test("parseBundle() lists every invalid path", () => {
  const b: Loose = bundleJson("happy-path-v0.3");
  b.mediaType = "application/vnd.dev.sigstore.bundle+json;version=0.9";
  b.messageSignature.signature = 12;
  b.verificationMaterial.tlogEntries[0].logIndex = "-1";
  b.verificationMaterial.tlogEntries[0].inclusionProof.hashes[0] = "%%";
  b.extra = true;
  for (
    const path of [
      /mediaType/,
      /extra \(unknown field\)/,
      /messageSignature\.signature/,
      /tlogEntries\[0\]\.logIndex/,
      /tlogEntries\[0\]\.inclusionProof\.hashes\[0\]/,
    ]
  ) refuses(b, path);
});

Deno.test("parseBundle() requires exactly one content and one key material", () => {
  const b: Loose = bundleJson("happy-path-v0.3");
  b.dsseEnvelope = bundleJson("happy-path-intoto-in-dsse-v3")["dsseEnvelope"];
  refuses(b, /exactly one/);
  const c: Loose = bundleJson("happy-path-v0.3");
  c.verificationMaterial.publicKey = { hint: "x" };
  refuses(c, /exactly one/);
  const d: Loose = bundleJson("happy-path-intoto-in-dsse-v3");
  d.dsseEnvelope.signatures.push(d.dsseEnvelope.signatures[0]);
  refuses(d, /dsseEnvelope\.signatures/);
});

Deno.test("parseBundle() enforces the per-version proof rules", () => {
  refuses(
    Deno.readFileSync(`${CASES_DIR}rekor2-no-inclusion-proof_fail/bundle.sigstore.json`),
    /inclusionProof/,
  );
  const b: Loose = bundleJson("happy-path-v0.1");
  delete b.verificationMaterial.tlogEntries[0].inclusionPromise;
  refuses(b, /inclusionPromise \(required in v0\.1 bundles\)/);
  const c: Loose = bundleJson("happy-path-v0.3");
  delete c.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint;
  refuses(c, /checkpoint/);
  const d: Loose = bundleJson("happy-path-v0.1");
  d.mediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";
  refuses(d, /x509CertificateChain \(v0\.3 bundles carry a single certificate\)/);
});

Deno.test("parseBundle() drops a v0.1 inclusion proof that has no signed checkpoint", () => {
  const bundle = parseBundle(
    Deno.readFileSync(`${CASES_DIR}bundle-with-root-cert_fail/bundle.sigstore.json`),
  );
  const entry = bundle.verificationMaterial.tlogEntries[0];
  assert.equal(entry?.inclusionProof, undefined);
  assert.ok(entry?.inclusionPromise);
});
