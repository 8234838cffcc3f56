import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { verifyCosignSignatures } from "../../src/sigstore/policy.ts";
import type { VerifiedCosignSignature } from "../../src/sigstore/verifier.ts";
import { checkRollback, LogStateStore } from "../../src/store/log_state.ts";
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
