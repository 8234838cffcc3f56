/**
 * `loadArchive()` (and the `load-archive` CLI) against the hostile corpus of
 * `tests/_helpers/hostile_archives.ts`: every archive is refused with the right exit code, one line, and
 * neither the runtime's images nor the signature store change.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError, exitCodeFor } from "../../src/errors.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { loadArchive } from "../../src/update/load_archive.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { runCli } from "../_helpers/cli.ts";
import { createTestKey, signatureManifest, signImage } from "../_helpers/cosign_signer.ts";
import { hostileArchives } from "../_helpers/hostile_archives.ts";
import {
  type ArchiveWorld,
  imageSnapshot,
  REPO,
  startArchiveWorld,
  treeSnapshot,
} from "./_archive_fixture.ts";

/**
 * The hostile corpus built from a valid archive, with a signature manifest for `other` (another digest)
 * and one for the image made with a key nobody trusts.
 */
function hostileCases(w: ArchiveWorld, valid: Uint8Array, other: string): ReturnType<typeof hostileArchives> {
  const reference = `${w.sr.reg.host}/${REPO}`;
  const sign = (digest: string, publisher = w.sr.publisher) =>
    signImage({ digest, reference, publisher, rekor: w.sr.rekor, logIndex: 101 });
  return hostileArchives(valid, {
    forOtherDigest: signatureManifest(other, [sign(other)]),
    byOtherKey: signatureManifest(w.img.digest, [sign(w.img.digest, createTestKey())]),
  });
}

Deno.test("loadArchive() refuses every hostile archive with the right exit code; runtime and store unchanged", async () => {
  await using w = await startArchiveWorld();
  const valid = join(w.tmp.path, "valid.tar");
  const data = await w.dataDir("hostile");
  using ctx = await w.context(data);
  await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: valid });
  await loadArchive(ctx, valid); // installed: the store and the runtime hold something to protect
  const reference = `${w.sr.reg.host}/${REPO}`;
  const cases = hostileCases(w, await Deno.readFile(valid), "sha256:" + "b".repeat(64));
  assert.ok(cases.length >= 25, `only ${cases.length} cases`);
  await w.pm.podman(["rmi", `${reference}:latest`]); // nothing of the image left in the runtime
  const images = await imageSnapshot(w.pm);
  const store = await treeSnapshot(data);
  for (const c of cases) {
    const file = join(w.tmp.path, "hostile.tar");
    await Deno.writeFile(file, c.bytes);
    const err = await loadArchive(ctx, file).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DangerzoneError, `${c.name}: accepted or crashed: ${String(err)}`);
    assert.equal(exitCodeFor(err.code), c.exitCode, `${c.name}: ${err.code} ${err.message}`);
    assert.ok(!err.message.includes("\n"), `${c.name}: more than one line`);
    assert.deepEqual(await imageSnapshot(w.pm), images, `${c.name}: the runtime changed`);
    assert.deepEqual(await treeSnapshot(data), store, `${c.name}: the store changed`);
  }
});

Deno.test("load-archive CLI: hostile archives exit 13 or 10 with one stderr line; nothing loaded", async () => {
  await using w = await startArchiveWorld();
  const valid = join(w.tmp.path, "valid.tar");
  const data = await w.dataDir("cli");
  {
    using ctx = await w.context(await w.dataDir("prep"));
    await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: valid });
  }
  const cases = hostileCases(w, await Deno.readFile(valid), "sha256:" + "c".repeat(64));
  const images = await imageSnapshot(w.pm);
  const picked = [
    "a symlink blob",
    "a truncated archive (in a blob)",
    "two images",
    "a signature for another digest",
  ];
  for (const c of cases.filter((x) => picked.includes(x.name))) {
    const file = join(w.tmp.path, "hostile.tar");
    await Deno.writeFile(file, c.bytes);
    const r = await runCli(["load-archive", file, ...w.sr.cliArgs(w.image, data)], { env: w.env });
    assert.equal(r.code, c.exitCode, `${c.name}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, `${c.name}: ${r.stderr}`);
    assert.ok(!r.stdout.includes("loaded "), r.stdout);
    assert.deepEqual(await imageSnapshot(w.pm), images);
    assert.deepEqual(await treeSnapshot(join(data, "signatures")), []);
  }
});
