/**
 * `prepareArchive()` and `loadArchive()` against the real registry and a real podman.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parsePlatform } from "../../src/oci/platform.ts";
import { loadArchive } from "../../src/update/load_archive.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { runCommand } from "../_helpers/process.ts";
import { REPO, startArchiveWorld } from "./_archive_fixture.ts";

Deno.test("prepareArchive() then loadArchive() round trip into podman", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "dz.tar");
  {
    using ctx = await w.context(await w.dataDir("prep"));
    const prepared = await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: out });
    assert.equal(prepared.image.digest, w.img.digest);
  }
  const list = await runCommand("tar", ["-tvf", out]);
  console.log(list.stdout);
  const data = await w.dataDir("load");
  using ctx = await w.context(data);
  const loaded = await loadArchive(ctx, out);
  assert.equal(loaded.digest, w.img.digest);
  assert.equal(loaded.image, `${w.sr.reg.host}/${REPO}:latest`);
  console.log((await w.pm.podman(["images", "--digests"])).stdout);
});
