/**
 * The machine contract against real outputs: every command runs as users run it (a child process)
 * against the real registry (CNCF distribution) and real podman, and its `--json` stdout, its NDJSON
 * progress events and its failure documents (exit 2, 10, 11, 12, 13, 14) must validate against
 * `schemas/`. The last test fails when a command has no schema, or a schema validated no real output:
 * a new command or schema must add its run here.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildProgram } from "../../src/cli/program.ts";
import { type CliResult, runCli } from "../_helpers/cli.ts";
import { createTestKey, signatureManifest, signImage } from "../_helpers/cosign_signer.ts";
import { buildMultiArchImage } from "../_helpers/images.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { TestTufRepo } from "../tuf/_tuf_repo.ts";
import { startSignedRegistry } from "../update/_fixture.ts";
import { COMMON_SCHEMA, ContractValidator, schemaFiles } from "./_schemas.ts";

const contract = new ContractValidator();
const REPO = "sandbox/contract";

/** Commands that print no `--json` document (a script, not a result). */
const NO_JSON_DOCUMENT = new Set(["completion"]);

/** Asserts the exit code, then validates stdout against `<command>.schema.json`. */
function assertDocument(r: CliResult, code: number, command: string, what: string): Record<string, unknown> {
  assert.equal(r.code, code, `${what}: ${r.stderr}`);
  return contract.assertStdout(`${command}.schema.json`, r.stdout, `${command}: ${what}`);
}

/** Asserts a failure: the exit code, the error document and its code. */
function assertFailure(r: CliResult, exit: number, code: string, what: string): void {
  assert.equal(r.code, exit, `${what}: ${r.stderr}`);
  const doc = contract.assertStdout("error.schema.json", r.stdout, `exit ${exit} (${code}): ${what}`);
  assert.equal(Reflect.get(Object(doc["error"]), "code"), code, r.stdout);
}

