import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { archiveRoots, CosignKind, parseArchiveIndex } from "../../src/layout/archive_index.ts";
import { assertBlobsComplete, findBlobProblems } from "../../src/layout/blob_check.ts";
import { OciLayoutDir } from "../../src/layout/dir.ts";
import { makeSampleLayout } from "./_sample_layout.ts";

const VECTORS = new URL(
  "../testdata/vectors/slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/",
  import.meta.url,
)
  .pathname;

for (const version of ["v1.4.0", "v1.9.0", "v1.10.0", "v2.1.0"]) {
  Deno.test(`findBlobProblems() reports exactly the pruned image layers of the real cosign save layout ${version}`, async () => {
    const path = `${VECTORS}${version}/container_workflow_dispatch`;
    const dir = await OciLayoutDir.open(path);
    const idx = parseArchiveIndex({ untrustedIndexJson: (await dir.readIndex()).raw });
    const pruned = (await Deno.readTextFile(`${path}/PRUNED_LAYERS.txt`)).split("\n")
      .filter((l) => l.startsWith("sha256:")).map((l) => l.split(" ")[0]);
    assert.ok(pruned.length > 0);
    const problems = await findBlobProblems(dir, archiveRoots(idx));
    assert.deepEqual(problems.map((p) => p.kind), problems.map(() => "missing"));
    assert.deepEqual(new Set(problems.map((p) => p.descriptor.digest)), new Set(pruned));
    assert.match(
      problems[0]?.path ?? "",
      /^index\.json manifests\[0\] \(image(Index)?\) > (manifests\[0\] > )?layers\[\d+\]$/,
    );
    await assert.rejects(
      assertBlobsComplete(dir, archiveRoots(idx)),
      (err: unknown) =>
        err instanceof DangerzoneError && err.code === "ARCHIVE_INVALID" && /more problems/.test(err.message),
    );
  });

  Deno.test(`findBlobProblems() limited to signatures and attestations passes on the real layout ${version}`, async () => {
    const dir = await OciLayoutDir.open(`${VECTORS}${version}/container_workflow_dispatch`);
    const idx = parseArchiveIndex({ untrustedIndexJson: (await dir.readIndex()).raw });
    const roots = archiveRoots(idx, [CosignKind.SIGNATURES, CosignKind.ATTESTATIONS]);
    assert.equal(roots.length, 1);
    assert.deepEqual(await findBlobProblems(dir, roots), []);
    await assertBlobsComplete(dir, roots);
  });
}

Deno.test("findBlobProblems() reports a missing layer, a wrong-size config and a corrupt manifest together", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const s = await makeSampleLayout(tmp);
    const idx = parseArchiveIndex({
      untrustedIndexJson: s.indexJson,
      untrustedDangerzoneJson: s.dangerzoneJson,
    });
    assert.deepEqual(await findBlobProblems(s.dir, archiveRoots(idx)), []);
    const [layer, config, , , , sig] = s.blobs;
    assert.ok(layer && config && sig);
    await Deno.remove(s.dir.blobPath(layer.digest));
    await Deno.writeFile(s.dir.blobPath(config.digest), new Uint8Array(3));
    const sigBytes = await Deno.readFile(s.dir.blobPath(sig.digest));
    sigBytes[10] = sigBytes[10] === 0x20 ? 0x21 : 0x20;
    await Deno.writeFile(s.dir.blobPath(sig.digest), sigBytes);
    const problems = await findBlobProblems(s.dir, archiveRoots(idx));
    const found = new Set(problems.map((p) => `${p.kind} ${p.descriptor.digest}`));
    assert.deepEqual(
      found,
      new Set([`corrupt ${sig.digest}`, `missing ${layer.digest}`, `size-mismatch ${config.digest}`]),
    );
    assert.equal(problems.length, 3);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("findBlobProblems() refuses a blob that is a symbolic link (ARCHIVE_INVALID)", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const s = await makeSampleLayout(tmp);
    const [layer] = s.blobs;
    assert.ok(layer);
    await Deno.rename(s.dir.blobPath(layer.digest), `${tmp}/elsewhere`);
    await Deno.symlink(`${tmp}/elsewhere`, s.dir.blobPath(layer.digest));
    const idx = parseArchiveIndex({ untrustedIndexJson: s.indexJson });
    await assert.rejects(
      findBlobProblems(s.dir, archiveRoots(idx)),
      (err: unknown) =>
        err instanceof DangerzoneError && err.code === "ARCHIVE_INVALID" &&
        /not a regular file/.test(err.message),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
