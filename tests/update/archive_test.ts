/**
 * `prepareArchive()` and `loadArchive()` against the real registry and a real podman: the exact layout
 * (`./` entries, `index.json` = `dangerzone.json` filtered to the image, `kind` annotations, blobs
 * byte-for-byte), multi-platform images signed per platform or only on the index, the rollback rule and
 * `force`, a plain `cosign save` layout directory, and failures that leave no file behind.
 *
 * @module
 */
import assert from "node:assert/strict";
import { pathExists as exists } from "../_helpers/cli.ts";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { loadArchive } from "../../src/update/load_archive.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { createProgress, type ProgressEvent } from "../../src/update/progress.ts";
import { buildMultiArchImage } from "../_helpers/images.ts";
import { runCommand } from "../_helpers/process.ts";
import { assertValidLayout } from "../_helpers/validate_layout.ts";
import { imageSnapshot, REPO, startArchiveWorld, treeSnapshot } from "./_archive_fixture.ts";

const AMD64 = parsePlatform("linux/amd64");

function json(bytes: Uint8Array): Record<string, unknown> {
  const v: unknown = JSON.parse(new TextDecoder().decode(bytes));
  assert.ok(typeof v === "object" && v !== null && !Array.isArray(v));
  return Object.fromEntries(Object.entries(v));
}

Deno.test("prepareArchive() writes the cosign save layout with dangerzone.json, byte-for-byte blobs, no .partial", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "dz.tar");
  using ctx = await w.context(await w.dataDir("prep"));
  const prepared = await prepareArchive(ctx, { platform: AMD64, output: out });
  assert.equal(prepared.image.digest, w.img.digest);
  assert.equal(prepared.kind, "image");
  assert.equal(prepared.signatures, 1);
  assert.equal(await exists(`${out}.partial`), false);

  const names = (await runCommand("tar", ["-tf", out])).stdout.trim().split("\n");
  assert.ok(names.every((n) => n.startsWith("./")), names.join(" "));
  assert.deepEqual(names.slice(0, 3), ["./", "./blobs/", "./blobs/sha256/"]);
  assert.deepEqual(names.slice(-3), ["./dangerzone.json", "./index.json", "./oci-layout"]);
  const dir = join(w.tmp.path, "unpacked");
  await Deno.mkdir(dir);
  await runCommand("tar", ["-xf", out, "-C", dir]);
  const dz = json(await Deno.readFile(join(dir, "dangerzone.json")));
  const index = json(await Deno.readFile(join(dir, "index.json")));
  const entries = dz.manifests;
  assert.ok(Array.isArray(entries));
  assert.deepEqual(entries.map((m: Record<string, Record<string, string>>) => m.annotations?.kind), [
    "dev.cosignproject.cosign/image",
    "dev.cosignproject.cosign/sigs",
  ]);
  // index.json is dangerzone.json filtered to the image, as the Python tool requires; no ref.name
  // annotation (cosign save writes none; the loader tags by the signed docker-reference).
  assert.deepEqual(index, { ...dz, manifests: entries.slice(0, 1) });
  assert.deepEqual(entries[0], {
    mediaType: w.img.mediaType,
    size: w.img.size,
    digest: w.img.digest,
    annotations: { kind: "dev.cosignproject.cosign/image" },
  });
  // Every blob is the registry's exact bytes (file name = sha256 of content, and the layout validates).
  for (const d of [w.img.digest, w.img.configDigest, ...w.img.layerDigests]) {
    assert.ok(await exists(join(dir, "blobs", "sha256", d.slice(7))), d);
  }
  const report = await assertValidLayout(dir);
  assert.equal(report.unreferenced.length, 0);
});

Deno.test("prepareArchive() of an unsigned image fails with SIGNATURE_MISSING and leaves no file", async () => {
  await using w = await startArchiveWorld();
  await w.sr.pushBusybox(REPO, "unsigned", "no signature");
  const out = join(w.tmp.path, "unsigned.tar");
  using ctx = await w.sr.context(`${w.sr.reg.host}/${REPO}:unsigned`, await w.dataDir("u"));
  await assert.rejects(
    prepareArchive(ctx, { platform: AMD64, output: out }),
    (e: unknown) => e instanceof DangerzoneError && e.code === "SIGNATURE_MISSING",
  );
  assert.equal(await exists(out), false);
  assert.equal(await exists(`${out}.partial`), false);
});