Deno.test("contract: every registry and runtime command's --json, progress and error documents (real registry, podman)", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using tmp = makeTempDir("contract");
  const dataDir = join(tmp.path, "data");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const env = { ...pm.env, ...sr.env };
  const common = (ref: string, data = dataDir) => [...sr.cliArgs(ref, data), "--runtime", "podman", "--json"];
  const img = await sr.pushBusybox(REPO, "latest", "contract v1");
  await sr.sign(img.digest, { repository: REPO, logIndex: 100, count: 2 });
  const archive = join(tmp.path, "dz.tar");
  let signaturesPath = "";

  await t.step("check: update available (exit 3)", async () => {
    const doc = assertDocument(await runCli(["check", ...common(image)], { env }), 3, "check", "exit 3");
    assert.equal(doc["status"], "update-available");
  });

  await t.step("upgrade: installed, with NDJSON download and load progress", async () => {
    const r = await runCli(["upgrade", ...common(image)], { env });
    const doc = assertDocument(r, 0, "upgrade", "upgraded");
    assert.equal(doc["status"], "upgraded");
    const events = contract.assertEvents(r.stderr, "upgrade progress");
    for (const phase of ["download", "load"]) {
      assert.ok(events.some((e) => e["phase"] === phase && e["final"] === true), `${phase}: ${r.stderr}`);
    }
  });

  await t.step("upgrade again: already up to date (null platform and signature file)", async () => {
    const doc = assertDocument(
      await runCli(["upgrade", ...common(image)], { env }),
      0,
      "upgrade",
      "up to date",
    );
    assert.equal(doc["status"], "up-to-date");
    assert.equal(doc["platform"], null);
  });

  await t.step("check: up to date (exit 0)", async () => {
    const doc = assertDocument(await runCli(["check", ...common(image)], { env }), 0, "check", "exit 0");
    assert.equal(doc["status"], "up-to-date");
  });

  await t.step("verify-local, store-signatures", async () => {
    const local = assertDocument(
      await runCli(["verify-local", ...common(image)], { env }),
      0,
      "verify-local",
      "ok",
    );
    assert.equal(local["verified"], 2);
    const stored = assertDocument(
      await runCli(["store-signatures", ...common(image)], { env }),
      0,
      "store-signatures",
      "ok",
    );
    signaturesPath = String(Reflect.get(Object(stored["stored"]), "path"));
  });

  await t.step(
    "mirror: into another repository (blobs mounted), then a second run that copies nothing",
    async () => {
      const to = ["--to", `${sr.reg.host}/mirror/contract`];
      const first = await runCli(["mirror", ...common(image), ...to], { env });
      const doc = assertDocument(first, 0, "mirror", "ok");
      assert.equal(doc["digest"], img.digest);
      const events = contract.assertEvents(first.stderr, "mirror progress");
      assert.ok(events.some((e) => e["phase"] === "upload" && e["final"] === true), first.stderr);
      const again = assertDocument(
        await runCli(["mirror", ...common(image), ...to], { env }),
        0,
        "mirror",
        "again",
      );
      assert.equal(Reflect.get(Object(again["copied"]), "bytes"), 0);
    },
  );

  await t.step(
    "verify-signatures: verified (exit 0) and not verified (exit 10, its own failure form)",
    async () => {
      const keys = ["--pubkey", sr.pubkeyFile, "--rekor-key", sr.rekorKeyFile, "--json"];
      const args = ["verify-signatures", "--signatures", signaturesPath, ...keys];
      const good = assertDocument(
        await runCli([...args, "--digest", img.digest], { env }),
        0,
        "verify-signatures",
        "verified",
      );
      assert.equal(good["verified"], 2);
      const other = `sha256:${"0".repeat(64)}`;
      const bad = assertDocument(
        await runCli([...args, "--digest", other], { env }),
        10,
        "verify-signatures",
        "exit 10",
      );
      assert.equal(bad["ok"], false);
      assert.equal(Reflect.get(Object(Reflect.get(Object(bad["signatures"]), 0)), "verdict"), "rejected");
    },
  );

  await t.step("prepare-archive and load-archive, with their progress events", async () => {
    const prepared = await runCli(["prepare-archive", "--output", archive, ...common(image)], { env });
    assertDocument(prepared, 0, "prepare-archive", "written");
    assert.ok(contract.assertEvents(prepared.stderr, "prepare-archive progress").length > 0, prepared.stderr);
    const loaded = await runCli(["load-archive", archive, ...common(image, join(tmp.path, "air"))], { env });
    assertDocument(loaded, 0, "load-archive", "loaded");
    const events = contract.assertEvents(loaded.stderr, "load-archive progress");
    for (const phase of ["unpack", "load"]) {
      assert.ok(
        events.some((e) => e["phase"] === phase && e["final"] === true),
        `${phase}: ${loaded.stderr}`,
      );
    }
    const to = ["--to", `${sr.reg.host}/airgap/contract`, "--archive", archive];
    const mirrored = await runCli(["mirror", ...common(image, join(tmp.path, "mirror-air")), ...to], { env });
    assert.equal(assertDocument(mirrored, 0, "mirror", "--archive")["sourceKind"], "archive");
  });

  await t.step(
    "failure documents: exit 2 (usage, a permission not given), 10, 11, 12, 13 and 14",
    async () => {
      assertFailure(
        await runCli(["upgrade", ...common(image), "--max-age", "soon"], { env }),
        2,
        "USAGE",
        "--max-age",
      );
      const stranger = join(tmp.path, "stranger.pub");
      await Deno.writeTextFile(stranger, createTestKey().publicPem);
      assertFailure(
        await runCli(["check", ...common(image), "--pubkey", stranger], { env }),
        10,
        "SIGNATURE_INVALID",
        "another publisher key",
      );
      const old = await sr.pushBusybox(REPO, "old", "contract v0");
      await sr.sign(old.digest, { repository: REPO, logIndex: 90 });
      assertFailure(
        await runCli(["check", ...common(`${sr.reg.host}/${REPO}:old`)], { env }),
        11,
        "ROLLBACK",
        "older",
      );
      assertFailure(
        await runCli(["check", ...common(`${sr.reg.host}/no/such:latest`)], { env }),
        12,
        "REGISTRY_NOT_FOUND",
        "no such repository",
      );
      const junk = join(tmp.path, "junk.tar");
      await Deno.writeFile(junk, new Uint8Array(4096).fill(7));
      assertFailure(
        await runCli(["load-archive", junk, ...common(image)], { env }),
        13,
        "ARCHIVE_INVALID",
        "junk",
      );
      assertFailure(
        await runCli(["verify-local", ...common(image), "--runtime-path", "/nonexistent/podman"], { env }),
        14,
        "RUNTIME_NOT_FOUND",
        "no runtime",
      );
      assertFailure(
        // $SIGSTORE_REKOR_PUBLIC_KEY is read when no --rekor-key is given
        await runCli(["verify-local", "--json", "--data-dir", dataDir], {
          env,
          permissions: ["--allow-read", "--allow-run"],
        }),
        2,
        "PERMISSION_DENIED",
        "started without --allow-env",
      );
    },
  );
});

