import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { parseSignatureList } from "../../src/sigstore/cosign/cosign_signature.ts";
import { verifyCosignSignatures } from "../../src/sigstore/cosign/policy.ts";
import { SignatureStore } from "../../src/store/signature_store.ts";
import { writeFileAtomic } from "../../src/store/_atomic_write.ts";
import { verifyCosignBundleSignature } from "../../src/sigstore/cosign/bundle_signature.ts";
import { parsePublicKeyPem } from "../../src/sigstore/crypto/keys.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { signImageBundle, TestRekorLog, testTrustedRoot } from "../_helpers/sigstore_signer.ts";
import { craftEntry, entriesOf, trustFor, world } from "../sigstore/_craft.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SignatureStore.write() stores verified entries byte-faithfully at Dangerzone's path", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const pem = new TextEncoder().encode(w.publisher.publicPem);
    const keyFileSha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", pem))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    const entries = entriesOf(await craftEntry({ logIndex: 3 }), await craftEntry({ noBundle: true }));
    const verdict = await verifyCosignSignatures(entries, w.trust, { digest: w.digest });
    const store = new SignatureStore(dir);
    const path = await store.write(verdict.verified);
    assert.equal(path, `${dir}/signatures/${keyFileSha}/${w.digest.slice(7)}.json`);
    const stored = await store.readUntrusted(keyFileSha, w.digest);
    assert.ok(stored !== null);
    // Only the verified entry is stored, exactly as received.
    assert.equal(new TextDecoder().decode(stored), `[${entries[0]?.raw}]`);
    assert.deepEqual(await store.listDigests(keyFileSha), [w.digest]);
    // What was stored verifies again.
    const again = await verifyCosignSignatures(
      parseSignatureList(stored),
      await trustFor(w.publisher, w.rekor),
      {
        digest: w.digest,
      },
    );
    assert.equal(again.verified.length, 1);
    assert.equal(await store.readUntrusted(keyFileSha, `sha256:${"00".repeat(32)}` as typeof w.digest), null);
  });
});

Deno.test("SignatureStore.write() refuses an empty list", async () => {
  await assert.rejects(
    new SignatureStore("/nonexistent").write([]),
    (e: unknown) => e instanceof DangerzoneError && e.code === "INTERNAL",
  );
});

Deno.test("writeFileAtomic() replaces a file whole and leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/sub/f.json`;
    await Deno.mkdir(`${dir}/sub`); // its callers create (and check) the directory: ensureOwnDirectory()
    await writeFileAtomic(path, new TextEncoder().encode("old"));
    await writeFileAtomic(path, new TextEncoder().encode("new"));
    assert.equal(await Deno.readTextFile(path), "new");
    const names = [];
    for await (const e of Deno.readDir(`${dir}/sub`)) names.push(e.name);
    assert.deepEqual(names, ["f.json"]);
  });
});

Deno.test("writeFileAtomic() that fails leaves the previous file intact and cleans up (IO)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f.json`;
    await writeFileAtomic(path, new TextEncoder().encode("old"));
    // Renaming a file over a non-empty directory fails after the temp file was written.
    await Deno.mkdir(`${dir}/d/x`, { recursive: true });
    await assert.rejects(
      writeFileAtomic(`${dir}/d`, new TextEncoder().encode("new")),
      (e: unknown) => e instanceof DangerzoneError && e.code === "IO",
    );
    assert.equal(await Deno.readTextFile(path), "old");
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["d", "f.json"]);
  });
});

Deno.test("writeFileAtomic() readers never see a torn file during concurrent rewrites", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f`;
    const a = new Uint8Array(512 * 1024).fill(0x61);
    const b = new Uint8Array(512 * 1024).fill(0x62);
    await writeFileAtomic(path, a);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 20; i++) await writeFileAtomic(path, i % 2 ? a : b);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const got = await Deno.readFile(path);
      assert.equal(got.length, a.length);
      assert.ok(got.every((x) => x === got[0]), "torn read");
      reads++;
    }
    await writer;
    assert.ok(reads > 0);
  });
});

async function bundleSignature(w: Awaited<ReturnType<typeof world>>, log: TestRekorLog) {
  const b = signImageBundle({ digest: w.digest, publisher: w.publisher, log });
  const trust = {
    publicKey: await parsePublicKeyPem(new TextEncoder().encode(w.publisher.publicPem)),
    trustedRoot: parseTrustedRoot(testTrustedRoot([log])),
  };
  return { b, trust, v: verifyCosignBundleSignature({ index: 0, raw: b.json }, trust, { digest: w.digest }) };
}

Deno.test("SignatureStore.write() keeps cosign v3 bundles in <digest>.bundles.json beside the legacy list", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const log = new TestRekorLog({ key: createTestKey() });
    const { b, trust, v } = await bundleSignature(w, log);
    const store = new SignatureStore(dir);
    const keyFileSha = w.trust.publicKey.fileSha256 ?? "";
    const hex = w.digest.slice(7);

    // Bundle only: the bundle file, and no legacy file (Dangerzone's reader is never given a fake list).
    const path = await store.write([v]);
    assert.equal(path, `${dir}/signatures/${keyFileSha}/${hex}.bundles.json`);
    assert.equal(await store.readUntrusted(keyFileSha, w.digest), null);
    const read = await store.readUntrustedBundles(keyFileSha, w.digest);
    assert.deepEqual(read, [{ index: 0, raw: b.json }]);
    assert.deepEqual(await store.listDigests(keyFileSha), [w.digest]);
    // What was stored verifies again.
    const again = verifyCosignBundleSignature(read?.[0] ?? { index: 0, raw: "" }, trust, {
      digest: w.digest,
    });
    assert.equal(again.logIndex, v.logIndex);

    // Both kinds: each in its own file; the legacy file is what Dangerzone reads, exactly as before.
    const entries = entriesOf(await craftEntry({ logIndex: 3 }));
    const legacy = (await verifyCosignSignatures(entries, w.trust, { digest: w.digest })).verified;
    assert.equal(await store.write([...legacy, v]), `${dir}/signatures/${keyFileSha}/${hex}.json`);
    assert.equal(
      new TextDecoder().decode(await store.readUntrusted(keyFileSha, w.digest) ?? new Uint8Array()),
      `[${entries[0]?.raw}]`,
    );
    assert.equal((await store.readUntrustedBundles(keyFileSha, w.digest))?.length, 1);
    assert.deepEqual(await store.listDigests(keyFileSha), [w.digest]);
  });
});

Deno.test("SignatureStore.readUntrustedBundles() refuses a damaged bundle file with STORE_INVALID", async () => {
  await withTempDir(async (dir) => {
    const w = await world();
    const store = new SignatureStore(dir);
    const keyFileSha = w.trust.publicKey.fileSha256 ?? "";
    const path = store.bundlesPathFor(keyFileSha, w.digest);
    await Deno.mkdir(`${store.signaturesDir}/${keyFileSha}`, { recursive: true });
    for (const bad of ["{}", "[1]", '[{"a":1,"a":2}]', "[{}] x"]) {
      await writeFileAtomic(path, new TextEncoder().encode(bad));
      await assert.rejects(
        store.readUntrustedBundles(keyFileSha, w.digest),
        (e: unknown) => e instanceof DangerzoneError && e.code === "STORE_INVALID",
        bad,
      );
    }
  });
});
