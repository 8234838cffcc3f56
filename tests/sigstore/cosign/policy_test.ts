import assert from "node:assert/strict";
import { DangerzoneError } from "../../../src/errors.ts";
import {
  requireVerified,
  verifiedLogPositions,
  verifyCosignSignatures,
} from "../../../src/sigstore/cosign/policy.ts";
import { craftEntry, entriesOf, world } from "../_craft.ts";

Deno.test("verifyCosignSignatures() trusts the image when one signature verifies and reports the others", async () => {
  const w = await world();
  const entries = entriesOf(
    await craftEntry({ noBundle: true }),
    await craftEntry({ logIndex: 7 }),
    await craftEntry({ digest: `sha256:${"cd".repeat(32)}`, logIndex: 99 }),
  );
  const verdict = await verifyCosignSignatures(entries, w.trust, { digest: w.digest });
  assert.equal(verdict.verified.length, 1);
  assert.deepEqual(
    verdict.results.map((r) => "error" in r ? r.error.code : "ok"),
    ["TLOG_MISSING", "ok", "POLICY_DIGEST_MISMATCH"],
  );
  assert.equal(requireVerified(verdict).length, 1);
  // Anti-rollback input: only the verified signature's index counts, not the unverified 99.
  assert.deepEqual(verifiedLogPositions(verdict.verified), [{
    logId: w.rekor.spkiSha256,
    logIndex: 7,
    integratedTime: 1700000000,
  }]);
});

Deno.test("requireVerified() refuses an empty list with SIGNATURE_MISSING", async () => {
  const w = await world();
  const verdict = await verifyCosignSignatures([], w.trust, { digest: w.digest });
  assert.throws(
    () => requireVerified(verdict),
    (e: unknown) => e instanceof DangerzoneError && e.code === "SIGNATURE_MISSING",
  );
});

Deno.test("requireVerified() names the first failing rule in one line when nothing verifies", async () => {
  const w = await world();
  const entries = entriesOf(await craftEntry({ noBundle: true }), await craftEntry({ noBundle: true }));
  const verdict = await verifyCosignSignatures(entries, w.trust, { digest: w.digest });
  assert.throws(
    () => requireVerified(verdict),
    (e: unknown) =>
      e instanceof DangerzoneError && e.code === "TLOG_MISSING" &&
      /^none of the 2 signatures verified; signature 1: rule 3/.test(e.message),
  );
});

Deno.test("verifiedLogPositions() keeps the highest index per log", async () => {
  const w = await world();
  const entries = entriesOf(
    await craftEntry({ logIndex: 5 }),
    await craftEntry({ logIndex: 9, integratedTime: 1700000100 }),
  );
  const verdict = await verifyCosignSignatures(entries, w.trust, { digest: w.digest });
  assert.deepEqual(verifiedLogPositions(verdict.verified), [{
    logId: w.rekor.spkiSha256,
    logIndex: 9,
    integratedTime: 1700000100,
  }]);
});
