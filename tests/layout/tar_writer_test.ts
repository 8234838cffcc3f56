import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";
import { OciArchiveWriter } from "../../src/layout/tar_writer.ts";
import { readOciArchive } from "../../src/layout/tar_reader.ts";
import { parseArchiveIndex } from "../../src/layout/archive_index.ts";
import { findBlobProblems } from "../../src/layout/blob_check.ts";
import { archiveRoots } from "../../src/layout/archive_index.ts";
import { makeSampleLayout, type SampleLayout } from "./_sample_layout.ts";
import { isSelfVerifying } from "../../src/oci/verify_stream.ts";

/** Writes `sample` as an archive at `path` through the writer, streaming each blob from the layout. */
async function writeArchive(
  sample: SampleLayout,
  path: string,
  meta?: { indexJson: Uint8Array },
): Promise<void> {
  const writer = await OciArchiveWriter.create(path);
  for (const d of sample.blobs) await writer.putBlob(d, await sample.dir.getBlob(d));
  await writer.finish(meta ?? { indexJson: sample.indexJson, dangerzoneJson: sample.dangerzoneJson });
}

async function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dz-layout-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("OciArchiveWriter round trip: dir -> tar -> readOciArchive -> dir keeps every blob byte-identical", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`, { layerBytes: 3 * 1024 * 1024 + 17 });
    await writeArchive(sample, `${tmp}/a.tar`);
    await assert.rejects(Deno.stat(`${tmp}/a.tar.partial`), Deno.errors.NotFound);
    const staging = await OciLayoutDir.create(`${tmp}/out`);
    using file = await Deno.open(`${tmp}/a.tar`);
    const contents = await readOciArchive(file, staging);
    assert.equal(contents.blobs.size, sample.blobs.length);
    for (const d of sample.blobs) {
      const a = await Deno.readFile(sample.dir.blobPath(d.digest));
      const b = await Deno.readFile(staging.blobPath(d.digest));
      assert.deepEqual(b, a, `blob ${d.digest} differs`);
    }
    assert.deepEqual(contents.untrustedIndexJson, sample.indexJson);
    assert.deepEqual(contents.untrustedDangerzoneJson, sample.dangerzoneJson);
    assert.deepEqual(await staging.readMetadata("index.json"), sample.indexJson);
    const index = parseArchiveIndex({
      untrustedIndexJson: contents.untrustedIndexJson,
      untrustedDangerzoneJson: contents.untrustedDangerzoneJson,
    });
    assert.equal(index.image.digest, sample.image.digest);
    assert.deepEqual(await findBlobProblems(staging, archiveRoots(index)), []);
  });
});

Deno.test("OciArchiveWriter output lists exactly the ./ entries of the format (GNU tar -tvf)", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    await writeArchive(sample, `${tmp}/a.tar`);
    const listed = await run("tar", ["-tf", `${tmp}/a.tar`]);
    assert.equal(listed.code, 0, listed.stderr);
    const expected = [
      "./",
      "./blobs/",
      "./blobs/sha256/",
      ...sample.blobs.map((d) => `./blobs/sha256/${d.digest.slice(7)}`),
      "./dangerzone.json",
      "./index.json",
      "./oci-layout",
    ];
    assert.deepEqual(listed.stdout.trimEnd().split("\n"), expected);
    const verbose = await run("tar", ["--numeric-owner", "--full-time", "-tvf", `${tmp}/a.tar`]);
    for (const line of verbose.stdout.trimEnd().split("\n")) {
      assert.match(line, /^(-rw-r--r--|drwxr-xr-x) 0\/0 +\d+ 1970-01-01 00:00:00 \.\//, line);
    }
  });
});

Deno.test("OciArchiveWriter output is deterministic: the same layout gives the same bytes", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    await writeArchive(sample, `${tmp}/a.tar`);
    await writeArchive(sample, `${tmp}/b.tar`);
    assert.deepEqual(await Deno.readFile(`${tmp}/a.tar`), await Deno.readFile(`${tmp}/b.tar`));
  });
});

Deno.test("OciArchiveWriter output extracts with GNU tar to byte-identical files and reads with umoci", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    // umoci addresses images by tag, so this archive's index.json also carries a ref.name.
    const tagged = {
      ...sample.image,
      annotations: { ...sample.image.annotations, "org.opencontainers.image.ref.name": "t" },
    };
    const enc = new TextEncoder();
    const dz = enc.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [tagged, sample.signatures],
      }),
    );
    const idx = enc.encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [tagged],
      }),
    );
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    for (const d of sample.blobs) await writer.putBlob(d, await sample.dir.getBlob(d));
    await writer.finish({ indexJson: idx, dangerzoneJson: dz });
    await Deno.mkdir(`${tmp}/x`);
    const x = await run("tar", ["-xf", `${tmp}/a.tar`, "-C", `${tmp}/x`]);
    assert.equal(x.code, 0, x.stderr);
    for (const d of sample.blobs) {
      assert.deepEqual(
        await Deno.readFile(`${tmp}/x/blobs/sha256/${d.digest.slice(7)}`),
        await Deno.readFile(sample.dir.blobPath(d.digest)),
      );
    }
    assert.deepEqual(await Deno.readFile(`${tmp}/x/index.json`), idx);
    const ls = await run("umoci", ["ls", "--layout", `${tmp}/x`]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), "t");
    const stat = await run("umoci", ["stat", "--image", `${tmp}/x:t`, "--json"]);
    assert.equal(stat.code, 0, stat.stderr);
    const unpack = await run("umoci", [
      "raw",
      "unpack",
      "--rootless",
      "--image",
      `${tmp}/x:t`,
      `${tmp}/rootfs`,
    ]);
    assert.equal(unpack.code, 0, unpack.stderr);
    assert.equal((await Deno.stat(`${tmp}/rootfs/hello.bin`)).size, 3000);
  });
});

Deno.test("OciArchiveWriter output is read by skopeo inspect oci-archive:", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    await writeArchive(sample, `${tmp}/a.tar`);
    const r = await run("skopeo", ["inspect", "--raw", `oci-archive:${tmp}/a.tar`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(new TextEncoder().encode(r.stdout), await sample.dir.getManifest(sample.image));
    const cfg = await run("skopeo", ["inspect", "--config", `oci-archive:${tmp}/a.tar`]);
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.match(cfg.stdout, /"architecture": "amd64"/);
    const copy = await run("skopeo", [
      "copy",
      "--insecure-policy",
      `oci-archive:${tmp}/a.tar`,
      `oci:${tmp}/copied:x`,
    ]);
    assert.equal(copy.code, 0, copy.stderr);
  });
});

Deno.test({
  name: "OciArchiveWriter output passes the checks of Dangerzone's Python archive loader (tarfile)",
  ignore: await new Deno.Command("python3", { args: ["--version"], stdout: "null", stderr: "null" }).output()
    .then((o) => !o.success, () => true),
  fn: async () => {
    await withTemp(async (tmp) => {
      const sample = await makeSampleLayout(`${tmp}/src`);
      await writeArchive(sample, `${tmp}/a.tar`);
      // The same steps as dangerzone/updater/signatures.py upgrade_container_image_airgapped().
      const script = `
import json, sys, tarfile, tempfile, pathlib
with tempfile.TemporaryDirectory() as d, tarfile.open(sys.argv[1], "r") as a:
    t = pathlib.Path(d)
    assert "./dangerzone.json" in a.getnames()
    a.extract("./dangerzone.json", t); a.extract("./index.json", t)
    dz = json.load(open(t / "dangerzone.json")); ix = json.load(open(t / "index.json"))
    exp = dz.copy()
    exp["manifests"] = [m for m in dz["manifests"] if m["annotations"].get("kind") in ("dev.cosignproject.cosign/imageIndex", "dev.cosignproject.cosign/image")]
    assert exp == ix
    sig = [m for m in dz["manifests"] if m["annotations"].get("kind") == "dev.cosignproject.cosign/sigs"][0]
    p = "./blobs/sha256/" + sig["digest"].replace("sha256:", "")
    a.extract(p, t)
    layers = json.load(open(t / p))["layers"]
    for l in layers:
        a.extract("./blobs/sha256/" + l["digest"].replace("sha256:", ""), t)
    assert len(exp["manifests"]) == 1
    print(exp["manifests"][0]["digest"])
`;
      const r = await run("python3", ["-c", script, `${tmp}/a.tar`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), sample.image.digest);
    });
  },
});

Deno.test("OciArchiveWriter.putBlob() refuses a stream that does not match its descriptor and removes FILE.partial", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    const first = sample.blobs[0];
    const second = sample.blobs[1];
    assert.ok(first !== undefined && second !== undefined);
    const lying = { ...second, digest: first.digest };
    await assert.rejects(
      writer.putBlob({ ...first, size: second.size }, await sample.dir.getBlob(second)),
      (err: unknown) => err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH",
    );
    await assert.rejects(Deno.stat(`${tmp}/a.tar.partial`), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${tmp}/a.tar`), Deno.errors.NotFound);
    // The writer is poisoned: later calls fail with the same error and consume nothing.
    await assert.rejects(
      writer.putBlob(lying, await sample.dir.getBlob(second)),
      (err: unknown) => err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH",
    );
  });
});

