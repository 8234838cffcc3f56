/**
 * `verify-local` with real podman and with the docker CLI against podman's API socket: the runtime's
 * image has stored signatures that verify; the index-versus-platform digest case (Dangerzone #1516);
 * exit 10 naming the problem (no image, no stored signatures, signatures for another digest, stored
 * signatures that do not verify).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildLocalContext, trustFrom } from "../../src/cli/_context.ts";
import { Output } from "../../src/cli/output.ts";
import { field, oneLine, runCli } from "../_helpers/cli.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { buildMultiArchImage } from "../_helpers/images.ts";
import { type RunningPodman, startDockerApi, startPodman } from "../_helpers/podman.ts";
import { staticClosure } from "../_helpers/module_graph.ts";
import { makeTempDir, runCommand } from "../_helpers/process.ts";
import { pushBundleReferrers, signImageBundle, TestRekorLog } from "../_helpers/sigstore_signer.ts";
import { type SignedRegistry, startSignedRegistry } from "../update/_fixture.ts";

const REPO = "sandbox/multi";

interface Setup {
  indexDigest: string;
  amd64Digest: string;
  image: string;
}

/** Pushes a multi-arch index; signs the index and its amd64 manifest (as Dangerzone's publisher does). */
async function publishMultiArch(sr: SignedRegistry): Promise<Setup> {
  const idx = await buildMultiArchImage(join(sr.dir, "multi"), { text: "multi v1" });
  await sr.push(idx, REPO, "1.0");
  const amd64 = idx.platforms.find((p) => p.platform === "linux/amd64");
  assert.ok(amd64 !== undefined);
  await sr.sign(idx.digest, { repository: REPO, logIndex: 300 });
  await sr.sign(amd64.digest, { repository: REPO, logIndex: 301 });
  return { indexDigest: idx.digest, amd64Digest: amd64.digest, image: `${sr.reg.host}/${REPO}:1.0` };
}

async function pullPlatform(pm: RunningPodman, sr: SignedRegistry, setup: Setup): Promise<void> {
  // As after a load: the runtime knows only the per-platform manifest digest.
  await pm.podman(["pull", "-q", "--tls-verify=false", `${sr.reg.host}/${REPO}@${setup.amd64Digest}`]);
  await pm.podman(["tag", `${sr.reg.host}/${REPO}@${setup.amd64Digest}`, setup.image]);
}

