/**
 * The behaviour both adapters must show, run against real podman (`podman_test.ts`) and against the docker
 * CLI talking to `podman system service` (`docker_test.ts`). Each test has its own isolated podman storage.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { DockerRuntime, PodmanRuntime } from "../../src/runtime/mod.ts";
import type { ContainerRuntime, RuntimeName } from "../../src/runtime/mod.ts";
import { buildBusyboxImage, buildMultiArchImage } from "../_helpers/images.ts";
import { type DockerApi, type RunningPodman, startDockerApi, startPodman } from "../_helpers/podman.ts";
import { makeTempDir, type TempDir } from "../_helpers/process.ts";
import { dockerArchive, lazyFileStream, ociArchive, processRunning } from "./_setup.ts";

interface Context extends AsyncDisposable {
  runtime: ContainerRuntime;
  dir: string;
  podman: RunningPodman;
  /** An environment entry unique to this test's runtime processes. */
  envEntry: string;
}

async function setup(kind: RuntimeName): Promise<Context> {
  const tmp: TempDir = makeTempDir(`runtime-${kind}`);
  const podman = await startPodman();
  let api: DockerApi | undefined;
  try {
    if (kind === "docker") api = await startDockerApi(podman);
  } catch (e) {
    await podman.stop();
    await tmp.remove();
    throw e;
  }
  const runtime = api === undefined
    ? new PodmanRuntime({ env: podman.env, timeoutMs: 30_000 })
    : new DockerRuntime({ env: api.env, timeoutMs: 30_000 });
  const envEntry = api === undefined
    ? `CONTAINERS_STORAGE_CONF=${podman.env.CONTAINERS_STORAGE_CONF}`
    : `DOCKER_HOST=${api.dockerHost}`;
  return {
    runtime,
    dir: tmp.path,
    podman,
    envEntry,
    async [Symbol.asyncDispose]() {
      await api?.stop();
      await podman.stop();
      await tmp.remove();
    },
  };
}

function loadArchive(runtime: ContainerRuntime, path: string): ReturnType<ContainerRuntime["load"]> {
  return runtime.load(lazyFileStream(path, { chunkSize: 64 * 1024 }).stream);
}

