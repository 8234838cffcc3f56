/**
 * Clients against a mirror (issue 10, item 4), as users run them (the CLI as a child process, real
 * registry, real podman): `check`, `upgrade`, `verify-local` and `store-signatures` with
 * `--image <mirror>/... --identity <publisher repo>` behave exactly as against the publisher; and a
 * mirror that others can push to cannot make a client install anything unsigned, signed with another
 * key, signed for another repository, or older than what it has: one test each, the client's podman
 * images and signature store unchanged afterwards. `attest-provenance` finds the same `.att` attestation
 * through the mirror as at the publisher.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { type CliResult, field, runCli } from "../_helpers/cli.ts";
import { pushLayoutAttestations } from "../_helpers/layout_attestations.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import type { BuiltImage } from "../_helpers/images.ts";
import { type RunningPodman, startPodman } from "../_helpers/podman.ts";
import { makeTempDir, type TempDir } from "../_helpers/process.ts";
import { type SignedRegistry, startSignedRegistry } from "./_fixture.ts";

const PUBLISHER = "pub/dangerzone";
const MIRROR = "fleet/dangerzone";

/** A publisher, a mirror of it on the same registry, a podman client that installed v1 from the mirror. */
interface Fleet extends AsyncDisposable {
  sr: SignedRegistry;
  pm: RunningPodman;
  tmp: TempDir;
  v1: BuiltImage;
  env: Record<string, string>;
  /** CLI arguments of a client of the mirror (with `--identity`). */
  client(command: string): string[];
  /** Runs `mirror` from the publisher into the mirror repository. */
  mirror(): Promise<CliResult>;
}

async function startFleet(name: string): Promise<Fleet> {
  const sr = await startSignedRegistry("plain");
  const pm = await startPodman();
  const tmp = makeTempDir(name);
  const env = { ...pm.env, ...sr.env };
  const v1 = await sr.pushBusybox(PUBLISHER, "latest", "v1");
  await sr.sign(v1.digest, { repository: PUBLISHER, logIndex: 100 });
  const fleet: Fleet = {
    sr,
    pm,
    tmp,
    v1,
    env,
    client: (command) => [
      command,
      ...sr.cliArgs(`${sr.reg.host}/${MIRROR}:latest`, join(tmp.path, "client")),
      "--identity",
      `${sr.reg.host}/${PUBLISHER}`,
      "--runtime",
      "podman",
      "--json",
    ],
    mirror: () =>
      runCli([
        "mirror",
        ...sr.cliArgs(`${sr.reg.host}/${PUBLISHER}:latest`, join(tmp.path, "mirror")),
        "--to",
        `${sr.reg.host}/${MIRROR}`,
      ], { env }),
    async [Symbol.asyncDispose]() {
      await pm[Symbol.asyncDispose]();
      await tmp.remove();
      await sr[Symbol.asyncDispose]();
    },
  };
  const mirrored = await fleet.mirror();
  assert.equal(mirrored.code, 0, mirrored.stderr);
  return fleet;
}

/** Every file of the client's signature store and state, with its content. */
async function storeSnapshot(dataDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string, prefix: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path, `${prefix}${e.name}/`);
      else out[`${prefix}${e.name}`] = await Deno.readTextFile(path);
    }
  }
  await walk(join(dataDir, "signatures"), "");
  return out;
}

