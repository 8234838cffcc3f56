/**
 * The data directory exactly as Dangerzone's Python updater leaves it (real signature lists from
 * freedomofpress/dangerzone `tests/assets/signatures/valid`, copied byte-exact into
 * tests/testdata/vectors/): our store lists and reads them, they verify, and the anti-rollback state is
 * read from `last_log_index` with or without a trailing newline.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseDigest } from "../../src/oci/digest.ts";
import { parseSignatureList } from "../../src/sigstore/cosign/cosign_signature.ts";
import { loadPublicKeyFile } from "../../src/sigstore/crypto/keys.ts";
import { verifiedLogPositions, verifyCosignSignatures } from "../../src/sigstore/cosign/policy.ts";
import { pinnedRekorKeyring } from "../../src/sigstore/crypto/rekor_keys.ts";
import { LogStateStore, needsInstalledTime } from "../../src/store/log_state.ts";
import { SignatureStore } from "../../src/store/signature_store.ts";
import { makeTempDir } from "../_helpers/process.ts";

const ASSETS = new URL("../testdata/vectors/dangerzone/tests/assets/", import.meta.url).pathname;
const KEY_SHA = "95b432860b272938246b10e1cfc89a24e1db352b3aebaa799c4284c42c46bd95";

Deno.test("SignatureStore and LogStateStore read a data dir written by Dangerzone (real stored lists)", async () => {
  await using tmp = makeTempDir("dz-store");
  const sigDir = join(tmp.path, "signatures");
  await Deno.mkdir(join(sigDir, KEY_SHA), { recursive: true, mode: 0o755 });
  for await (const e of Deno.readDir(join(ASSETS, "signatures", "valid", KEY_SHA))) {
    await Deno.copyFile(join(ASSETS, "signatures", "valid", KEY_SHA, e.name), join(sigDir, KEY_SHA, e.name));
  }
  const store = new SignatureStore(tmp.path);
  const digests = await store.listDigests(KEY_SHA);
  assert.equal(digests.length, 5);
  const trust = {
    publicKey: await loadPublicKeyFile(join(ASSETS, "test.pub.key")),
    rekorKeys: await pinnedRekorKeyring(),
  };
  assert.equal(trust.publicKey.fileSha256, KEY_SHA, "the directory is named by the key file's sha256");
  let highest = { logIndex: -1, integratedTime: 0 };
  for (const digest of digests) {
    const bytes = await store.readUntrusted(KEY_SHA, parseDigest(digest));
    assert.ok(bytes !== null);
    const verdict = await verifyCosignSignatures(parseSignatureList(bytes), trust, {
      digest: parseDigest(digest),
    });
    assert.ok(verdict.verified.length > 0, digest);
    for (const p of verifiedLogPositions(verdict.verified)) {
      if (p.logIndex > highest.logIndex) highest = p;
    }
  }
  for (const text of [String(highest.logIndex), `${highest.logIndex}\n`]) {
    await Deno.writeTextFile(join(sigDir, "last_log_index"), text, { mode: 0o644 });
    const state = await new LogStateStore(tmp.path).read();
    assert.equal(state.legacyLastLogIndex, highest.logIndex);
    assert.equal(state.logs.size, 0);
  }
  // Dangerzone's state has no time: a candidate in another log needs the installed image's.
  const first = parseDigest(digests[0] ?? "");
  const anyList = await store.readUntrusted(KEY_SHA, first);
  const verdict = await verifyCosignSignatures(parseSignatureList(anyList ?? new Uint8Array()), trust, {
    digest: first,
  });
  const state = await new LogStateStore(tmp.path).read();
  assert.equal(needsInstalledTime(state, verdict.verified, { legacyLogId: "f".repeat(64) }), true);
  assert.equal(needsInstalledTime(state, verdict.verified), false);
});
