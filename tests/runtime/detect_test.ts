import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { detectRuntime, selectRuntime } from "../../src/runtime/mod.ts";
import { pathCandidates } from "../../src/runtime/detect.ts";
import { startDockerApi, startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { pathExists } from "../_helpers/cli.ts";
import { fakeRuntime } from "./_setup.ts";

function isNotFound(e: unknown): boolean {
  assert.ok(e instanceof DangerzoneError);
  assert.equal(e.code, "RUNTIME_NOT_FOUND");
  assert.ok(!e.message.includes("\n"));
  assert.ok(e.hint !== undefined && e.hint !== "");
  return true;
}

Deno.test("detectRuntime() picks podman first when both work", async () => {
  await using pm = await startPodman();
  await using api = await startDockerApi(pm);
  const runtime = await detectRuntime({ env: api.env });
  assert.equal(runtime.name, "podman");
  assert.equal(runtime.path, "podman");
});

Deno.test("detectRuntime() uses docker when asked, against podman's API socket", async () => {
  await using pm = await startPodman();
  await using api = await startDockerApi(pm);
  const runtime = await detectRuntime({ preferred: "docker", env: api.env });
  assert.equal(runtime.name, "docker");
  assert.match(await runtime.version(), /^4\./);
});

Deno.test("detectRuntime() falls back to docker when podman is missing", async () => {
  await using dir = makeTempDir("detect-fallback");
  await fakeRuntime(dir.path, "docker", 'echo "28.0.1"');
  const runtime = await detectRuntime({ env: { PATH: dir.path } });
  assert.equal(runtime.name, "docker");
});

Deno.test("detectRuntime() without any runtime fails with RUNTIME_NOT_FOUND", async () => {
  await using dir = makeTempDir("detect-none");
  await assert.rejects(detectRuntime({ env: { PATH: dir.path } }), (e: unknown) => {
    isNotFound(e);
    assert.ok(e instanceof DangerzoneError);
    assert.match(e.message, /neither podman nor docker/);
    assert.ok(e.cause instanceof AggregateError);
    assert.equal(e.cause.errors.length, 2);
    return true;
  });
});

Deno.test("detectRuntime() reports a docker daemon that does not answer as RUNTIME_NOT_FOUND", async () => {
  await using dir = makeTempDir("detect-nodaemon");
  const env = { DOCKER_HOST: `unix://${join(dir.path, "none.sock")}`, DOCKER_CONFIG: dir.path };
  await assert.rejects(detectRuntime({ preferred: "docker", env }), (e: unknown) => {
    isNotFound(e);
    assert.ok(e instanceof DangerzoneError);
    assert.match(e.hint ?? "", /start the docker daemon/);
    assert.ok(e.cause instanceof DangerzoneError && e.cause.code === "RUNTIME_FAILED");
    return true;
  });
});

Deno.test("detectRuntime() with a broken --runtime-path fails with RUNTIME_NOT_FOUND", async () => {
  await using dir = makeTempDir("detect-broken");
  await assert.rejects(detectRuntime({ path: "/bin/false" }), isNotFound);
  await assert.rejects(detectRuntime({ path: join(dir.path, "podman") }), isNotFound);
  const noVersion = await fakeRuntime(dir.path, "podman-weird", 'echo "not a version"');
  await assert.rejects(detectRuntime({ path: noVersion }), isNotFound);
});

Deno.test("detectRuntime() with only --runtime-path goes by the binary's name", async () => {
  await using dir = makeTempDir("detect-path");
  const docker = await fakeRuntime(dir.path, "docker-28", 'echo "28.0.1"');
  const podman = await fakeRuntime(dir.path, "my-podman", 'echo "5.0.0"');
  assert.equal((await detectRuntime({ path: docker })).name, "docker");
  const picked = await detectRuntime({ path: podman });
  assert.equal(picked.name, "podman");
  assert.equal(picked.path, podman);
  assert.equal((await detectRuntime({ path: podman, preferred: "docker" })).name, "docker");
});

Deno.test("selectRuntime() picks podman on PATH without running it (no version probe)", async () => {
  await using dir = makeTempDir("select-podman");
  const ran = join(dir.path, "ran");
  await fakeRuntime(dir.path, "podman", `echo "$@" >> '${ran}'; echo "5.0.0"`);
  await fakeRuntime(dir.path, "docker", `echo "$@" >> '${ran}'; echo "28.0.1"`);
  const runtime = await selectRuntime({ env: { PATH: dir.path } });
  assert.equal(runtime.name, "podman");
  assert.equal(await pathExists(ran), false, "selectRuntime() ran a runtime");
  await runtime.version();
  assert.equal(await Deno.readTextFile(ran), "version --format {{.Client.Version}}\n");
});

Deno.test("selectRuntime() without podman on PATH probes like detectRuntime(): docker", async () => {
  await using dir = makeTempDir("select-docker");
  await fakeRuntime(dir.path, "docker", 'echo "28.0.1"');
  assert.equal((await selectRuntime({ env: { PATH: dir.path } })).name, "docker");
  await using empty = makeTempDir("select-none");
  await assert.rejects(selectRuntime({ env: { PATH: empty.path } }), isNotFound);
});

Deno.test("selectRuntime() takes --runtime / --runtime-path as given; a missing binary fails on first use", async () => {
  await using dir = makeTempDir("select-given");
  const missing = join(dir.path, "docker-missing");
  const runtime = await selectRuntime({ path: missing });
  assert.equal(runtime.name, "docker");
  await assert.rejects(runtime.digestsOf("example.com/a:1"), isNotFound);
  assert.equal((await selectRuntime({ preferred: "docker", env: { PATH: dir.path } })).name, "docker");
});

Deno.test("pathCandidates() reads PATH as the shell of each platform does", () => {
  assert.deepEqual(pathCandidates("podman", "/usr/local/bin:bin::./x:/usr/bin/", false), [
    "/usr/local/bin/podman",
    "/usr/bin/podman",
  ]);
  assert.deepEqual(
    pathCandidates(
      "podman",
      "C:\\Program Files\\RedHat\\Podman;relative;;d:/tools;\\\\srv\\share\\bin;\\rooted",
      true,
    ),
    [
      "C:\\Program Files\\RedHat\\Podman\\podman.exe",
      "d:\\tools\\podman.exe",
      "\\\\srv\\share\\bin\\podman.exe",
    ],
  );
  // a POSIX PATH is not split on the Windows separator, nor a Windows one on ':' (drive letters)
  assert.deepEqual(pathCandidates("docker", "/a;b:/c", false), ["/a;b/docker", "/c/docker"]);
  assert.deepEqual(pathCandidates("docker", "C:\\a:b", true), ["C:\\a:b\\docker.exe"]);
});