async function podmanImages(pm: RunningPodman): Promise<string> {
  return (await pm.podman(["images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])).stdout
    .split("\n").sort().join("\n");
}

function exitWith(r: CliResult, code: number, errorCode: string): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(field(JSON.parse(r.stdout), "error", "code"), errorCode, r.stdout);
}

Deno.test("clients of a mirror with --identity: check, upgrade, verify-local, store-signatures as against the publisher", async () => {
  await using f = await startFleet("mirror-clients");
  const { sr } = f;
  const publisher = (command: string) => [
    command,
    ...sr.cliArgs(`${sr.reg.host}/${PUBLISHER}:latest`, join(f.tmp.path, "direct")),
    "--runtime",
    "podman",
    "--json",
  ];
  const viaMirror = await runCli(f.client("check"), { env: f.env });
  const direct = await runCli(publisher("check"), { env: f.env });
  assert.equal(viaMirror.code, 3, viaMirror.stderr);
  assert.equal(direct.code, 3, direct.stderr);
  for (const key of ["digest", "logs", "signatures", "platformDigests", "expectedReference", "freshness"]) {
    assert.deepEqual(
      field(JSON.parse(viaMirror.stdout), "remote", key),
      field(JSON.parse(direct.stdout), "remote", key),
      key,
    );
  }
  const up = await runCli(f.client("upgrade"), { env: f.env });
  assert.equal(up.code, 0, up.stderr);
  assert.equal(field(JSON.parse(up.stdout), "digest"), f.v1.digest);
  assert.equal((await runCli(f.client("check"), { env: f.env })).code, 0);
  const local = await runCli(f.client("verify-local"), { env: f.env });
  assert.equal(local.code, 0, local.stderr);
  const stored = await runCli(f.client("store-signatures"), { env: f.env });
  assert.equal(stored.code, 0, stored.stderr);
  assert.equal(
    await Deno.readTextFile(join(f.tmp.path, "client", "signatures", "last_log_index")),
    "100",
  );
});

/**
 * Installs v1 from the mirror, lets `attack` replace the mirror's tag, then runs `upgrade`: it must fail
 * with `exit`/`code`, podman's images and the signature store unchanged.
 */
async function refusesAttack(
  name: string,
  attack: (f: Fleet) => Promise<void>,
  exit: number,
  code: string,
): Promise<void> {
  await using f = await startFleet(name);
  const installed = await runCli(f.client("upgrade"), { env: f.env });
  assert.equal(installed.code, 0, installed.stderr);
  const images = await podmanImages(f.pm);
  const store = await storeSnapshot(join(f.tmp.path, "client"));
  assert.ok(Object.keys(store).length >= 2, JSON.stringify(Object.keys(store)));

  await attack(f);
  exitWith(await runCli(f.client("upgrade"), { env: f.env }), exit, code);
  exitWith(await runCli(f.client("store-signatures"), { env: f.env }), exit, code);
  assert.equal(await podmanImages(f.pm), images);
  assert.deepEqual(await storeSnapshot(join(f.tmp.path, "client")), store);
}

Deno.test("a mirror serving an unsigned image: the client refuses it (exit 10), nothing changes", async () => {
  await refusesAttack(
    "mirror-unsigned",
    async (f) => {
      await f.sr.pushBusybox(MIRROR, "latest", "unsigned evil");
    },
    10,
    "SIGNATURE_MISSING",
  );
});

Deno.test("a mirror serving an image signed with another key: refused (exit 10), nothing changes", async () => {
  await refusesAttack(
    "mirror-otherkey",
    async (f) => {
      const evil = await f.sr.pushBusybox(MIRROR, "latest", "other key");
      await f.sr.sign(evil.digest, {
        repository: MIRROR,
        reference: `${f.sr.reg.host}/${PUBLISHER}`,
        logIndex: 200,
        publisher: createTestKey(),
      });
    },
    10,
    "SIGNATURE_INVALID",
  );
});

Deno.test("a mirror serving an image the publisher signed for another repository: refused (exit 10)", async () => {
  await refusesAttack(
    "mirror-otherrepo",
    async (f) => {
      const other = await f.sr.pushBusybox(MIRROR, "latest", "signed for another repository");
      await f.sr.sign(other.digest, {
        repository: MIRROR,
        reference: `${f.sr.reg.host}/pub/other-app`,
        logIndex: 300,
      });
    },
    10,
    "POLICY_REFERENCE_MISMATCH",
  );
});

Deno.test("a mirror serving an older image than the client has: refused (exit 11), nothing changes", async () => {
  await refusesAttack(
    "mirror-older",
    async (f) => {
      const old = await f.sr.pushBusybox(MIRROR, "latest", "genuinely signed, older");
      await f.sr.sign(old.digest, {
        repository: MIRROR,
        reference: `${f.sr.reg.host}/${PUBLISHER}`,
        logIndex: 50,
      });
    },
    11,
    "ROLLBACK",
  );
});

const SLSA_LAYOUT = new URL(
  "../testdata/vectors/slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/v2.1.0/container_workflow_dispatch",
  import.meta.url,
).pathname;

Deno.test("attest-provenance reads the same attestations through a mirror as from the publisher", async () => {
  await using sr = await startSignedRegistry("plain");
  await using tmp = makeTempDir("mirror-attest");
  const img = await sr.pushBusybox(PUBLISHER, "latest", "attested");
  await sr.sign(img.digest, { repository: PUBLISHER, logIndex: 7 });
  {
    using client = new RegistryClient(sr.clientOptions);
    await pushLayoutAttestations(
      client,
      parseReference(`${sr.reg.host}/${PUBLISHER}`),
      SLSA_LAYOUT,
      img.digest,
    );
  }
  const mirrored = await runCli([
    "mirror",
    ...sr.cliArgs(`${sr.reg.host}/${PUBLISHER}:latest`, tmp.path),
    "--to",
    `${sr.reg.host}/${MIRROR}`,
    "--json",
  ], { env: sr.env });
  assert.equal(mirrored.code, 0, mirrored.stderr);
  assert.equal(field(JSON.parse(mirrored.stdout), "signatures", "legacyAttestations"), 1);
  const attest = (repo: string) =>
    runCli([
      "attest-provenance",
      `${sr.reg.host}/${repo}:latest`,
      "--repository",
      "slsa-framework/example-package",
      "--json",
    ], { env: sr.env });
  const direct = await attest(PUBLISHER);
  const viaMirror = await attest(MIRROR);
  // The only real provenance vector attests an image whose layers were pruned (it cannot be mirrored
  // through verify-then-copy), so it is attached to a test image: both runs find the same attestation and
  // stop at the same rule (its subject is the vector's image), with the same document.
  assert.equal(direct.code, 10, direct.stderr);
  assert.equal(field(JSON.parse(direct.stdout), "error", "code"), "POLICY_DIGEST_MISMATCH");
  assert.equal(viaMirror.code, direct.code, viaMirror.stderr);
  assert.equal(viaMirror.stdout, direct.stdout);
  // a mirror without the .att would answer differently
  const bare = await sr.pushBusybox("fleet/bare", "latest", "no attestation");
  await sr.sign(bare.digest, { repository: "fleet/bare", logIndex: 8 });
  const none = await attest("fleet/bare");
  assert.notEqual(field(JSON.parse(none.stdout), "error", "code"), "POLICY_DIGEST_MISMATCH", none.stdout);
});
