/**
 * `prepare-archive` CLI against the real registry: the default output name, `--json`, NDJSON progress,
 * usage errors, and an unsigned image (exit 10, no file left).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { REPO, startArchiveWorld } from "../update/_archive_fixture.ts";

Deno.test("prepare-archive --arch amd64 writes dangerzone-amd64.tar in the working directory; --json reports it", async () => {
  await using w = await startArchiveWorld();
  const cwd = join(w.tmp.path, "cwd");
  await Deno.mkdir(cwd);
  const data = await w.dataDir("p");
  const r = await runCli(["prepare-archive", "--arch", "amd64", ...w.sr.cliArgs(w.image, data), "--json"], {
    env: w.env,
    cwd,
  });
  assert.equal(r.code, 0, r.stderr);
  const doc: unknown = JSON.parse(r.stdout);
  assert.equal(Reflect.get(Object(doc), "ok"), true);
  assert.equal(Reflect.get(Object(doc), "digest"), w.img.digest);
  assert.equal(Reflect.get(Object(doc), "kind"), "image");
  assert.equal(Reflect.get(Object(doc), "platform"), "linux/amd64");
  assert.equal(Reflect.get(Object(doc), "path"), "dangerzone-amd64.tar");
  const size = (await Deno.stat(join(cwd, "dangerzone-amd64.tar"))).size;
  assert.equal(Reflect.get(Object(doc), "archiveBytes"), size);
  // Progress: NDJSON events on stderr, the last one final.
  const events = r.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  assert.ok(events.length >= 1);
  assert.equal(events.at(-1).final, true);
  assert.equal(events.at(-1).phase, "download");
  // Nothing but the archive in the working directory; the data dir holds no state.
  assert.deepEqual((await Array.fromAsync(Deno.readDir(cwd))).map((e) => e.name), ["dangerzone-amd64.tar"]);
});

Deno.test("prepare-archive --platform linux/amd64 --output FILE: human output names the file", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "x.tar");
  const r = await runCli(
    [
      "prepare-archive",
      "--platform",
      "linux/amd64",
      "--output",
      out,
      ...w.sr.cliArgs(w.image, await w.dataDir("p")),
    ],
    { env: w.env },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`wrote ${out}: .*${REPO}`));
});

Deno.test("prepare-archive usage errors exit 2 with one line", async () => {
  await using w = await startArchiveWorld();
  const args = w.sr.cliArgs(w.image, await w.dataDir("u"));
  for (
    const bad of [["--arch", "amd64", "--platform", "linux/amd64"], ["--arch", "linux/amd64"], [
      "--platform",
      "amd64",
    ]]
  ) {
    const r = await runCli(["prepare-archive", ...bad, ...args], { env: w.env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("prepare-archive of an image with a tampered signature exits 10 and leaves no file", async () => {
  await using w = await startArchiveWorld();
  const img = await w.sr.pushBusybox(REPO, "other", "other");
  await w.sr.sign(img.digest, { repository: REPO, logIndex: 5, reference: "example.com/somebody/else" });
  const out = join(w.tmp.path, "bad.tar");
  const r = await runCli(
    [
      "prepare-archive",
      "--output",
      out,
      ...w.sr.cliArgs(`${w.sr.reg.host}/${REPO}:other`, await w.dataDir("b")),
    ],
    { env: w.env },
  );
  assert.equal(r.code, 10, r.stderr);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.equal(await Deno.stat(out).then(() => true, () => false), false);
  assert.equal(await Deno.stat(`${out}.partial`).then(() => true, () => false), false);
});