Deno.test("OciArchiveWriter.putBlob() refuses a short stream (SIZE_MISMATCH)", async () => {
  await withTemp(async (tmp) => {
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    const bytes = new Uint8Array(100);
    const { sha256Digest } = await import("../../src/oci/digest.ts");
    const desc = { mediaType: "x", digest: await sha256Digest(bytes), size: 200 };
    await assert.rejects(
      writer.putBlob(desc, new Blob([bytes]).stream()),
      (err: unknown) => err instanceof DangerzoneError && err.code === "SIZE_MISMATCH",
    );
    await assert.rejects(Deno.stat(`${tmp}/a.tar.partial`), Deno.errors.NotFound);
  });
});

Deno.test("OciArchiveWriter.finish() refuses an index that lists a blob never written", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    await assert.rejects(
      writer.finish({ indexJson: sample.indexJson, dangerzoneJson: sample.dangerzoneJson }),
      (err: unknown) => err instanceof DangerzoneError && err.code === "ARCHIVE_INVALID",
    );
    await assert.rejects(Deno.stat(`${tmp}/a.tar.partial`), Deno.errors.NotFound);
  });
});

Deno.test("OciArchiveWriter.finish() refuses index.json that is not dangerzone.json filtered to the image", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    for (const d of sample.blobs) await writer.putBlob(d, await sample.dir.getBlob(d));
    await assert.rejects(
      writer.finish({ indexJson: sample.dangerzoneJson, dangerzoneJson: sample.dangerzoneJson }),
      (err: unknown) => err instanceof DangerzoneError && err.code === "ARCHIVE_INVALID",
    );
  });
});

