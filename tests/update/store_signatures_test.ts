/**
 * `storeSignatures()`: only verified signatures are written, under the lock; a held lock is `LOCK_HELD`
 * with nothing written; a state that moved meanwhile is re-checked under the lock (`ROLLBACK`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import { StoreLock } from "../../src/store/lock.ts";
import { storeSignatures } from "../../src/update/store_signatures.ts";
import { createTestKey, signatureManifest, signImage } from "../_helpers/cosign_signer.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startSignedRegistry } from "./_fixture.ts";

const REPO = "sandbox/app";

Deno.test("storeSignatures() stores only the verified signatures and refuses a held lock", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("store-lib");
  const img = await sr.pushBusybox(REPO, "latest", "lib");
  // One good signature and one by another key: only the good one is stored.
  const good = signImage({
    digest: img.digest,
    reference: `${sr.reg.host}/${REPO}`,
    publisher: sr.publisher,
    rekor: sr.rekor,
    logIndex: 20,
  });
  const stranger = signImage({
    digest: img.digest,
    reference: `${sr.reg.host}/${REPO}`,
    publisher: createTestKey(),
    rekor: sr.rekor,
    logIndex: 99,
  });
  await sr.pushSignatureManifest(REPO, signatureManifest(img.digest, [stranger, good]));
  using ctx = await sr.context(`${sr.reg.host}/${REPO}:latest`, data.path);

  await t.step("a held lock: LOCK_HELD and nothing written", async () => {
    const lock = await StoreLock.acquire(data.path);
    try {
      await assert.rejects(storeSignatures(ctx), (e) => isDangerzoneError(e, "LOCK_HELD"));
    } finally {
      await lock.release();
    }
    await assert.rejects(Deno.stat(join(data.path, "signatures")), Deno.errors.NotFound);
  });

  await t.step("only the verified signature is stored; the stranger's index does not count", async () => {
    const stored = await storeSignatures(ctx);
    const list: unknown = JSON.parse(await Deno.readTextFile(stored.path));
    assert.deepEqual(list, [good.entry]);
    assert.equal(await Deno.readTextFile(stored.lastLogIndexPath), "20");
    assert.equal(stored.remote.reports.length, 2);
    assert.equal(stored.remote.reports[0]?.verdict, "rejected");
    assert.equal(stored.remote.reports[0]?.error?.code, "SIGNATURE_INVALID");
  });

  await t.step("an older image after the state moved: ROLLBACK, the stored file is unchanged", async () => {
    const before = await Deno.readTextFile(join(data.path, "signatures", "last_log_index"));
    const old = await sr.pushBusybox(REPO, "latest", "older");
    await sr.sign(old.digest, { repository: REPO, logIndex: 10 });
    await assert.rejects(storeSignatures(ctx), (e) => isDangerzoneError(e, "ROLLBACK"));
    assert.equal(await Deno.readTextFile(join(data.path, "signatures", "last_log_index")), before);
  });
});