Deno.test("prepareArchive() of a multi-platform image signed per platform archives the platform manifest", async () => {
  await using w = await startArchiveWorld();
  const idx = await buildMultiArchImage(join(w.tmp.path, "multi"), { text: "multi" });
  await w.sr.push(idx, REPO, "multi");
  await w.sr.sign(idx.digest, { repository: REPO, logIndex: 200 });
  const amd = idx.platforms.find((p) => p.platform === "linux/amd64");
  const arm = idx.platforms.find((p) => p.platform === "linux/arm64");
  assert.ok(amd !== undefined && arm !== undefined);
  await w.sr.sign(amd.digest, { repository: REPO, logIndex: 201 });
  await w.sr.sign(arm.digest, { repository: REPO, logIndex: 202 });
  const image = `${w.sr.reg.host}/${REPO}:multi`;
  const out = join(w.tmp.path, "multi.tar");
  {
    using ctx = await w.sr.context(image, await w.dataDir("p"));
    const prepared = await prepareArchive(ctx, { platform: parsePlatform("arm64"), output: out });
    assert.equal(prepared.kind, "image");
    assert.equal(prepared.image.digest, arm.digest);
    assert.equal(prepared.rootDigest, idx.digest);
  }
  const dir = join(w.tmp.path, "u");
  await Deno.mkdir(dir);
  await runCommand("tar", ["-xf", out, "-C", dir]);
  await assertValidLayout(dir);
  // The amd64 archive loads into podman and the runtime reports the signed platform digest.
  const amdOut = join(w.tmp.path, "multi-amd64.tar");
  {
    using ctx = await w.sr.context(image, await w.dataDir("p2"));
    await prepareArchive(ctx, { platform: AMD64, output: amdOut });
  }
  const data = await w.dataDir("l");
  using ctx = await w.context(data, { image: (await w.sr.context(image, data)).image });
  const loaded = await loadArchive(ctx, amdOut);
  assert.equal(loaded.digest, amd.digest);
  const digests =
    (await w.pm.podman(["image", "inspect", "--format", "{{.Digest}}", `${w.sr.reg.host}/${REPO}:multi`]))
      .stdout.trim();
  assert.equal(digests, amd.digest);
});

Deno.test("prepareArchive() of an index signed only on the index archives the index with one platform; it loads", async () => {
  await using w = await startArchiveWorld();
  const idx = await buildMultiArchImage(join(w.tmp.path, "multi"), { text: "index only" });
  await w.sr.push(idx, REPO, "idx");
  await w.sr.sign(idx.digest, { repository: REPO, logIndex: 300 });
  const image = `${w.sr.reg.host}/${REPO}:idx`;
  const out = join(w.tmp.path, "idx.tar");
  {
    using ctx = await w.sr.context(image, await w.dataDir("p"));
    const prepared = await prepareArchive(ctx, { platform: AMD64, output: out });
    assert.equal(prepared.kind, "imageIndex");
    assert.equal(prepared.image.digest, idx.digest);
  }
  const names = (await runCommand("tar", ["-tf", out])).stdout;
  const arm = idx.platforms.find((p) => p.platform === "linux/arm64");
  assert.ok(
    arm !== undefined && !names.includes(arm.digest.slice(7)),
    "only the chosen platform is archived",
  );
  const data = await w.dataDir("l");
  using ctx = await w.context(data, { image: (await w.sr.context(image, data)).image });
  const loaded = await loadArchive(ctx, out);
  assert.equal(loaded.digest, idx.digest);
  assert.equal(loaded.platform, "linux/amd64");
});

Deno.test("loadArchive() refuses an older archive (ROLLBACK), store unchanged; force loads it with a warning", async () => {
  await using w = await startArchiveWorld({ logIndex: 100 });
  const older = join(w.tmp.path, "older.tar");
  {
    using ctx = await w.context(await w.dataDir("p1"));
    await prepareArchive(ctx, { platform: AMD64, output: older });
  }
  const img2 = await w.sr.pushBusybox(REPO, "latest", "archive v2");
  await w.sr.sign(img2.digest, { repository: REPO, logIndex: 150 });
  const newer = join(w.tmp.path, "newer.tar");
  {
    using ctx = await w.context(await w.dataDir("p2"));
    await prepareArchive(ctx, { platform: AMD64, output: newer });
  }
  const data = await w.dataDir("load");
  using ctx = await w.context(data);
  assert.equal((await loadArchive(ctx, newer)).digest, img2.digest);
  const store = await treeSnapshot(data);
  const images = await imageSnapshot(w.pm);
  await assert.rejects(
    loadArchive(ctx, older),
    (e: unknown) => e instanceof DangerzoneError && e.code === "ROLLBACK",
  );
  assert.deepEqual(await treeSnapshot(data), store);
  assert.deepEqual(await imageSnapshot(w.pm), images);
  // A declined confirmation is a refusal too.
  await assert.rejects(
    loadArchive(ctx, older, { force: true, confirmRollback: () => Promise.resolve(false) }),
    (e: unknown) => e instanceof DangerzoneError && e.code === "ROLLBACK",
  );
  assert.deepEqual(await treeSnapshot(data), store);
  // force bypasses only the rollback rule; the recorded log index never goes down.
  const asked: string[] = [];
  const forced = await loadArchive(ctx, older, {
    force: true,
    confirmRollback: (m) => {
      asked.push(m);
      return Promise.resolve(true);
    },
  });
  assert.equal(forced.rollbackBypassed, true);
  assert.equal(forced.digest, w.img.digest);
  assert.equal(asked.length, 1);
  assert.match(forced.warnings.join(" "), /OLDER/);
  assert.equal(await Deno.readTextFile(join(data, "signatures", "last_log_index")), "150");
});