Deno.test("OciArchiveWriter.putManifest() writes exact bytes; hasBlob() reports it; reads are UNSUPPORTED", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    const raw = await sample.dir.getManifest(sample.image);
    assert.equal(await writer.hasBlob(sample.image), false);
    await writer.putManifest(sample.image, raw);
    assert.equal(await writer.hasBlob(sample.image), true);
    await assert.rejects(
      writer.getBlob(),
      (err: unknown) => err instanceof DangerzoneError && err.code === "UNSUPPORTED",
    );
    await assert.rejects(
      writer.putManifest(sample.image, raw, "latest"),
      (err: unknown) => err instanceof DangerzoneError && err.code === "UNSUPPORTED",
    );
    await writer.abort();
    await assert.rejects(Deno.stat(`${tmp}/a.tar.partial`), Deno.errors.NotFound);
  });
});

Deno.test("OciArchiveWriter.putBlob() fails when a layout blob was tampered with (self-verifying stream errors at EOF)", async () => {
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`, { layerBytes: 2 * 1024 * 1024 });
    const layer = sample.blobs[0];
    assert.ok(layer !== undefined);
    const bytes = await Deno.readFile(sample.dir.blobPath(layer.digest));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    await Deno.writeFile(sample.dir.blobPath(layer.digest), bytes);
    const stream = await sample.dir.getBlob(layer);
    // the writer only counts this stream's bytes: the stream's own verifier must stop it
    assert.ok(isSelfVerifying(stream, layer));
    const writer = await OciArchiveWriter.create(`${tmp}/a.tar`);
    await assert.rejects(
      writer.putBlob(layer, stream),
      (err: unknown) => err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH",
    );
    await assert.rejects(Deno.stat(`${tmp}/a.tar.partial`), Deno.errors.NotFound);
  });
});

Deno.test("OciArchiveWriter output is read entry-for-entry by an independent tar reader (modern-tar)", async () => {
  const { unpackTar } = await import("modern-tar");
  await withTemp(async (tmp) => {
    const sample = await makeSampleLayout(`${tmp}/src`);
    await writeArchive(sample, `${tmp}/a.tar`);
    const entries = await unpackTar(await Deno.readFile(`${tmp}/a.tar`), { strict: true });
    const byName = new Map(entries.map((e) => [e.header.name, e]));
    for (const d of sample.blobs) {
      const e = byName.get(`./blobs/sha256/${d.digest.slice(7)}`);
      assert.ok(e !== undefined);
      assert.equal(e.header.mode, 0o644);
      assert.equal(e.header.mtime?.getTime(), 0);
      assert.deepEqual(e.data, await Deno.readFile(sample.dir.blobPath(d.digest)));
    }
    assert.deepEqual(byName.get("./dangerzone.json")?.data, sample.dangerzoneJson);
    assert.equal(byName.get("./blobs/")?.header.type, "directory");
  });
});