/** Registers the shared tests for one runtime. */
export function defineRuntimeTests(kind: RuntimeName): void {
  const cls = kind === "podman" ? "PodmanRuntime" : "DockerRuntime";

  Deno.test(`${cls}.version() reports the runtime's version`, async () => {
    await using ctx = await setup(kind);
    assert.match(await ctx.runtime.version(), /^4\.\d+\.\d+/);
  });

  Deno.test(`${cls}.load() loads a named OCI archive and inspect() reports its manifest digest`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    const tar = await ociArchive(ctx.dir, image, "example.com/sandbox/app:1");
    const loaded = await loadArchive(ctx.runtime, tar);
    assert.deepEqual(loaded, { names: ["example.com/sandbox/app:1"], ids: [] });
    const info = await ctx.runtime.inspect("example.com/sandbox/app:1");
    assert.ok(info !== null);
    assert.equal(info.id, image.configDigest);
    assert.deepEqual(info.repoTags, ["example.com/sandbox/app:1"]);
    assert.deepEqual(info.repoDigests, [`example.com/sandbox/app@${image.digest}`]);
    assert.deepEqual(info.digests, [image.digest]);
    assert.equal(info.digest, kind === "podman" ? image.digest : undefined);
    assert.equal(info.architecture, "amd64");
    assert.equal(info.os, "linux");
    assert.ok(info.created instanceof Date && !Number.isNaN(info.created.getTime()));
    // by image ID too
    assert.deepEqual(await ctx.runtime.digestsOf(image.configDigest), [image.digest]);
  });

  Deno.test(`${cls}.load() of an unnamed OCI archive reports the image ID`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    const loaded = await loadArchive(ctx.runtime, await ociArchive(ctx.dir, image, undefined));
    assert.deepEqual(loaded, { names: [], ids: [image.configDigest] });
    const info = await ctx.runtime.inspect(image.configDigest);
    assert.ok(info !== null);
    assert.deepEqual(info.repoTags, []);
    // podman keeps the manifest digest of an untagged image in .Digest; docker sees repo digests only
    assert.deepEqual(info.digests, kind === "podman" ? [image.digest] : []);
  });

  Deno.test(`${cls}.load() loads a docker-archive`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    const tar = await dockerArchive(ctx.dir, image, "example.com/sandbox/app:docker");
    const loaded = await loadArchive(ctx.runtime, tar);
    assert.deepEqual(loaded.names, ["example.com/sandbox/app:docker"]);
    const info = await ctx.runtime.inspect("example.com/sandbox/app:docker");
    assert.ok(info !== null);
    assert.equal(info.id, image.configDigest);
    // a docker-archive carries no manifest: the runtime makes a new one, so the OCI digest is not there
    assert.equal(info.digests.length, 1);
    assert.ok(!info.digests.includes(image.digest));
  });

  Deno.test(`${cls}.digestsOf() after loading an index holds the index and platform digests`, async () => {
    await using ctx = await setup(kind);
    const index = await buildMultiArchImage(join(ctx.dir, "multi"));
    await loadArchive(ctx.runtime, await ociArchive(ctx.dir, index, "example.com/sandbox/multi:1"));
    const digests = await ctx.runtime.digestsOf("example.com/sandbox/multi:1");
    assert.ok(digests !== null);
    const amd64 = index.platforms.find((p) => p.platform === "linux/amd64");
    assert.ok(amd64 !== undefined);
    assert.ok(digests.includes(index.digest), `index digest missing from ${digests.join(",")}`);
    assert.ok(digests.includes(amd64.digest), `amd64 digest missing from ${digests.join(",")}`);
    const info = await ctx.runtime.inspect("example.com/sandbox/multi:1");
    assert.equal(info?.architecture, "amd64");
  });

  Deno.test(`${cls}.tag() adds a name and list() returns one entry per image`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    await loadArchive(ctx.runtime, await ociArchive(ctx.dir, image, "example.com/sandbox/app:1"));
    await ctx.runtime.tag(image.configDigest, "example.com/sandbox/app:2");
    await ctx.runtime.tag("example.com/sandbox/app:1", "registry.local/other:3");
    const all = await ctx.runtime.list();
    assert.equal(all.length, 1);
    const [only] = all;
    assert.ok(only !== undefined);
    assert.equal(only.id, image.configDigest);
    assert.deepEqual(
      [...only.names].sort(),
      ["example.com/sandbox/app:1", "example.com/sandbox/app:2", "registry.local/other:3"],
    );
    assert.deepEqual(only.digests, [image.digest]);
    assert.ok(only.repoDigests.includes(`example.com/sandbox/app@${image.digest}`));
    assert.ok(only.created instanceof Date);
    const filtered = await ctx.runtime.list({ reference: "example.com/sandbox/app:2" });
    assert.deepEqual(filtered.map((i) => i.id), [image.configDigest]);
    assert.deepEqual(await ctx.runtime.list({ reference: "example.com/nothing" }), []);
  });

  Deno.test(`${cls}.exists() and inspect() report a missing image as false and null`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:1"), false);
    assert.equal(await ctx.runtime.inspect("example.com/sandbox/app:1"), null);
    assert.equal(await ctx.runtime.inspect(image.configDigest), null);
    assert.equal(await ctx.runtime.digestsOf("example.com/sandbox/app:1"), null);
    await loadArchive(ctx.runtime, await ociArchive(ctx.dir, image, "example.com/sandbox/app:1"));
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:1"), true);
    assert.equal(await ctx.runtime.exists(image.configDigest), true);
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:2"), false);
  });

  Deno.test(`${cls}.remove() removes a name, then the image, and reports a missing one`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    await loadArchive(ctx.runtime, await ociArchive(ctx.dir, image, "example.com/sandbox/app:1"));
    await ctx.runtime.tag("example.com/sandbox/app:1", "example.com/sandbox/app:2");
    assert.equal(await ctx.runtime.remove("example.com/sandbox/app:2"), true);
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:2"), false);
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:1"), true);
    assert.equal(await ctx.runtime.remove(image.configDigest, { force: true }), true);
    assert.equal(await ctx.runtime.exists(image.configDigest), false);
    assert.deepEqual(await ctx.runtime.list(), []);
    assert.equal(await ctx.runtime.remove("example.com/sandbox/app:1"), false);
  });

  Deno.test(`${cls}.load() of a corrupt tar fails with RUNTIME_FAILED and the runtime's stderr`, async () => {
    await using ctx = await setup(kind);
    const bad = join(ctx.dir, "bad.tar");
    await Deno.writeFile(bad, crypto.getRandomValues(new Uint8Array(4096)));
    const err = await loadArchive(ctx.runtime, bad).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DangerzoneError);
    assert.equal(err.code, "RUNTIME_FAILED");
    assert.match(err.message, new RegExp(`^${kind} load failed \\(exit \\d+\\): .*supported image formats`));
    assert.ok(!err.message.includes("\n"));
    assert.ok(err.hint !== undefined);
    assert.ok(err.cause instanceof Error);
    assert.match(err.cause.message, /invalid tar header/);
    assert.ok(err.cause.message.split("\n").length <= 8);
  });

  Deno.test(`${cls}.load() streams its input into the running runtime`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    const tar = await ociArchive(ctx.dir, image, "example.com/sandbox/app:1");
    const size = (await Deno.stat(tar)).size;
    const chunkSize = 16 * 1024;
    const probeAt = Math.floor(size / chunkSize / 2);
    assert.ok(probeAt * chunkSize > 256 * 1024, "the archive must be far larger than a pipe buffer");
    let runningMidway: boolean | undefined;
    const lazy = lazyFileStream(tar, {
      chunkSize,
      onPull: async (pull) => {
        if (pull === probeAt) runningMidway = await processRunning(ctx.envEntry, "load");
      },
    });
    await ctx.runtime.load(lazy.stream);
    assert.equal(runningMidway, true, `no '${kind} load' process was reading while the stream was half read`);
    assert.ok(lazy.pulls >= Math.ceil(size / chunkSize));
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:1"), true);
  });

  Deno.test(`${cls}.load() rethrows an input stream error and loads nothing`, async () => {
    await using ctx = await setup(kind);
    const image = await buildBusyboxImage(join(ctx.dir, "layout"));
    const tar = await ociArchive(ctx.dir, image, "example.com/sandbox/app:1");
    // the whole archive passes, then the stream fails as a digest check at EOF would
    const failure = new DangerzoneError("DIGEST_MISMATCH", "blob does not match its digest");
    const lazy = lazyFileStream(tar, { failAtEnd: failure });
    const err = await ctx.runtime.load(lazy.stream).then(() => undefined, (e: unknown) => e);
    assert.equal(err, failure);
    assert.equal(await ctx.runtime.exists("example.com/sandbox/app:1"), false);
    assert.equal(await ctx.runtime.exists(image.configDigest), false);
  });

  Deno.test(`${cls} refuses an image argument that reads as an option`, async () => {
    await using ctx = await setup(kind);
    for (const ref of ["--all", "-f", "", "a b", "x\ny"]) {
      await assert.rejects(ctx.runtime.inspect(ref), (e: unknown) => {
        assert.ok(e instanceof DangerzoneError);
        assert.equal(e.code, "REFERENCE_INVALID");
        return true;
      });
    }
    await assert.rejects(ctx.runtime.tag("example.com/a:1", "-x"), { code: "REFERENCE_INVALID" });
    await assert.rejects(ctx.runtime.remove("--all", { force: true }), { code: "REFERENCE_INVALID" });
    await assert.rejects(ctx.runtime.list({ reference: "--filter=x" }), { code: "REFERENCE_INVALID" });
  });

  Deno.test(`${cls} with a missing binary fails with RUNTIME_NOT_FOUND and cancels the load input`, async () => {
    await using tmp = makeTempDir("runtime-missing");
    const options = { path: join(tmp.path, "no-such-binary") };
    const runtime = kind === "podman" ? new PodmanRuntime(options) : new DockerRuntime(options);
    await assert.rejects(runtime.version(), { code: "RUNTIME_NOT_FOUND" });
    await assert.rejects(runtime.inspect("example.com/a:1"), { code: "RUNTIME_NOT_FOUND" });
    const lazy = lazyFileStream("/dev/zero");
    await assert.rejects(runtime.load(lazy.stream), (e: unknown) => {
      assert.ok(e instanceof DangerzoneError);
      assert.equal(e.code, "RUNTIME_NOT_FOUND");
      assert.ok(e.hint !== undefined && e.hint.includes("--runtime-path"));
      return true;
    });
    assert.equal(lazy.cancelled, true);
  });
}
