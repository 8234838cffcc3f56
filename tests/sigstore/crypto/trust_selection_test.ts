/**
 * `selectTrust()`: the one choice of trust for every signature form. `--trusted-root` wins, then the
 * Rekor key override (`--rekor-key`, `SIGSTORE_REKOR_PUBLIC_KEY`), then the caller's default root, then
 * the production root; with the override, a bundle's SET, checkpoint and inclusion proof must be by the
 * override key, and a bundle from another log is refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash, createPublicKey } from "node:crypto";
import { join } from "node:path";
import { isDangerzoneError } from "../../../src/errors.ts";
import type { Digest } from "../../../src/oci/digest.ts";
import { verifyBundle } from "../../../src/sigstore/crypto/bundle_verifier.ts";
import { selectTrust } from "../../../src/sigstore/crypto/trust_selection.ts";
import { parseTrustedRoot, productionTrustedRoot } from "../../../src/sigstore/crypto/trusted_root.ts";
import { createTestKey, type TestKey } from "../../_helpers/cosign_signer.ts";
import { makeTempDir } from "../../_helpers/process.ts";
import {
  signImageBundle,
  type SignImageBundleOptions,
  TestRekorLog,
} from "../../_helpers/sigstore_signer.ts";

const VECTORS = new URL("../../testdata/vectors/", import.meta.url);
const REKOR2_ROOT = new URL(
  "sigstore-conformance/test/assets/bundle-verify/rekor2-happy-path/trusted_root.json",
  VECTORS,
);
const DIGEST = `sha256:${"ab".repeat(32)}` as Digest;
const noEnv = () => undefined;

function spkiSha256(key: TestKey): string {
  const der = createPublicKey(key.publicPem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex");
}

async function writeKey(dir: string, name: string, key: TestKey): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, key.publicPem);
  return path;
}

Deno.test("selectTrust() without options: the production root and the pinned Rekor key", async () => {
  const trust = await selectTrust({ env: noEnv });
  assert.equal(trust.trustedRootRule, "default");
  assert.equal(await trust.trustedRoot(), productionTrustedRoot());
  assert.deepEqual(trust.rekorKeys.logIds(), [productionTrustedRoot().rekorLogs[0]?.logIdHex]);
});

Deno.test("selectTrust() order: --trusted-root, then the override, then the caller's default root", async () => {
  await using dir = makeTempDir("trust");
  const log = createTestKey();
  const keyFile = await writeKey(dir.path, "rekor.pub", log);
  const stored = parseTrustedRoot(await Deno.readFile(REKOR2_ROOT), { source: "stored" });
  const defaultTrustedRoot = () => stored;
  const env = (n: string) => n === "SIGSTORE_REKOR_PUBLIC_KEY" ? keyFile : undefined;

  const byDefault = await selectTrust({ env: noEnv, defaultTrustedRoot });
  assert.equal(byDefault.trustedRootRule, "default");
  assert.equal(await byDefault.trustedRoot(), stored);

  for (const options of [{ env }, { env: noEnv, rekorKeyFile: keyFile }]) {
    const overridden = await selectTrust({ ...options, defaultTrustedRoot });
    assert.equal(overridden.trustedRootRule, "rekor-key-override");
    const root = await overridden.trustedRoot();
    assert.deepEqual(root.rekorLogs.map((l) => l.logIdHex), [spkiSha256(log)], "the override key only");
    assert.equal(root.rekorLogs[0]?.validFrom.getTime(), 0);
    assert.equal(root.rekorLogs[0]?.validUntil, undefined);
    assert.equal(root.protobuf.certificateAuthorities.length, stored.protobuf.certificateAuthorities.length);
    assert.deepEqual(overridden.rekorKeys.logIds(), [spkiSha256(log)]);
    assert.equal(await overridden.trustedRoot(), root, "built once");
  }

  const rootFile = new URL(REKOR2_ROOT).pathname;
  const broken = (n: string) => n === "SIGSTORE_REKOR_PUBLIC_KEY" ? join(dir.path, "missing.pub") : undefined;
  const fromFile = await selectTrust({ env: broken, trustedRootFile: rootFile, defaultTrustedRoot });
  assert.equal(fromFile.trustedRootRule, "trusted-root-file");
  assert.equal((await fromFile.trustedRoot()).source, rootFile);
  const both = await selectTrust({ env: noEnv, trustedRootFile: rootFile, rekorKeyFile: keyFile });
  assert.equal(both.trustedRootRule, "trusted-root-file");
  assert.ok(both.rekorKeys.get(spkiSha256(log)) !== undefined, "--rekor-key still counts for .sig");
  assert.equal(both.rekorKeys.size, 1 + fromFile.rekorKeys.size);
});

Deno.test("a bundle from the override's log verifies only under the override", async (t) => {
  await using dir = makeTempDir("trust");
  const publisher = createTestKey();
  const log = new TestRekorLog({ key: createTestKey(), name: "log2026-9.rekor.test.local" });
  const other = new TestRekorLog({ key: createTestKey() });
  const keyFile = await writeKey(dir.path, "rekor.pub", log.key);
  const otherFile = await writeKey(dir.path, "other.pub", other.key);
  const policy = { kind: "key", publicKeyPem: publisher.publicPem } as const;
  const sign = (o: Partial<SignImageBundleOptions> = {}) =>
    signImageBundle({ digest: DIGEST, publisher, log, integratedTime: 1_800_000_000, ...o }).json;
  const verify = async (json: string, rekorKeyFile: string | undefined) => {
    const trustedRoot = await (await selectTrust({ env: noEnv, rekorKeyFile })).trustedRoot();
    return verifyBundle(json, { artifact: { digest: DIGEST }, policy, trustedRoot });
  };
  const refused = async (json: string, rekorKeyFile: string | undefined, code: string) => {
    await assert.rejects(verify(json, rekorKeyFile), (e: unknown) => {
      assert.ok(isDangerzoneError(e), String(e));
      assert.equal(e.code, code, e.message);
      return true;
    });
  };

  await t.step("SET, checkpoint and inclusion proof by the override key: verified", async () => {
    const v = await verify(sign(), keyFile);
    assert.equal(v.tlogEntries[0]?.logId, log.logId);
  });
  await t.step("the same bundle against the production root: refused", async () => {
    await refused(sign(), undefined, "TLOG_SET_INVALID");
  });
  await t.step("with the override set to another key: refused", async () => {
    await refused(sign(), otherFile, "TLOG_SET_INVALID");
  });
  await t.step("a checkpoint not signed by the override key: refused", async () => {
    await refused(sign({ checkpointSigner: other.key.privateKey }), keyFile, "TLOG_INCLUSION_INVALID");
  });
});