Deno.test("verify-local() with real podman: index and per-platform digests, and every refusal", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("local-data");
  const setup = await publishMultiArch(sr);
  const env = { ...pm.env, ...sr.env };
  const args = (dataDir: string) => [...sr.cliArgs(setup.image, dataDir), "--runtime", "podman"];
  const dataDir = join(data.path, "a");

  await t.step("no image in the runtime: exit 10 naming it", async () => {
    const r = await runCli(["verify-local", ...args(dataDir)], { env });
    assert.equal(r.code, 10, r.stderr);
    assert.match(oneLine(r.stderr), /^error: podman holds no image .*sandbox\/multi:1\.0/);
  });

  await pm.podman(["pull", "-q", "--tls-verify=false", setup.image]);

  await t.step("image but no stored signatures: exit 10", async () => {
    const r = await runCli(["verify-local", ...args(dataDir), "--json"], { env });
    assert.equal(r.code, 10, r.stderr);
    assert.equal(field(JSON.parse(r.stdout), "error", "code"), "SIGNATURE_MISSING");
    assert.match(oneLine(r.stderr), /no stored signatures for /);
  });

  await t.step("pulled index + stored index signatures: exit 0 on the index digest", async () => {
    const s = await runCli(["store-signatures", ...args(dataDir)], { env });
    assert.equal(s.code, 0, s.stderr);
    const r = await runCli(["verify-local", ...args(dataDir), "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const doc: unknown = JSON.parse(r.stdout);
    assert.equal(field(doc, "digest"), setup.indexDigest);
    assert.equal(field(doc, "runtime"), "podman");
    assert.equal(field(doc, "signatures", "0", "logIndex"), 300);
  });

  await t.step("a broken stored file of a later runtime digest is never reached: exit 0", async () => {
    // Digests are tried in the runtime's order and the first that verifies decides: the platform
    // digest podman also reports (after the index one) is not read.
    const keyDir = join(dataDir, "signatures");
    let broken = "";
    for await (const e of Deno.readDir(keyDir)) {
      if (e.isDirectory) broken = join(keyDir, e.name, `${setup.amd64Digest.slice(7)}.bundles.json`);
    }
    await Deno.mkdir(broken);
    const r = await runCli(["verify-local", ...args(dataDir), "--json"], { env });
    await Deno.remove(broken);
    assert.equal(r.code, 0, r.stderr);
    const doc: unknown = JSON.parse(r.stdout);
    assert.deepEqual(field(doc, "runtimeDigests"), [setup.indexDigest, setup.amd64Digest]);
    assert.equal(field(doc, "digest"), setup.indexDigest);
  });

  await t.step(
    "runtime holds only the platform image, store has the index: exit 10, another digest",
    async () => {
      await pm.podman(["rmi", "-f", setup.image]);
      await pullPlatform(pm, sr, setup);
      const r = await runCli(["verify-local", ...args(dataDir), setup.image], { env });
      assert.equal(r.code, 10, r.stderr);
      assert.match(oneLine(r.stderr), /stored signatures are for other digests \(sha256:/);
    },
  );

  await t.step(
    "platform signatures stored too: exit 0 on the platform digest (Dangerzone #1516)",
    async () => {
      const s = await runCli([
        "store-signatures",
        ...args(dataDir),
        "--image",
        `${sr.reg.host}/${REPO}@${setup.amd64Digest}`,
      ], { env });
      assert.equal(s.code, 0, s.stderr);
      const r = await runCli(["verify-local", ...args(dataDir), "--json"], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(field(JSON.parse(r.stdout), "digest"), setup.amd64Digest);
    },
  );

  await t.step("a stored file that was tampered with: exit 10, nothing trusted", async () => {
    const keyDir = join(dataDir, "signatures");
    let file = "";
    for await (const e of Deno.readDir(keyDir)) {
      if (e.isDirectory) file = join(keyDir, e.name, `${setup.amd64Digest.slice(7)}.json`);
    }
    const text = await Deno.readTextFile(file);
    // Point the stored signature at another image: the payload changes, the signature no longer verifies.
    const list: unknown = JSON.parse(text);
    assert.ok(Array.isArray(list));
    const entry: unknown = list[0];
    const payload = atob(String(field(entry, "Payload"))).replace(setup.amd64Digest, setup.indexDigest);
    Reflect.set(entry ?? {}, "Payload", btoa(payload));
    await Deno.writeTextFile(file, JSON.stringify(list));
    const r = await runCli(["verify-local", ...args(dataDir)], { env });
    assert.equal(r.code, 10, r.stderr);
    assert.match(oneLine(r.stderr), /do not verify: .*rule 2 \(signature\)/);
  });
});

Deno.test("verify-local() with the docker CLI against podman's API socket", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using api = await startDockerApi(pm);
  await using data = makeTempDir("local-data");
  const setup = await publishMultiArch(sr);
  await pm.podman(["pull", "-q", "--tls-verify=false", setup.image]);
  const env = { ...api.env, ...sr.env };
  const args = [...sr.cliArgs(setup.image, data.path), "--runtime", "docker"];
  const s = await runCli(["store-signatures", ...args], { env });
  assert.equal(s.code, 0, s.stderr);
  const r = await runCli(["verify-local", ...args], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^verified: .*sandbox\/multi:1\.0 \(docker, sha256:[0-9a-f]{64}\) has 1 of 1 stored/,
  );
  const missing = await runCli(["verify-local", ...args, `${sr.reg.host}/sandbox/none:1`], { env });
  assert.equal(missing.code, 10, missing.stderr);
  assert.match(oneLine(missing.stderr), /^error: docker holds no image /);
});

Deno.test("verify-local loads no registry code, no Sigstore bundle library and no prompt library", async () => {
  const loaded = await staticClosure(new URL("../../src/cli/verify_local.ts", import.meta.url));
  assert.ok(
    loaded.some((s) => s.endsWith("/src/sigstore/cosign/verifier.ts")),
    "the key-based verifier is loaded",
  );
  const heavy = loaded.filter((s) =>
    /\/src\/registry\/|\/src\/sigstore\/[a-z]+\/(bundle|bundle_signature|bundle_verifier|trusted_root)\.ts$|^npm:@sigstore\/|^npm:@inquirer\//
      .test(s)
  );
  assert.deepEqual(heavy, []);
  // main.ts loads only the command table and the start-up parser before it knows the command; commander
  // and each command's module are imported once known
  const main = await staticClosure(new URL("../../main.ts", import.meta.url));
  assert.deepEqual(
    main.filter((s) => /\/src\/(update|sigstore|registry|runtime|layout|store)\//.test(s)),
    [],
  );
  // Deno's Node compatibility layer starts at the first `node:` import and costs more than the whole
  // verification (see scripts/bench-verify-local): none on verify-local's way, nor any npm package
  for (const closure of [main, loaded]) {
    assert.deepEqual(closure.filter((s) => /^(node|npm):/.test(s)), []);
  }
});

Deno.test("verify-local runs the runtime once (no version probe) with podman found on PATH", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("local-once");
  const setup = await publishMultiArch(sr);
  await pm.podman(["pull", "-q", "--tls-verify=false", setup.image]);
  const args = sr.cliArgs(setup.image, join(data.path, "state"));
  const s = await runCli(["store-signatures", ...args, "--runtime", "podman"], {
    env: { ...pm.env, ...sr.env },
  });
  assert.equal(s.code, 0, s.stderr);
  // a podman first on PATH that records each call, then runs the real one
  const real = (await runCommand("sh", ["-c", "command -v podman"])).stdout.trim();
  const bin = join(data.path, "bin");
  await Deno.mkdir(bin);
  const calls = join(data.path, "calls");
  await Deno.writeTextFile(join(bin, "podman"), `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${real}' "$@"\n`);
  await Deno.chmod(join(bin, "podman"), 0o755);
  const env = { ...pm.env, ...sr.env, PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` };
  const r = await runCli(["verify-local", ...args, "--json"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(field(JSON.parse(r.stdout), "runtime"), "podman");
  assert.deepEqual((await Deno.readTextFile(calls)).trim().split("\n"), [`image inspect -- ${setup.image}`]);

  // The runtime is asked first, so that the keys and trust are read while it answers: a key that does
  // not load is still reported (one line), after the one runtime call.
  await Deno.remove(calls);
  const notAKey = join(data.path, "not-a-key.pem");
  await Deno.writeTextFile(notAKey, "not a key\n");
  const bad = await runCli(["verify-local", ...args, "--pubkey", notAKey], { env });
  assert.notEqual(bad.code, 0);
  assert.match(oneLine(bad.stderr), /^error: /);
  assert.deepEqual((await Deno.readTextFile(calls)).trim().split("\n"), [`image inspect -- ${setup.image}`]);
});

Deno.test("verify-local builds the bundles' trusted root only when asked (not for legacy signatures)", async () => {
  await using dir = makeTempDir("local-lazy-root");
  const publisher = join(dir.path, "cosign.pub");
  const rekor = createTestKey();
  const rekorFile = join(dir.path, "rekor.pub");
  await Deno.writeTextFile(publisher, createTestKey().publicPem);
  await Deno.writeTextFile(rekorFile, rekor.publicPem);
  const options = { pubkey: publisher, rekorKey: rekorFile, dataDir: join(dir.path, "data") };
  let built = 0;
  const ctx = await buildLocalContext(options, new Output({}), {
    trust: async (o) => {
      const trust = await trustFrom(o);
      return {
        ...trust,
        trustedRoot: () => {
          built++;
          return trust.trustedRoot();
        },
      };
    },
  });
  assert.equal(built, 0, "the context alone builds no trusted root");
  const root = await ctx.bundleTrustedRoot();
  assert.equal(built, 1);
  // the override rule: the default root with exactly the --rekor-key log
  assert.deepEqual(root?.rekorLogs.map((l) => l.logIdHex), ctx.rekorKeys.logIds());
});

Deno.test("verify-local with a Rekor key override verifies stored bundles against that key", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("local-override");
  const shard = new TestRekorLog({ key: createTestKey(), name: "log2026-1.rekor.test.local", prefill: 2 });
  const shardKeyFile = join(data.path, "shard.pub");
  await Deno.writeTextFile(shardKeyFile, shard.key.publicPem);
  const repo = "sandbox/local-override";
  const img = await sr.pushBusybox(repo, "latest", "local override");
  const image = `${sr.reg.host}/${repo}:latest`;
  const signed = signImageBundle({
    digest: img.digest,
    publisher: sr.publisher,
    log: shard,
    integratedTime: 1,
  });
  await pushBundleReferrers(
    sr.clientOptions,
    `${sr.reg.host}/${repo}`,
    { mediaType: img.mediaType, digest: img.digest, size: img.size },
    [signed.json],
  );
  const env = { ...pm.env, ...sr.env };
  const args = [
    "--image",
    image,
    "--pubkey",
    sr.pubkeyFile,
    "--data-dir",
    join(data.path, "d"),
    "--runtime",
    "podman",
  ];
  const up = await runCli(["upgrade", ...args, "--rekor-key", shardKeyFile], { env });
  assert.equal(up.code, 0, up.stderr);

  const r = await runCli(["verify-local", ...args, "--rekor-key", shardKeyFile, "--json"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(field(JSON.parse(r.stdout), "digest"), img.digest);
  assert.equal(field(JSON.parse(r.stdout), "signatures", "0", "logId"), shard.logId);
  // without the override the production root refuses the same stored bundle
  const refused = await runCli(["verify-local", ...args], { env });
  assert.equal(refused.code, 10, refused.stderr);
});