Deno.test("contract: the other shapes: an index, a rejected signature beside a verified one, a bundle-only image", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using tmp = makeTempDir("contract-shapes");
  const env = { ...pm.env, ...sr.env };
  const common = (
    ref: string,
    data: string,
  ) => [...sr.cliArgs(ref, join(tmp.path, data)), "--runtime", "podman", "--json"];

  await t.step("an index signed once by the publisher and once by a stranger", async () => {
    const idx = await buildMultiArchImage(join(tmp.path, "multi"), { text: "contract index" });
    await sr.push(idx, REPO, "idx");
    const reference = `${sr.reg.host}/${REPO}`;
    const signed = [sr.publisher, createTestKey()].map((publisher, i) =>
      signImage({ digest: idx.digest, reference, publisher, rekor: sr.rekor, logIndex: 200 + i })
    );
    await sr.pushSignatureManifest(REPO, signatureManifest(idx.digest, signed));
    const image = `${reference}:idx`;
    const check = assertDocument(
      await runCli(["check", ...common(image, "a")], { env }),
      3,
      "check",
      "an index",
    );
    const remote = Object(check["remote"]);
    assert.equal(Reflect.get(remote, "platformDigests").length, 2);
    const verdicts = Reflect.get(remote, "signatures").map((s: unknown) => Reflect.get(Object(s), "verdict"));
    assert.deepEqual(verdicts, ["verified", "rejected"]);
    const upgraded = assertDocument(
      await runCli(["upgrade", ...common(image, "d")], { env }),
      0,
      "upgrade",
      "an index",
    );
    assert.equal(upgraded["platform"], "linux/amd64");
    assert.notEqual(upgraded["platformDigest"], upgraded["digest"]);
    const archive = join(tmp.path, "idx.tar");
    const prepared = await runCli([
      "prepare-archive",
      "--arch",
      "amd64",
      "--output",
      archive,
      ...common(image, "b"),
    ], {
      env,
    });
    assert.equal(assertDocument(prepared, 0, "prepare-archive", "an index")["kind"], "imageIndex");
    const loaded = await runCli(["load-archive", archive, ...common(image, "c")], { env });
    assert.equal(assertDocument(loaded, 0, "load-archive", "an index")["platform"], "linux/amd64");
  });

  await t.step("a cosign v3 bundle-only image (referrers tag schema)", async () => {
    const log = new TestRekorLog({ key: createTestKey() });
    const root = join(tmp.path, "trusted_root.json");
    await Deno.writeTextFile(root, testTrustedRoot([log]));
    const img = await sr.pushBusybox("sandbox/v3", "latest", "contract bundle");
    const bundle = signImageBundle({ digest: img.digest, publisher: sr.publisher, log });
    await pushBundleReferrers(sr.clientOptions, `${sr.reg.host}/sandbox/v3`, {
      mediaType: img.mediaType,
      digest: img.digest,
      size: img.size,
    }, [bundle.json]);
    const image = `${sr.reg.host}/sandbox/v3:latest`;
    const r = await runCli(["check", ...common(image, "e"), "--trusted-root", root], { env });
    const check = assertDocument(r, 3, "check", "a bundle-only image");
    const report = Object(Reflect.get(Object(check["remote"]), "signatures")[0]);
    assert.equal(Reflect.get(report, "kind"), "bundle");
    assert.equal(Reflect.get(report, "source"), "referrer");
    assert.equal(Reflect.get(report, "dockerReference"), null);
  });
});

