// deno-lint-ignore-file no-console -- a benchmark script prints its numbers
/**
 * Benchmark: verify 1,000 stored signatures (target < 1 s). Makes 1,000 cosign-format signatures
 * with a test publisher key and a test Rekor key, stores them in a temporary signature store the way
 * `store-signatures` does, then times reading the store file back and verifying every signature
 * through the full pipeline (signature, payload, SET, entry binding).
 *
 * Usage: bash scripts/bench-verify
 */
import { parseDigest } from "../src/oci/digest.ts";
import { parseSignatureList, serializeSignatureList } from "../src/sigstore/cosign/cosign_signature.ts";
import { parsePublicKeyPem } from "../src/sigstore/crypto/keys.ts";
import { requireVerified, verifyCosignSignatures } from "../src/sigstore/cosign/policy.ts";
import { RekorKeyring } from "../src/sigstore/crypto/rekor_keys.ts";
import { SignatureStore } from "../src/store/signature_store.ts";
import { writeFileAtomic } from "../src/store/_atomic_write.ts";
import { createTestKey, signImage } from "../tests/_helpers/cosign_signer.ts";

const COUNT = 1000;
const enc = new TextEncoder();
const digest = parseDigest(`sha256:${"ab".repeat(32)}`);
const publisher = createTestKey();
const rekor = createTestKey();
const publicKey = await parsePublicKeyPem(enc.encode(publisher.publicPem));
const rekorKeys = new RekorKeyring([{
  key: await parsePublicKeyPem(enc.encode(rekor.publicPem)),
  source: "bench",
  validFrom: null,
  validUntil: null,
}]);

const dir = await Deno.makeTempDir({ prefix: "bench-verify-" });
try {
  const entries = Array.from(
    { length: COUNT },
    (_, i) =>
      signImage({ digest, reference: "ghcr.io/example/sandbox", publisher, rekor, logIndex: 1000 + i }).entry,
  );
  const store = new SignatureStore(dir);
  const keyFileSha256 = publicKey.fileSha256 ?? "";
  const path = store.pathFor(keyFileSha256, digest);
  await writeFileAtomic(path, serializeSignatureList(entries.map((e) => ({ raw: JSON.stringify(e) }))));

  const runs: number[] = [];
  for (let run = 0; run < 5; run++) {
    const t0 = performance.now();
    const bytes = await store.readUntrusted(keyFileSha256, digest);
    if (bytes === null) throw new Error("store file missing");
    const verdict = await verifyCosignSignatures(parseSignatureList(bytes), { publicKey, rekorKeys }, {
      digest,
    });
    const verified = requireVerified(verdict);
    const ms = performance.now() - t0;
    if (verified.length !== COUNT) throw new Error(`only ${verified.length} of ${COUNT} verified`);
    runs.push(ms);
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const first = runs[0] ?? NaN;
  console.log(
    `verify ${COUNT} stored signatures: first run ${first.toFixed(0)} ms, median of ${runs.length} ${
      median.toFixed(0)
    } ms (target < 1000 ms) ${median < 1000 ? "OK" : "TOO SLOW"}`,
  );
  if (median >= 1000) Deno.exitCode = 1;
} finally {
  await Deno.remove(dir, { recursive: true });
}
