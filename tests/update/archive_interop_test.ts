/**
 * Interoperability with Dangerzone's Python tool, both ways, by running python3 on small scripts that
 * re-implement its archive logic (`dangerzone/updater/signatures.py`: the tail of
 * `prepare_airgapped_archive` after `cosign save`, and the structural checks of
 * `upgrade_container_image_airgapped` with `convert_oci_images_signatures`), without its container
 * runtime and cosign calls:
 *
 * - an archive made by `prepareArchive()` passes the Python checks, which find the same image digest,
 *   signed name, signature and log index, also when it carries a cosign v3 bundle as well (the Python
 *   tool keeps only the image entries and the first `sigs` entry of dangerzone.json, so the
 *   `dev.dangerzone.image/referrer` entry is ignored);
 * - an archive the Python tool would write from a `cosign save` layout (full `index.json` with cosign's
 *   three-space indentation, `json.dump` output, `tarfile.add(dir, arcname=".")` with pax headers and
 *   entries in directory order) loads with `loadArchive()`;
 * - the real `cosign save` layouts in tests/testdata/vectors/slsa-verifier/ have the index shape and `kind`
 *   annotations our reader accepts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseArchiveIndex } from "../../src/layout/archive_index.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { loadArchive } from "../../src/update/load_archive.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { parseTrustedRoot } from "../../src/sigstore/crypto/trusted_root.ts";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { runCommand } from "../_helpers/process.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  TestRekorLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { type ArchiveWorld, REPO, startArchiveWorld } from "./_archive_fixture.ts";

/** The structural checks of `upgrade_container_image_airgapped` (no runtime, no cosign). */
const PYTHON_CHECKS = `
import json, sys, tarfile
from base64 import b64decode, b64encode
from pathlib import Path, PurePath
from tempfile import TemporaryDirectory

def images_only(index):
    out = index.copy()
    out["manifests"] = [m for m in index["manifests"]
        if m["annotations"].get("kind") in ("dev.cosignproject.cosign/imageIndex", "dev.cosignproject.cosign/image")]
    return out

def blob(digest):
    return PurePath() / "blobs" / "sha256" / digest.replace("sha256:", "")

with TemporaryDirectory() as tmp, tarfile.open(sys.argv[1], "r") as archive:
    tmp = Path(tmp)
    assert "./dangerzone.json" in archive.getnames(), "not a dangerzone archive"
    archive.extract("./dangerzone.json", tmp)
    archive.extract("./index.json", tmp)
    dz = json.load((tmp / "dangerzone.json").open())
    index = json.load((tmp / "index.json").open())
    expected = images_only(dz)
    assert expected == index, "invalid dangerzone manifest"
    sig_name = next(blob(m["digest"]) for m in dz["manifests"]
        if m["annotations"].get("kind") == "dev.cosignproject.cosign/sigs")
    archive.extract(f"./{sig_name.as_posix()}", tmp)
    layers = json.load((tmp / sig_name).open()).get("layers", [])
    signatures = []
    for layer in layers:
        bundle = json.loads(layer["annotations"]["dev.sigstore.cosign/bundle"])
        body = json.loads(b64decode(bundle["Payload"]["body"]))
        archive.extract(f"./{blob(layer['digest']).as_posix()}", tmp)
        payload = (tmp / blob(layer["digest"])).read_bytes()
        assert layer["annotations"]["dev.cosignproject.cosign/signature"] == body["spec"]["signature"]["content"]
        signatures.append({"Base64Signature": body["spec"]["signature"]["content"],
            "Payload": b64encode(payload).decode(), "Cert": None, "Chain": None,
            "Bundle": bundle, "RFC3161Timestamp": None})
    assert signatures, "no signatures"
    first = json.loads((tmp / blob(layers[0]["digest"])).read_bytes())
    image_name = first["critical"]["identity"]["docker-reference"]
    assert len(expected["manifests"]) == 1, "more than one manifest"
    # as upgrade_container_image_airgapped: the image is the first entry of dangerzone.json
    digest = dz["manifests"][0].get("digest").replace("sha256:", "")
    assert digest == expected["manifests"][0]["digest"].replace("sha256:", ""), "the image is not first"
    for s in signatures:
        signed = json.loads(b64decode(s["Payload"]))["critical"]["image"]["docker-manifest-digest"]
        assert signed.replace("sha256:", "") == digest, "signature for another digest"
    log_index = max(int(s["Bundle"]["Payload"]["logIndex"]) for s in signatures)
    print(json.dumps({"image_name": image_name, "digest": digest, "signatures": len(signatures), "log_index": log_index}))
`;

/** The tail of `prepare_airgapped_archive`: after `cosign save DIR`, write dangerzone.json, filter index.json, tar. */
const PYTHON_PREPARE = `
import json, sys, tarfile
from pathlib import Path
tmp = Path(sys.argv[1])
with (tmp / "index.json").open() as index_file, (tmp / "dangerzone.json").open("w+") as dzf:
    original = json.load(index_file)
    json.dump(original, dzf)
new = original.copy()
new["manifests"] = [m for m in original["manifests"]
    if m["annotations"].get("kind") in ("dev.cosignproject.cosign/imageIndex", "dev.cosignproject.cosign/image")]
with open(tmp / "index.json", "w") as f:
    json.dump(new, f)
with tarfile.open(sys.argv[2], "w") as archive:
    archive.add(str(tmp), arcname=".")
`;

