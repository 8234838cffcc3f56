import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { verifyCosignSignatures } from "../../src/sigstore/cosign/policy.ts";
import type { VerifiedCosignSignature } from "../../src/sigstore/cosign/verifier.ts";
import { checkRollback, LogStateStore, needsInstalledTime } from "../../src/store/log_state.ts";
import {
  type VerifiedBundleSignature,
  verifyCosignBundleSignature,
} from "../../src/sigstore/cosign/bundle_signature.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { signImageBundle, TestRekorLog, testTrustedRoot } from "../_helpers/sigstore_signer.ts";
import { craftEntry, createTestKey, entriesOf, trustFor, world } from "../sigstore/_craft.ts";

async function verified(
  ...opts: Parameters<typeof craftEntry>[0][]
): Promise<readonly VerifiedCosignSignature[]> {
  const w = await world();
  const entries = entriesOf(...await Promise.all(opts.map((o) => craftEntry(o))));
  return (await verifyCosignSignatures(entries, w.trust, { digest: w.digest })).verified;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const isRollback = (e: unknown) => e instanceof DangerzoneError && e.code === "ROLLBACK";

Deno.test("LogStateStore.check() refuses a lower index of the same log (ROLLBACK), equal is up to date", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const state = new LogStateStore(dir, { legacyLogId: w.rekor.spkiSha256 });
    assert.equal(await state.check(await verified({ logIndex: 10 })), "newer");
    await state.record(await verified({ logIndex: 10 }));
    assert.equal(await Deno.readTextFile(state.lastLogIndexPath), "10");
    assert.equal(await state.check(await verified({ logIndex: 10 })), "up-to-date");
    assert.equal(await state.check(await verified({ logIndex: 11 })), "newer");
    await assert.rejects(state.check(await verified({ logIndex: 9 })), isRollback);
  });
});

Deno.test("LogStateStore.check() honours Dangerzone's last_log_index when our state is absent", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    await Deno.mkdir(`${dir}/signatures`);
    await Deno.writeTextFile(`${dir}/signatures/last_log_index`, "500");
    const state = new LogStateStore(dir, { legacyLogId: w.rekor.spkiSha256 });
    await assert.rejects(state.check(await verified({ logIndex: 499 })), isRollback);
    assert.equal(await state.check(await verified({ logIndex: 500 })), "up-to-date");
  });
});

Deno.test("LogStateStore.check() keeps indexes per log: a new shard starting at 0 is newer only if later in time", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const shard = createTestKey();
    const trust = await trustFor(w.publisher, w.rekor, shard);
    const state = new LogStateStore(dir, { legacyLogId: w.rekor.spkiSha256 });
    await state.record(await verified({ logIndex: 1000, integratedTime: 1700000000 }));
    const inShard = async (integratedTime: number) =>
      (await verifyCosignSignatures(
        entriesOf(await craftEntry({ setSigner: shard, logIndex: 0, integratedTime })),
        trust,
        {
          digest: w.digest,
        },
      )).verified;
    assert.equal(await state.check(await inShard(1700000500)), "newer");
    await assert.rejects(state.check(await inShard(1600000000)), isRollback);
    await state.record(await inShard(1700000500));
    const read = await state.read();
    assert.equal(read.logs.get(shard.spkiSha256)?.logIndex, 0);
    assert.equal(read.logs.get(w.rekor.spkiSha256)?.logIndex, 1000);
    // last_log_index stays about the legacy log.
    assert.equal(await Deno.readTextFile(state.lastLogIndexPath), "1000");
  });
});

