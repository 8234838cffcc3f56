/**
 * `check` against the real registry and real podman: exit 3 when nothing is installed, 0 when the
 * runtime holds the verified image at the recorded log index, 3 with `--json` digests, log indexes and
 * age when a newer signed image is published, 11 on a rollback, 10 for a mirror's reference unless
 * `--identity` names it; and it never writes anything.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { field, oneLine, pathExists as exists, runCli } from "../_helpers/cli.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startSignedRegistry } from "../update/_fixture.ts";

const REPO = "sandbox/app";

Deno.test("check() exit codes and --json through install, update and rollback (real podman)", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("check-data");
  const dataDir = join(data.path, "state");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const env = { ...pm.env, ...sr.env };
  const args = [...sr.cliArgs(image, dataDir), "--runtime", "podman"];
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  const t1 = Math.floor(Date.now() / 1000) - 3 * 86400;
  await sr.sign(v1.digest, { repository: REPO, logIndex: 100, integratedTime: t1 });

  await t.step("nothing installed: exit 3, and nothing is written", async () => {
    const r = await runCli(["check", ...args, "--json"], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(field(JSON.parse(r.stdout), "status"), "update-available");
    assert.equal(field(JSON.parse(r.stdout), "installed", "digest"), null);
    assert.equal(await exists(dataDir), false, "check must not write anything");
  });

  await t.step("installed (pulled + stored): exit 0 with one human line", async () => {
    await pm.podman(["pull", "-q", "--tls-verify=false", image]);
    const s = await runCli(["store-signatures", ...args], { env });
    assert.equal(s.code, 0, s.stderr);
    const before = await Deno.readTextFile(join(dataDir, "signatures", "log_state.json"));
    const r = await runCli(["check", ...args], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^up to date: .* is sha256:[0-9a-f]{64} \(log index 100, signed 3 days ago\)/);
    assert.equal(await Deno.readTextFile(join(dataDir, "signatures", "log_state.json")), before);
  });

  await t.step("newer signed image: exit 3 with both digests, log indexes and age in --json", async () => {
    const v2 = await sr.pushBusybox(REPO, "latest", "v2");
    await sr.sign(v2.digest, { repository: REPO, logIndex: 150 });
    const r = await runCli(["check", ...args, "--json"], { env });
    assert.equal(r.code, 3, r.stderr);
    const doc: unknown = JSON.parse(r.stdout);
    assert.equal(field(doc, "status"), "update-available");
    assert.equal(field(doc, "remote", "digest"), v2.digest);
    assert.equal(field(doc, "remote", "logIndex"), 150);
    assert.equal(field(doc, "installed", "digest"), v1.digest);
    assert.equal(field(doc, "installed", "logIndex"), 100);
    assert.equal(field(doc, "installed", "runtime"), "podman");
    const age = field(doc, "signatureAgeSeconds");
    assert.ok(typeof age === "number" && age >= 0 && age < 600, `age ${String(age)}`);
    assert.equal(field(doc, "remote", "signatures", "0", "verdict"), "verified");
  });

  await t.step("an older image signed with a lower log index: rollback refused, exit 11", async () => {
    const old = await sr.pushBusybox(REPO, "latest", "v0");
    await sr.sign(old.digest, { repository: REPO, logIndex: 90 });
    const r = await runCli(["check", ...args], { env });
    assert.equal(r.code, 11, r.stderr);
    assert.match(oneLine(r.stderr), /^error: rollback refused: log index 90 is lower than the installed 100/);
  });
});

Deno.test("check() refuses a mirror's signed reference unless --identity names it", async () => {
  await using sr = await startSignedRegistry("token");
  await using data = makeTempDir("check-data");
  const img = await sr.pushBusybox("mirror/app", "latest", "mirrored");
  // The publisher signed the canonical repository; the image is served from a mirror repository.
  const canonical = `${sr.reg.host}/${REPO}`;
  await sr.sign(img.digest, { repository: "mirror/app", reference: canonical, logIndex: 5 });
  const image = `${sr.reg.host}/mirror/app:latest`;
  const args = [...sr.cliArgs(image, data.path), "--runtime-path", "/nonexistent/podman"];

  const refused = await runCli(["check", ...args, "--json"], { env: sr.env });
  assert.equal(refused.code, 10, refused.stderr);
  assert.equal(field(JSON.parse(refused.stdout), "error", "code"), "POLICY_REFERENCE_MISMATCH");
  assert.match(
    oneLine(refused.stderr),
    /signed docker-reference is ".*\/sandbox\/app", not ".*\/mirror\/app"/,
  );

  const wrong = await runCli(["check", ...args, "--identity", `${sr.reg.host}/other/app`], { env: sr.env });
  assert.equal(wrong.code, 10, wrong.stderr);

  const accepted = await runCli(["check", ...args, "--identity", `${canonical}:latest`], { env: sr.env });
  // No runtime answers: nothing installed counts as an update.
  assert.equal(accepted.code, 3, accepted.stderr);
  assert.match(accepted.stdout, /update available: .*nothing installed/);
});
