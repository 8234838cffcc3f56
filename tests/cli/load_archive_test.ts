/**
 * `load-archive` CLI end to end: prepare from the real registry, load into a fresh podman storage and
 * through the docker CLI (podman's API socket), then `verify-local` passes; `--force` on a non-TTY
 * loads an older archive with a warning; a rollback without it exits 11.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { startDockerApi } from "../_helpers/podman.ts";
import { REPO, startArchiveWorld, treeSnapshot } from "../update/_archive_fixture.ts";

Deno.test("load-archive into a fresh podman, then verify-local passes", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "dz.tar");
  const prep = await runCli([
    "prepare-archive",
    "--output",
    out,
    ...w.sr.cliArgs(w.image, await w.dataDir("p")),
  ], {
    env: w.env,
  });
  assert.equal(prep.code, 0, prep.stderr);
  const data = await w.dataDir("l");
  const r = await runCli(["load-archive", out, ...w.sr.cliArgs(w.image, data), "--json"], { env: w.env });
  assert.equal(r.code, 0, r.stderr);
  const doc: unknown = JSON.parse(r.stdout);
  assert.equal(Reflect.get(Object(doc), "digest"), w.img.digest);
  assert.equal(Reflect.get(Object(doc), "image"), `${w.sr.reg.host}/${REPO}:latest`);
  assert.equal(Reflect.get(Object(doc), "runtime"), "podman");
  const digest =
    (await w.pm.podman(["image", "inspect", "--format", "{{.Digest}}", `${w.sr.reg.host}/${REPO}:latest`]))
      .stdout.trim();
  assert.equal(digest, w.img.digest);
  // Only the final name remains (the staging name is gone).
  const names = (await w.pm.podman(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout.trim().split(
    "\n",
  );
  assert.deepEqual(names, [`${w.sr.reg.host}/${REPO}:latest`]);
  const v = await runCli(["verify-local", ...w.sr.cliArgs(w.image, data)], { env: w.env });
  assert.equal(v.code, 0, v.stderr + v.stdout);
});

Deno.test("load-archive through the docker CLI (podman API socket), then verify-local --runtime docker passes", async () => {
  await using w = await startArchiveWorld();
  await using api = await startDockerApi(w.pm);
  const out = join(w.tmp.path, "dz.tar");
  const prep = await runCli([
    "prepare-archive",
    "--output",
    out,
    ...w.sr.cliArgs(w.image, await w.dataDir("p")),
  ], {
    env: w.env,
  });
  assert.equal(prep.code, 0, prep.stderr);
  const data = await w.dataDir("d");
  const env = { ...w.env, ...api.env };
  const r = await runCli(["load-archive", out, "--runtime", "docker", ...w.sr.cliArgs(w.image, data)], {
    env,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /into docker/);
  const listed = (await api.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout;
  assert.match(listed, new RegExp(`${w.sr.reg.host}/${REPO}:latest`));
  const v = await runCli(["verify-local", "--runtime", "docker", ...w.sr.cliArgs(w.image, data)], { env });
  assert.equal(v.code, 0, v.stderr + v.stdout);
});

Deno.test("load-archive of an older archive exits 11 (store unchanged); --force on a non-TTY loads it with a warning", async () => {
  await using w = await startArchiveWorld({ logIndex: 10 });
  const older = join(w.tmp.path, "older.tar");
  const args = (data: string) => w.sr.cliArgs(w.image, data);
  assert.equal(
    (await runCli(["prepare-archive", "--output", older, ...args(await w.dataDir("a"))], { env: w.env }))
      .code,
    0,
  );
  const img2 = await w.sr.pushBusybox(REPO, "latest", "v2");
  await w.sr.sign(img2.digest, { repository: REPO, logIndex: 20 });
  const newer = join(w.tmp.path, "newer.tar");
  assert.equal(
    (await runCli(["prepare-archive", "--output", newer, ...args(await w.dataDir("b"))], { env: w.env }))
      .code,
    0,
  );
  const data = await w.dataDir("l");
  assert.equal((await runCli(["load-archive", newer, ...args(data)], { env: w.env })).code, 0);
  const store = await treeSnapshot(data);
  const refused = await runCli(["load-archive", older, ...args(data)], { env: w.env });
  assert.equal(refused.code, 11, refused.stderr);
  assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, /rollback refused/);
  assert.deepEqual(await treeSnapshot(data), store);
  const forced = await runCli(["load-archive", older, "--force", ...args(data)], { env: w.env });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stderr, /warning: --force: loading an image OLDER/);
  const digest =
    (await w.pm.podman(["image", "inspect", "--format", "{{.Digest}}", `${w.sr.reg.host}/${REPO}:latest`]))
      .stdout.trim();
  assert.equal(digest, w.img.digest);
  assert.equal(await Deno.readTextFile(join(data, "signatures", "last_log_index")), "20");
});

Deno.test("load-archive of a missing file exits 2 with one line", async () => {
  await using w = await startArchiveWorld();
  const r = await runCli([
    "load-archive",
    join(w.tmp.path, "nope.tar"),
    ...w.sr.cliArgs(w.image, await w.dataDir("m")),
  ], {
    env: w.env,
  });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
});