async function python(script: string, args: string[]): Promise<string> {
  const r = await runCommand("python3", ["-c", script, ...args]);
  return r.stdout;
}

/** The Python checks pass on `out` and find the world's image, its signed name, one signature and `logIndex`. */
async function assertPythonAccepts(out: string, w: ArchiveWorld, logIndex: number): Promise<void> {
  const result: unknown = JSON.parse(await python(PYTHON_CHECKS, [out]));
  assert.deepEqual(result, {
    image_name: `${w.sr.reg.host}/${REPO}`,
    digest: w.img.digest.slice(7),
    signatures: 1,
    log_index: logIndex,
  });
}

Deno.test("prepareArchive() output passes the Python tool's archive checks", async () => {
  await using w = await startArchiveWorld({ logIndex: 321 });
  const out = join(w.tmp.path, "dz.tar");
  using ctx = await w.context(await w.dataDir("p"));
  await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: out });
  await assertPythonAccepts(out, w, 321);
});

Deno.test("an archive that also carries a cosign v3 bundle passes the Python tool's checks (the referrer is ignored)", async () => {
  await using w = await startArchiveWorld({ logIndex: 322 });
  const log = new TestRekorLog({ key: createTestKey(), indexOffset: 700 });
  const bundle = signImageBundle({ digest: w.img.digest, publisher: w.sr.publisher, log });
  await pushBundleReferrers(w.sr.clientOptions, `${w.sr.reg.host}/${REPO}`, {
    mediaType: w.img.mediaType,
    digest: w.img.digest,
    size: w.img.size,
  }, [bundle.json]);
  const out = join(w.tmp.path, "both.tar");
  {
    using ctx = await w.context(await w.dataDir("p"), {
      trustedRoot: parseTrustedRoot(testTrustedRoot([log])),
    });
    const prepared = await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: out });
    assert.equal(prepared.signatures, 2, "the legacy signature and the bundle");
  }
  const listing = await runCommand("tar", ["-xOf", out, "./dangerzone.json"]);
  const kinds = JSON.parse(listing.stdout).manifests.map((m: { annotations: { kind: string } }) =>
    m.annotations.kind
  );
  assert.ok(kinds.includes("dev.dangerzone.image/referrer"), kinds.join(", "));
  assert.equal(kinds[0], "dev.cosignproject.cosign/image");
  await assertPythonAccepts(out, w, 322);
});

Deno.test("loadArchive() loads an archive shaped exactly like the Python tool's output", async () => {
  await using w = await startArchiveWorld();
  const ours = join(w.tmp.path, "ours.tar");
  const data = await w.dataDir("l");
  using ctx = await w.context(data);
  await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: ours });
  // Rebuild the cosign save directory: blobs, oci-layout, and the full index as cosign writes it.
  const save = join(w.tmp.path, "cosign-save");
  await Deno.mkdir(save);
  await runCommand("tar", ["-xf", ours, "-C", save]);
  const full: unknown = JSON.parse(await Deno.readTextFile(join(save, "dangerzone.json")));
  await Deno.remove(join(save, "dangerzone.json"));
  await Deno.writeTextFile(join(save, "index.json"), JSON.stringify(full, null, 3));
  const theirs = join(w.tmp.path, "theirs.tar");
  await python(PYTHON_PREPARE, [save, theirs]);
  const names = (await runCommand("tar", ["-tf", theirs])).stdout.trim().split("\n");
  assert.ok(names[0] === "./" && names.includes("./dangerzone.json"), names.join(" "));
  // The Python checks accept their own output (sanity), and so does loadArchive().
  JSON.parse(await python(PYTHON_CHECKS, [theirs]));
  const loaded = await loadArchive(ctx, theirs);
  assert.equal(loaded.form, "dangerzone-archive");
  assert.equal(loaded.digest, w.img.digest);
  assert.equal(
    (await w.pm.podman(["image", "inspect", "--format", "{{.Digest}}", loaded.image])).stdout.trim(),
    w.img.digest,
  );
});

Deno.test("parseArchiveIndex() accepts the real cosign save layouts of tests/testdata/vectors/slsa-verifier", async () => {
  const root = new URL("../testdata/vectors/slsa-verifier/", import.meta.url).pathname;
  const found = (await runCommand("find", [root, "-name", "index.json"])).stdout.trim().split("\n");
  assert.ok(found.length >= 2);
  for (const file of found) {
    const index = parseArchiveIndex({ untrustedIndexJson: await Deno.readFile(file) });
    assert.equal(index.form, "cosign-save");
    assert.match(String(index.image.annotations?.kind), /^dev\.cosignproject\.cosign\/image(Index)?$/);
    assert.equal(index.attestations.length, 1, file);
  }
});