Deno.test("contract: verify-bundle --json of a cosign v3 bundle under a test trusted root", async () => {
  await using tmp = makeTempDir("contract-bundle");
  const publisher = createTestKey();
  const log = new TestRekorLog({ key: createTestKey() });
  const digest = `sha256:${"ab".repeat(32)}`;
  const bundle = join(tmp.path, "bundle.json");
  const root = join(tmp.path, "trusted_root.json");
  const key = join(tmp.path, "cosign.pub");
  await Deno.writeTextFile(bundle, signImageBundle({ digest, publisher, log }).json);
  await Deno.writeTextFile(root, testTrustedRoot([log]));
  await Deno.writeTextFile(key, publisher.publicPem);
  const args = ["verify-bundle", "--json", "--bundle", bundle, "--trusted-root", root, "--key", key, digest];
  const doc = assertDocument(await runCli(args), 0, "verify-bundle", "key-signed DSSE bundle");
  assert.equal(doc["artifactDigest"], digest);
  assertFailure(
    await runCli([...args.slice(0, -1), `sha256:${"cd".repeat(32)}`]),
    10,
    "POLICY_DIGEST_MISMATCH",
    "verify-bundle for another artifact",
  );
});

Deno.test("contract: attest-provenance --json of the slsa-verifier v2.1.0 container vector", async () => {
  const layout = new URL(
    "../testdata/vectors/slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/v2.1.0/container_workflow_dispatch",
    import.meta.url,
  ).pathname;
  const r = await runCli([
    "attest-provenance",
    `oci:${layout}`,
    "--repository",
    "slsa-framework/example-package",
    "--json",
  ]);
  const doc = assertDocument(r, 0, "attest-provenance", "slsa-verifier v2.1.0 vector");
  assert.equal(Reflect.get(Object(doc["claims"]), "slsaLevel"), 3);
});

Deno.test("contract: trust-root update, show and export-rekor-key --json (a TUF repository on loopback)", async () => {
  await using tmp = makeTempDir("contract-tuf");
  const repo = new TestTufRepo();
  repo.publish(
    await Deno.readFile(
      new URL("../testdata/vectors/sigstore-root-signing/targets/trusted_root.json", import.meta.url),
    ),
    { version: 2 },
  );
  const server = repo.serve();
  try {
    const dataDir = join(tmp.path, "data");
    const rootFile = join(tmp.path, "root.json");
    await Deno.writeFile(rootFile, repo.rootBytes);
    const data = ["--data-dir", dataDir, "--json"];
    const update = await runCli([
      "trust-root",
      "update",
      "--tuf-url",
      server.url,
      "--tuf-root",
      rootFile,
      ...data,
    ]);
    assertDocument(update, 0, "trust-root-update", "stored through TUF");
    const show = assertDocument(
      await runCli(["trust-root", "show", ...data]),
      0,
      "trust-root-show",
      "data dir",
    );
    assert.equal(Reflect.get(Object(show["trustedRoot"]), "source"), "data-dir");
    assertDocument(
      await runCli(["trust-root", "export-rekor-key", "--all", ...data]),
      0,
      "trust-root-export-rekor-key",
      "--all",
    );
    repo.publish(new TextEncoder().encode("{}"), { version: 3 });
    assertFailure(
      await runCli(["trust-root", "update", "--tuf-url", server.url, ...data]),
      10,
      "TRUST_ROOT_INVALID",
      "a TUF-signed target that is no trusted root",
    );
  } finally {
    await server.close();
  }
});

Deno.test("contract: every command has a schema, and every schema validated a real output above", () => {
  const files = new Set(schemaFiles());
  const commands = buildProgram(() => {}).commands.map((c) => c.name()).filter((n) =>
    !NO_JSON_DOCUMENT.has(n)
  );
  assert.ok(commands.length >= 9, commands.join(" "));
  for (const name of commands) {
    // a command with actions (trust-root update|show|…) has one schema per action: NAME-ACTION.schema.json
    const covered = files.has(`${name}.schema.json`) || [...files].some((f) => f.startsWith(`${name}-`));
    assert.ok(covered, `command ${name} has no schema`);
  }
  for (const file of files) {
    if (file === COMMON_SCHEMA) continue; // definitions only, validated through the others
    assert.ok((contract.validated.get(file) ?? []).length > 0, `${file} validated no real output`);
  }
  const report = [...contract.validated].map(([f, outputs]) => `${f}: ${[...new Set(outputs)].join("; ")}`);
  // deno-lint-ignore no-console -- the coverage report is the measurement the issue asks for
  console.log(report.join("\n"));
});
