/**
 * `ContainerRuntime.loadLayout()`: a local podman reads an OCI layout directory in place (what `upgrade`
 * and `load-archive` use on a local podman), checks each blob's digest itself, and reports its progress;
 * docker and `podman --remote` refuse it (they stream instead).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { DockerRuntime, PodmanRuntime } from "../../src/runtime/mod.ts";
import { buildBusyboxImage, buildLargeImage, buildMultiArchImage } from "../_helpers/images.ts";
import { startDockerApi, startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { fakeRuntime } from "./_setup.ts";

const STAGING = "dz-staging-0123456789abcdef";

/** Makes `index.json` list only `digest`, without a ref name: a staging layout as `upgrade` writes it. */
async function onlyEntry(layoutDir: string, digest: string): Promise<void> {
  const path = join(layoutDir, "index.json");
  const index = JSON.parse(await Deno.readTextFile(path));
  const entry = index.manifests.find((m: { digest: string }) => m.digest === digest);
  assert.ok(entry !== undefined);
  delete entry.annotations;
  await Deno.writeTextFile(path, JSON.stringify({ ...index, manifests: [entry] }));
}

/** A podman with isolated storage and a staging layout built by `build` in a temp dir. */
async function stagedWorld<T extends { digest: string }>(
  build: (dir: string) => Promise<T>,
): Promise<AsyncDisposable & { podman: PodmanRuntime; dir: string; image: T }> {
  const pm = await startPodman();
  const tmp = makeTempDir("layout-load");
  const dir = join(tmp.path, STAGING);
  const image = await build(dir);
  await onlyEntry(dir, image.digest);
  return {
    podman: new PodmanRuntime({ env: pm.env }),
    dir,
    image,
    async [Symbol.asyncDispose]() {
      await pm.stop();
      await tmp.remove();
    },
  };
}

Deno.test("PodmanRuntime.loadLayout() loads a layout in place as localhost/<dir>:latest with its digest", async () => {
  await using w = await stagedWorld((dir) => buildBusyboxImage(dir));
  const { podman, dir, image } = w;
  assert.equal(await podman.canLoadLayout(), true);
  const name = await podman.loadLayout(dir);
  assert.equal(name, `localhost/${STAGING}:latest`);
  const info = await podman.inspect(name);
  assert.equal(info?.id, image.configDigest);
  assert.ok(info?.digests.includes(image.digest), info?.digests.join(","));
});

Deno.test("PodmanRuntime.loadLayout() of an index records the index and the host platform's digests", async () => {
  await using w = await stagedWorld((dir) => buildMultiArchImage(dir));
  const { podman, dir, image: index } = w;
  const digests = await podman.digestsOf(await podman.loadLayout(dir));
  const amd64 = index.platforms.find((p) => p.platform === "linux/amd64");
  assert.ok(digests !== null && amd64 !== undefined);
  assert.ok(digests.includes(index.digest), digests.join(","));
  assert.ok(digests.includes(amd64.digest), digests.join(","));
});

Deno.test("PodmanRuntime.loadLayout() refuses a layer whose bytes changed after verification; nothing loaded", async () => {
  // What upgrade relies on should the cache change between our check and podman's read.
  await using w = await stagedWorld((dir) => buildBusyboxImage(dir));
  const { podman, dir, image } = w;
  const layer = join(dir, "blobs", "sha256", (image.layerDigests[0] ?? "").slice("sha256:".length));
  const bytes = await Deno.readFile(layer);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
  await Deno.writeFile(layer, bytes);
  await assert.rejects(podman.loadLayout(dir), (e: unknown) => {
    assert.ok(e instanceof DangerzoneError);
    assert.equal(e.code, "RUNTIME_FAILED");
    assert.match(e.message, /^podman load failed \(exit \d+\)/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  assert.deepEqual(await podman.list(), []);
});

Deno.test("PodmanRuntime.loadLayout() refuses a directory name podman cannot use as a repository", async () => {
  await using tmp = makeTempDir("layout-load-name");
  const path = await fakeRuntime(tmp.path, "podman", `echo '{"Client":{"Version":"4.3.1"}}'`);
  const podman = new PodmanRuntime({ path });
  for (const bad of ["Staging", "dz staging", "-rf", "dz..x", "dz-"]) {
    await assert.rejects(podman.loadLayout(join(tmp.path, bad)), { code: "USAGE" }, bad);
  }
});

Deno.test("PodmanRuntime.canLoadLayout() is false for podman --remote and podman 3; loadLayout() refuses", async () => {
  await using tmp = makeTempDir("layout-load-remote");
  const cases: [string, boolean][] = [
    [`{"Client":{"Version":"4.3.1"},"Server":{"Version":"4.3.1"}}`, false],
    [`{"Client":{"Version":"3.4.4"}}`, false],
    [`{"Client":{"Version":"5.0.2"},"Server":null}`, true],
  ];
  for (const [i, [json, local]] of cases.entries()) {
    const path = await fakeRuntime(tmp.path, `podman-${i}`, `echo '${json}'`);
    const podman = new PodmanRuntime({ path });
    assert.equal(await podman.canLoadLayout(), local, json);
    if (!local) await assert.rejects(podman.loadLayout(join(tmp.path, STAGING)), { code: "RUNTIME_FAILED" });
  }
  const broken = await fakeRuntime(tmp.path, "podman-broken", `echo 'not json'`);
  await assert.rejects(new PodmanRuntime({ path: broken }).canLoadLayout(), { code: "RUNTIME_FAILED" });
});

Deno.test("DockerRuntime.canLoadLayout() is false (the daemon may not see our files)", async () => {
  await using pm = await startPodman();
  await using api = await startDockerApi(pm);
  const docker = new DockerRuntime({ env: api.env });
  assert.equal(await docker.canLoadLayout(), false);
  await assert.rejects(docker.loadLayout("/nonexistent/dz-staging-0123456789abcdef"), {
    code: "RUNTIME_FAILED",
  });
});

Deno.test("PodmanRuntime.loadLayout() reports the bytes podman has read while it runs", async () => {
  await using w = await stagedWorld((dir) => buildLargeImage(dir, { sizeMiB: 96, name: "x" }));
  const { podman, dir } = w;
  const seen: number[] = [];
  await podman.loadLayout(dir, { onProgress: (n) => seen.push(n) });
  assert.ok(seen.length > 0, "no progress sample");
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "progress went backwards");
  const last = seen[seen.length - 1] ?? 0;
  // podman reads the 96 MiB layer while the samples run (its own start-up reads are a few MiB at most)
  assert.ok(last >= 16 * 1024 * 1024, `last sample ${last}: ${seen.join(",")}`);
});
