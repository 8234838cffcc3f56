import assert from "node:assert/strict";
import { DangerzoneError } from "../../../src/errors.ts";
import { loadRekorKeyring } from "../../../src/sigstore/crypto/trust_selection.ts";

const VECTORS = new URL("../../testdata/vectors/", import.meta.url);
const PROD_LOG = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d";
const noEnv = () => undefined;

Deno.test("loadRekorKeyring() defaults to the pinned production Rekor key", async () => {
  const ring = await loadRekorKeyring({ env: noEnv });
  assert.deepEqual(ring.logIds(), [PROD_LOG]);
});

Deno.test("loadRekorKeyring() SIGSTORE_REKOR_PUBLIC_KEY replaces the pinned key; --rekor-key wins over it", async () => {
  const test = new URL("dangerzone/tests/assets/test.pub.key", VECTORS).pathname;
  const rekor = new URL("dangerzone/share/rekor.pub", VECTORS).pathname;
  const fromEnv = await loadRekorKeyring({
    env: (n) => n === "SIGSTORE_REKOR_PUBLIC_KEY" ? test : undefined,
  });
  assert.equal(fromEnv.size, 1);
  assert.equal(fromEnv.get(PROD_LOG), undefined);
  const flag = await loadRekorKeyring({
    rekorKeyFile: rekor,
    env: (n) => n === "SIGSTORE_REKOR_PUBLIC_KEY" ? test : undefined,
  });
  assert.deepEqual(flag.logIds(), [PROD_LOG]);
});

Deno.test("loadRekorKeyring() takes the tlog keys of a trusted root, with their validity", async () => {
  const ring = await loadRekorKeyring({
    trustedRootFile: new URL("sigstore-root-signing/targets/trusted_root.json", VECTORS).pathname,
    env: noEnv,
  });
  assert.equal(ring.size, 2);
  assert.equal(ring.get(PROD_LOG)?.validFrom, Date.parse("2021-01-12T11:53:27Z") / 1000);
});

Deno.test("loadRekorKeyring() refuses an invalid trusted root and a missing key file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/root.json`, '{"mediaType":"x","tlogs":[]}');
    await assert.rejects(
      loadRekorKeyring({ trustedRootFile: `${dir}/root.json`, env: noEnv }),
      (e: unknown) => e instanceof DangerzoneError && e.code === "TRUST_ROOT_INVALID",
    );
    await assert.rejects(
      loadRekorKeyring({ rekorKeyFile: `${dir}/none.pub`, env: noEnv }),
      (e: unknown) => e instanceof DangerzoneError && e.code === "IO",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