Deno.test("loadArchive() accepts a plain cosign save layout directory, and refuses one with a tampered blob", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "dz.tar");
  using ctx = await w.context(await w.dataDir("x"));
  await prepareArchive(ctx, { platform: AMD64, output: out });
  const dir = join(w.tmp.path, "cosign-save");
  await Deno.mkdir(dir);
  await runCommand("tar", ["-xf", out, "-C", dir]);
  // cosign save writes the full index as index.json and no dangerzone.json.
  await Deno.rename(join(dir, "dangerzone.json"), join(dir, "index.json"));
  const loaded = await loadArchive(ctx, dir);
  assert.equal(loaded.form, "cosign-save");
  assert.equal(loaded.digest, w.img.digest);
  const layer = join(dir, "blobs", "sha256", (w.img.layerDigests[0] ?? "").slice(7));
  const bytes = await Deno.readFile(layer);
  bytes[100] = (bytes[100] ?? 0) ^ 1;
  await Deno.writeFile(layer, bytes);
  await w.pm.podman(["rmi", "-a", "-f"]);
  await assert.rejects(
    loadArchive(ctx, dir),
    (e: unknown) => e instanceof DangerzoneError && e.code === "ARCHIVE_INVALID",
  );
  assert.deepEqual(await imageSnapshot(w.pm), []);
});

Deno.test("loadArchive() loads nothing when a blob changes between the walk and the load (ARCHIVE_INVALID)", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "dz.tar");
  const data = await w.dataDir("changed");
  using ctx = await w.context(data);
  await prepareArchive(ctx, { platform: AMD64, output: out });
  const bytes = await Deno.readFile(out);
  const name = new TextEncoder().encode(`./blobs/sha256/${(w.img.layerDigests[0] ?? "").slice(7)}`);
  let header = -1;
  for (let i = 0; i + name.length <= bytes.length && header < 0; i += 512) {
    if (name.every((b, j) => bytes[i + j] === b)) header = i;
  }
  assert.ok(header >= 0, "layer entry found");
  const images = await imageSnapshot(w.pm);
  const store = await treeSnapshot(data);
  const steps: string[] = [];
  const err = await loadArchive(ctx, out, {
    onStep: (s) => {
      steps.push(s.step);
      // After the walk and the signature check, before the load: the layer's bytes change in place.
      if (s.step === "verified") {
        using file = Deno.openSync(out, { read: true, write: true });
        file.seekSync(header + 512 + 10, Deno.SeekMode.Start);
        file.writeSync(Uint8Array.of((bytes[header + 512 + 10] ?? 0) ^ 0xff));
      }
    },
  }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof DangerzoneError && err.code === "ARCHIVE_INVALID", String(err));
  assert.ok(steps.includes("load"), steps.join(" "));
  assert.deepEqual(await imageSnapshot(w.pm), images);
  assert.deepEqual(await treeSnapshot(data), store);
});

Deno.test("loadArchive() into a local podman unpacks the verified image into a scratch layout read in place", async () => {
  await using w = await startArchiveWorld();
  const out = join(w.tmp.path, "dz.tar");
  {
    using ctx = await w.context(await w.dataDir("p"));
    await prepareArchive(ctx, { platform: AMD64, output: out });
  }
  const data = await w.dataDir("load");
  // a staging dir left by a killed run goes too
  await Deno.mkdir(join(data, "dz-staging-ffffffffffffffff", "blobs"), { recursive: true });
  using ctx = await w.context(data);
  // Too little space for the staging copy: DISK_FULL before anything is unpacked or loaded.
  const images = await imageSnapshot(w.pm);
  await assert.rejects(
    loadArchive(ctx, out, { diskSpace: { available: () => Promise.resolve(1024) } }),
    (e: unknown) => e instanceof DangerzoneError && e.code === "DISK_FULL",
  );
  assert.deepEqual(await imageSnapshot(w.pm), images);
  assert.equal(await exists(join(data, "signatures")), false);

  const lines: string[] = [];
  const loaded = await loadArchive(ctx, out, {
    progress: createProgress({ mode: "ndjson", write: (t) => void lines.push(t) }),
  });
  assert.equal(loaded.digest, w.img.digest);
  const events: ProgressEvent[] = lines.map((l) => JSON.parse(l));
  for (const phase of ["unpack", "load"]) {
    const last = events.filter((e) => e.phase === phase).at(-1);
    assert.ok(last !== undefined && last.final && last.done === last.total && last.total > 0, phase);
  }
  const left = (await Array.fromAsync(Deno.readDir(data))).map((e) => e.name);
  assert.deepEqual(left.filter((n) => n.startsWith("dz-staging")), []);
  const names = (await imageSnapshot(w.pm)).join("\n");
  assert.doesNotMatch(names, /dz-staging/);
  assert.match(names, new RegExp(`${w.sr.reg.host}/${REPO}:latest`));
});