Deno.test("LogStateStore.read() refuses corrupt state with STORE_INVALID (never resets silently)", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/signatures`);
    const state = new LogStateStore(dir);
    await Deno.writeTextFile(state.lastLogIndexPath, "12abc");
    await assert.rejects(
      state.read(),
      (e: unknown) => e instanceof DangerzoneError && e.code === "STORE_INVALID",
    );
    await Deno.writeTextFile(state.lastLogIndexPath, "12\n");
    await Deno.writeTextFile(state.statePath, "{");
    await assert.rejects(
      state.read(),
      (e: unknown) => e instanceof DangerzoneError && e.code === "STORE_INVALID",
    );
  });
});

Deno.test("checkRollback() with no state is newer and without verified signatures refuses", async () => {
  const v = await verified({ logIndex: 1 });
  assert.equal(checkRollback({ logs: new Map(), legacyLastLogIndex: null }, v), "newer");
  assert.throws(
    () => checkRollback({ logs: new Map(), legacyLastLogIndex: null }, []),
    (e: unknown) => e instanceof DangerzoneError && e.code === "INTERNAL",
  );
});

async function bundleVerified(log: TestRekorLog, integratedTime: number): Promise<VerifiedBundleSignature> {
  const w = await world();
  const b = signImageBundle({ digest: w.digest, publisher: w.publisher, log, integratedTime });
  const trust = { publicKey: w.trust.publicKey, trustedRoot: parseTrustedRoot(testTrustedRoot([log])) };
  return verifyCosignBundleSignature({ index: 0, raw: b.json }, trust, { digest: w.digest });
}

Deno.test("LogStateStore counts bundle entries per log ID, beside legacy signatures", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const v1 = new TestRekorLog({ key: createTestKey(), indexOffset: 500 });
    const state = new LogStateStore(dir, { legacyLogId: w.rekor.spkiSha256 });
    const bundle = await bundleVerified(v1, 1_800_000_000);
    assert.equal(await state.check([bundle]), "newer");
    await state.record([bundle]);
    // A bundle in a log that is not the legacy one never moves Dangerzone's last_log_index.
    await assert.rejects(Deno.stat(state.lastLogIndexPath), Deno.errors.NotFound);
    assert.equal((await state.read()).logs.get(v1.logId)?.logIndex, bundle.logIndex);
    assert.equal(await state.check([bundle]), "up-to-date");

    // The same log earlier in its life: a lower bundle index is a rollback.
    const earlier = new TestRekorLog({ key: v1.key, indexOffset: 0 });
    await assert.rejects(state.check([await bundleVerified(earlier, 1_700_000_000)]), isRollback);

    // A shard with its own declared log ID, restarting at 0, later in time: newer, not a rollback.
    const shard = new TestRekorLog({ key: createTestKey(), logId: "5e".repeat(32), prefill: 0 });
    const fresh = await bundleVerified(shard, 1_900_000_000);
    assert.equal(fresh.logIndex, 0);
    assert.equal(await state.check([fresh]), "newer");
    // ... but earlier in time than what is installed: refused.
    await assert.rejects(state.check([await bundleVerified(shard, 1_600_000_000)]), isRollback);

    // Legacy signatures and bundles mix: each log is compared on its own. The legacy log is new to the
    // state but its entry predates the installed bundle's time, so only the bundle's equal index decides.
    const legacy = await verified({ logIndex: 42 });
    assert.equal(await state.check([...legacy, bundle]), "up-to-date");
    await state.record([...legacy, bundle]);
    assert.equal(await Deno.readTextFile(state.lastLogIndexPath), "42");
  });
});

Deno.test("checkRollback() over Dangerzone's last_log_index alone: another log needs the installed image's time", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const shard = createTestKey();
    const trust = await trustFor(w.publisher, w.rekor, shard);
    // Exactly as Dangerzone's Python writes it: open(..., "w").write(str(log_index)), no newline.
    await Deno.mkdir(`${dir}/signatures`, { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/signatures/last_log_index`, "1000", { mode: 0o644 });
    const store = new LogStateStore(dir, { legacyLogId: w.rekor.spkiSha256 });
    const state = await store.read();
    const inShard = async (integratedTime: number) =>
      (await verifyCosignSignatures(
        entriesOf(await craftEntry({ setSigner: shard, logIndex: 0, integratedTime })),
        trust,
        { digest: w.digest },
      )).verified;
    const old = await inShard(1_600_000_000);
    const options = { legacyLogId: w.rekor.spkiSha256 };
    assert.equal(needsInstalledTime(state, old, options), true);
    assert.equal(needsInstalledTime(state, await verified({ logIndex: 1001 }), options), false);
    // No time for what is installed: an entry in another log proves nothing, whatever its time.
    assert.throws(() => checkRollback(state, old, options), isRollback);
    const late = await inShard(2_000_000_000);
    assert.throws(() => checkRollback(state, late, options), isRollback);
    assert.throws(
      () => checkRollback(state, old, { ...options, installedTime: { unknown: "no runtime" } }),
      (e) => isRollback(e) && e instanceof Error && /signed is unknown \(no runtime\)/.test(e.message),
    );
    // With the installed image's signed time: older is refused, later is newer.
    const installedTime = { integratedTime: 1_700_000_000 };
    assert.throws(() => checkRollback(state, old, { ...options, installedTime }), isRollback);
    assert.equal(checkRollback(state, await inShard(1_800_000_000), { ...options, installedTime }), "newer");
    // The legacy log's own index still decides without any time.
    assert.equal(checkRollback(state, await verified({ logIndex: 1001 }), options), "newer");
    const lower = await verified({ logIndex: 999 });
    assert.throws(() => checkRollback(state, lower, options), isRollback);
  });
});

Deno.test("checkRollback(): a last_log_index above our recorded entry makes that log's time unknown", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const shard = createTestKey();
    const trust = await trustFor(w.publisher, w.rekor, shard);
    const store = new LogStateStore(dir, { legacyLogId: w.rekor.spkiSha256 });
    await store.record(await verified({ logIndex: 1000, integratedTime: 1_700_000_000 }));
    // Dangerzone later installed a newer image and wrote only last_log_index.
    await Deno.writeTextFile(store.lastLogIndexPath, "2000");
    const state = await store.read();
    const candidate = (await verifyCosignSignatures(
      entriesOf(await craftEntry({ setSigner: shard, logIndex: 0, integratedTime: 1_750_000_000 })),
      trust,
      { digest: w.digest },
    )).verified;
    const options = { legacyLogId: w.rekor.spkiSha256 };
    assert.equal(needsInstalledTime(state, candidate, options), true);
    assert.throws(() => checkRollback(state, candidate, options), isRollback);
    assert.throws(
      () => checkRollback(state, candidate, { ...options, installedTime: { integratedTime: 1_760_000_000 } }),
      isRollback,
    );
  });
});
