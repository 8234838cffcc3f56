import assert from "node:assert/strict";
import { runCli } from "./_helpers/cli.ts";
import { ExitCode, exitCodeFor } from "../src/errors.ts";

const COMMANDS = [
  "upgrade",
  "check",
  "store-signatures",
  "verify-local",
  "attest-provenance",
  "prepare-archive",
  "load-archive",
  "verify-bundle",
  "verify-signatures",
];

Deno.test("main --version prints the version and exits 0", async () => {
  const r = await runCli(["--version"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

Deno.test("main --help lists every command of the contract", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0);
  for (const name of COMMANDS) assert.match(r.stdout, new RegExp(`\\n  ${name} `), name);
});

for (const name of COMMANDS) {
  Deno.test(`main ${name} --help shows common options and an example`, async () => {
    const r = await runCli([name, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Example:\n {2}\$ dangerzone-image /);
    for (
      const opt of [
        "--image",
        "--pubkey",
        "--rekor-key",
        "--trusted-root",
        "--identity",
        "--runtime",
        "--data-dir",
      ]
    ) {
      assert.ok(r.stdout.includes(opt), `${name} lacks ${opt}`);
    }
    assert.ok(r.stdout.includes("--json") && r.stdout.includes("--debug"));
  });
}

Deno.test("main without a command is a usage error (exit 2)", async () => {
  const r = await runCli([]);
  assert.equal(r.code, ExitCode.USAGE);
});

Deno.test("main rejects an unknown option with exit 2", async () => {
  const r = await runCli(["check", "--no-such-option"]);
  assert.equal(r.code, ExitCode.USAGE);
  assert.match(r.stderr, /unknown option/);
});

Deno.test("main rejects an unknown runtime name with exit 2", async () => {
  const r = await runCli(["check", "--runtime", "lxc"]);
  assert.equal(r.code, ExitCode.USAGE);
});

Deno.test("exitCodeFor() maps each area to the exit codes of DESIGN.md", () => {
  assert.equal(exitCodeFor("USAGE"), 2);
  assert.equal(exitCodeFor("REGISTRY_UNREACHABLE"), 12);
  assert.equal(exitCodeFor("DIGEST_MISMATCH"), 12);
  assert.equal(exitCodeFor("SIGNATURE_INVALID"), 10);
  assert.equal(exitCodeFor("POLICY_IDENTITY_MISMATCH"), 10);
  assert.equal(exitCodeFor("ROLLBACK"), 11);
  assert.equal(exitCodeFor("ARCHIVE_INVALID"), 13);
  assert.equal(exitCodeFor("RUNTIME_FAILED"), 14);
  assert.equal(exitCodeFor("INTERNAL"), 1);
});
