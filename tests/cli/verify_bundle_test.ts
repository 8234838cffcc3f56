/** `verify-bundle` command: usage errors, --json, one-line failures, exit codes. */
import assert from "node:assert/strict";
import { type CliResult, runCli } from "../_helpers/cli.ts";
import { ACTIONS_ISSUER, BEACON_IDENTITY, CASES_DIR } from "../sigstore/crypto/_conformance_cases.ts";

const A_TXT = `${CASES_DIR}../a.txt`;
const V03 = `${CASES_DIR}happy-path-v0.3/bundle.sigstore.json`;
const KEY = `${CASES_DIR}managed-key-happy-path/key.pub`;

/** Runs `verify-bundle ARGS` through the CLI. */
function run(args: string[]): Promise<CliResult> {
  return runCli(["verify-bundle", ...args]);
}

Deno.test("verify-bundle --json prints one document with the verified signer", async () => {
  const r = await run([
    "--json",
    "--bundle",
    V03,
    "--certificate-identity",
    BEACON_IDENTITY,
    "--certificate-oidc-issuer",
    ACTIONS_ISSUER,
    A_TXT,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.ok, true);
  assert.deepEqual(doc.signer, { kind: "certificate", identity: BEACON_IDENTITY, issuer: ACTIONS_ISSUER });
  assert.equal(doc.artifactDigest, "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf");
  assert.equal(doc.trustedRoot, "production");
  assert.equal(doc.tlogEntries[0].logId, "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d");
});

Deno.test("verify-bundle accepts sha256:DIGEST instead of the file", async () => {
  const r = await run([
    "--bundle",
    V03,
    "--certificate-identity",
    BEACON_IDENTITY,
    "--certificate-oidc-issuer",
    ACTIONS_ISSUER,
    "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf",
  ]);
  assert.equal(r.code, 0, r.stderr);
});

Deno.test("verify-bundle usage errors exit 2", async () => {
  const both = await run([
    "--bundle",
    V03,
    "--key",
    KEY,
    "--certificate-identity",
    BEACON_IDENTITY,
    "--certificate-oidc-issuer",
    ACTIONS_ISSUER,
    A_TXT,
  ]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--key replaces/);
  const half = await run(["--bundle", V03, "--certificate-identity", BEACON_IDENTITY, A_TXT]);
  assert.equal(half.code, 2);
  const none = await run(["--bundle", V03, A_TXT]);
  assert.equal(none.code, 2);
});

Deno.test("verify-bundle failures print one line and exit 10; --json carries the code", async () => {
  const r = await run([
    "--bundle",
    V03,
    "--certificate-identity",
    `${BEACON_IDENTITY}x`,
    "--certificate-oidc-issuer",
    ACTIONS_ISSUER,
    A_TXT,
  ]);
  assert.equal(r.code, 10);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  const j = await run(["--json", "--bundle", V03, "--key", KEY, A_TXT]);
  assert.equal(j.code, 10);
  assert.equal(JSON.parse(j.stdout).error.code, "POLICY_IDENTITY_MISMATCH");
});

Deno.test("verify-bundle with a bad --trusted-root exits 10 with TRUST_ROOT_INVALID", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/root.json`, "{}");
    const r = await run([
      "--json",
      "--trusted-root",
      `${dir}/root.json`,
      "--bundle",
      V03,
      "--key",
      KEY,
      A_TXT,
    ]);
    assert.equal(r.code, 10);
    assert.equal(JSON.parse(r.stdout).error.code, "TRUST_ROOT_INVALID");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify-bundle with a missing file exits 1 with IO", async () => {
  const r = await run(["--json", "--bundle", "/nonexistent/bundle.json", "--key", KEY, A_TXT]);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error.code, "IO");
});
