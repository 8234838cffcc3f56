import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { oneLine, runCli } from "./_helpers/cli.ts";
import { makeTempDir, runCommand } from "./_helpers/process.ts";
import { ExitCode, exitCodeFor } from "../src/errors.ts";
import { COMMANDS } from "../src/cli/commands.ts";
import { buildProgram } from "../src/cli/program.ts";
import { buildBundle } from "../scripts/bundle.ts";
import { staticClosure } from "./_helpers/module_graph.ts";
import { ACTIONS_ISSUER, BEACON_IDENTITY, CASES_DIR } from "./sigstore/crypto/_conformance_cases.ts";

const COMMANDS_OF_CONTRACT = [
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
  for (const name of COMMANDS_OF_CONTRACT) assert.match(r.stdout, new RegExp(`\\n  ${name} `), name);
});

for (const name of COMMANDS_OF_CONTRACT) {
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

Deno.test("commander's tree has every command of the table, and completion", () => {
  const names = buildProgram(() => {}).commands.map((c) => c.name());
  assert.deepEqual(names, [...COMMANDS.map((c) => c.name), "completion"]);
  for (const name of [...COMMANDS_OF_CONTRACT, "mirror", "trust-root"]) assert.ok(names.includes(name), name);
});

Deno.test("main without a command is a usage error (exit 2, one line)", async () => {
  const r = await runCli([]);
  assert.equal(r.code, ExitCode.USAGE);
  assert.match(oneLine(r.stderr), /^error: no command given \(run with --help/);
});

Deno.test("main rejects an unknown option with exit 2 and one line", async () => {
  const r = await runCli(["check", "--no-such-option"]);
  assert.equal(r.code, ExitCode.USAGE);
  assert.match(oneLine(r.stderr), /^error: unknown option '--no-such-option' \(run with --help for usage\)$/);
});

Deno.test("main rejects an unknown runtime name with exit 2 and one line", async () => {
  const r = await runCli(["check", "--runtime", "lxc"]);
  assert.equal(r.code, ExitCode.USAGE);
  assert.match(oneLine(r.stderr), /Allowed choices are podman, docker/);
});

Deno.test("the bundle needs no permission at all for help, version, usage errors and completion", async (t) => {
  await using dir = makeTempDir("bundle-noperm");
  const bundle = await buildBundle(join(dir.path, "dangerzone-image"));
  // runCli adds --no-prompt: a permission the program needs fails instead of prompting
  const none = (args: string[]) =>
    runCli(args, { entry: bundle, permissions: [], env: { CLICOLOR_FORCE: "1" } });

  await t.step("--help and COMMAND --help", async () => {
    const r = await none(["--help"]);
    assert.equal(r.code, 0, r.stderr);
    for (const name of [...COMMANDS_OF_CONTRACT, "completion"]) {
      assert.match(r.stdout, new RegExp(`\\n  ${name} `), name);
    }
    for (const name of [...COMMANDS_OF_CONTRACT, "completion"]) {
      const c = await none([name, "--help"]);
      assert.equal(c.code, 0, `${name}: ${c.stderr}`);
      assert.match(c.stdout, /Example:\n {2}\$ /, name);
    }
  });
  await t.step("--version", async () => {
    const r = await none(["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });
  await t.step("usage errors: exit 2, one line", async () => {
    for (const args of [[], ["bogus"], ["check", "--nope"], ["check", "--runtime", "lxc"], ["completion"]]) {
      const r = await none(args);
      assert.equal(r.code, ExitCode.USAGE, `${args.join(" ")}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), /^error: /);
    }
  });
  await t.step("completion bash|zsh|fish", async () => {
    for (const shell of ["bash", "zsh", "fish"]) {
      const r = await none(["completion", shell]);
      assert.equal(r.code, 0, `${shell}: ${r.stderr}`);
      assert.equal(r.stderr, "");
      const file = join(dir.path, `completion.${shell}`);
      await Deno.writeTextFile(file, r.stdout);
      await runCommand(shell, shell === "fish" ? ["--no-execute", file] : ["-n", file]);
    }
  });
  await t.step("the entry and verify-local's chunks start no Node compatibility layer", async () => {
    const folder = dirname(bundle);
    const chunks: string[] = [];
    for await (const f of Deno.readDir(folder)) {
      if (/^verify_local-[A-Z0-9]+\.js$/.test(f.name)) chunks.push(f.name);
    }
    assert.equal(chunks.length, 1, "verify-local has a chunk of its own");
    for (const entry of [bundle, join(folder, chunks[0] ?? "")]) {
      const closure = await staticClosure(entry);
      assert.ok(closure.length > 3, `${entry}: ${closure.join(", ")}`);
      assert.deepEqual(closure.filter((s) => /^(node|npm):/.test(s)), [], entry);
    }
  });
  await t.step("CommonJS libraries still get require() (made on first use)", async () => {
    // verify-bundle runs the Sigstore libraries, which require() node:crypto
    const r = await runCli([
      "verify-bundle",
      "--bundle",
      `${CASES_DIR}happy-path-v0.3/bundle.sigstore.json`,
      "--certificate-identity",
      BEACON_IDENTITY,
      "--certificate-oidc-issuer",
      ACTIONS_ISSUER,
      `${CASES_DIR}../a.txt`,
      "--data-dir",
      dir.path,
    ], {
      entry: bundle,
      permissions: [
        `--allow-read=${join(CASES_DIR, "..")},${dir.path}`,
        `--allow-write=${dir.path}`,
        "--allow-env=SIGSTORE_REKOR_PUBLIC_KEY",
      ],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verified/i);
  });
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
