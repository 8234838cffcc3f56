/**
 * Every sigstore-conformance bundle-verify case of tests/testdata/vectors/ through the CLI protocol:
 * `main.ts verify-bundle --bundle F (--key K | --certificate-identity I --certificate-oidc-issuer U)
 * [--trusted-root R] ARTIFACT`; `_fail` cases must exit 10 with one line, the others exit 0.
 */
import assert from "node:assert/strict";
import { runCli } from "../../_helpers/cli.ts";
import { conformanceCases } from "./_conformance_cases.ts";

const cases = conformanceCases();

Deno.test("conformance vectors: the folder holds the expected cases", () => {
  assert.equal(cases.length, 20);
  assert.equal(cases.filter((c) => c.expectPass).length, 9);
});

for (const c of cases) {
  Deno.test(`verify-bundle conformance case ${c.name} ${c.expectPass ? "passes" : "fails"}`, async () => {
    const args = ["verify-bundle", "--bundle", c.bundleFile];
    if (c.keyFile !== undefined) args.push("--key", c.keyFile);
    else args.push("--certificate-identity", c.identity, "--certificate-oidc-issuer", c.issuer);
    if (c.trustedRootFile !== undefined) args.push("--trusted-root", c.trustedRootFile);
    args.push(c.artifactFile);
    const { code, stdout, stderr } = await runCli(args);
    if (c.expectPass) {
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^verified: /);
      assert.equal(stdout.trim().split("\n").length, 1);
    } else {
      assert.equal(code, 10, `expected exit 10, got ${code}: ${stdout}${stderr}`);
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      assert.match(stderr, /^error: /);
      assert.doesNotMatch(stderr, /at .*\.ts:\d+/);
    }
  });
}
