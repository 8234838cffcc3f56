import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { DockerRuntime, PodmanRuntime } from "../../src/runtime/mod.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { fakeRuntime } from "./_setup.ts";

Deno.test("runCommand() stops a runtime call at its time limit with RUNTIME_FAILED", async () => {
  await using dir = makeTempDir("cmd-timeout");
  const path = await fakeRuntime(dir.path, "podman", "exec sleep 30");
  const runtime = new PodmanRuntime({ path, timeoutMs: 300 });
  const started = performance.now();
  await assert.rejects(runtime.inspect("example.com/a:1"), (e: unknown) => {
    assert.ok(e instanceof DangerzoneError);
    assert.equal(e.code, "RUNTIME_FAILED");
    assert.match(e.message, /^podman image inspect timed out after 0\.3 s$/);
    return true;
  });
  assert.ok(performance.now() - started < 5000);
});

Deno.test("runCommand() does not hang on output a leftover grandchild keeps open", async () => {
  await using dir = makeTempDir("cmd-grandchild");
  const path = await fakeRuntime(dir.path, "podman", "sleep 4 &\necho 4.3.1");
  const started = performance.now();
  await assert.rejects(new PodmanRuntime({ path }).version(), (e: unknown) => {
    assert.ok(e instanceof DangerzoneError);
    assert.equal(e.code, "RUNTIME_NOT_FOUND");
    assert.ok(e.cause instanceof DangerzoneError);
    assert.match(e.cause.message, /exited but its output stayed open/);
    return true;
  });
  assert.ok(performance.now() - started < 3500);
});

Deno.test("runCommand() trims the runtime's stderr into cause and keeps the message one line", async () => {
  await using dir = makeTempDir("cmd-stderr");
  const path = await fakeRuntime(
    dir.path,
    "podman",
    'i=0; while [ $i -lt 20 ]; do echo "noise $i" >&2; i=$((i+1)); done\n' +
      'printf "Error: storage is \\033[31mbroken\\n" >&2; exit 125',
  );
  await assert.rejects(
    new PodmanRuntime({ path }).tag("example.com/a:1", "example.com/a:2"),
    (e: unknown) => {
      assert.ok(e instanceof DangerzoneError);
      assert.equal(e.code, "RUNTIME_FAILED");
      assert.equal(e.message, "podman tag failed (exit 125): storage is [31mbroken");
      assert.ok(e.cause instanceof Error);
      const lines = e.cause.message.split("\n");
      assert.equal(lines.length, 8);
      assert.equal(lines.at(-1), "Error: storage is [31mbroken");
      assert.ok(!e.cause.message.includes("\u001b"));
      return true;
    },
  );
});

Deno.test("PodmanRuntime.inspect() fails closed on exit 125 that is not a missing image", async () => {
  await using dir = makeTempDir("cmd-125");
  const path = await fakeRuntime(
    dir.path,
    "podman",
    'echo "[]"; echo "Error: database is locked" >&2; exit 125',
  );
  await assert.rejects(new PodmanRuntime({ path }).inspect("example.com/a:1"), { code: "RUNTIME_FAILED" });
  const missing = await fakeRuntime(
    dir.path,
    "podman-missing",
    'echo "[]"; echo "Error: inspecting object: example.com/a:1: image not known" >&2; exit 125',
  );
  assert.equal(await new PodmanRuntime({ path: missing }).inspect("example.com/a:1"), null);
});

Deno.test("PodmanRuntime.inspect() rejects JSON of an unknown shape", async () => {
  await using dir = makeTempDir("cmd-shape");
  const cases = [
    '[{"Id": 5}]',
    "not json",
    "{}",
    "[]",
    '[{"Id":"' + "a".repeat(64) + '","Digest":"sha256:xyz","Architecture":"amd64","Os":"linux"}]',
    '[{"Id":"' + "a".repeat(64) + '","RepoDigests":["no-at-sign"],"Architecture":"amd64","Os":"linux"}]',
    '[{"Id":"' + "a".repeat(64) + '","RepoTags":[1],"Architecture":"amd64","Os":"linux"}]',
    '[{"Id":"' + "a".repeat(64) + '"}]',
  ];
  for (const [i, json] of cases.entries()) {
    const path = await fakeRuntime(dir.path, `podman-${i}`, `cat <<'EOF'\n${json}\nEOF`);
    await assert.rejects(new PodmanRuntime({ path }).inspect("example.com/a:1"), (e: unknown) => {
      assert.ok(e instanceof DangerzoneError, json);
      assert.equal(e.code, "RUNTIME_FAILED", json);
      assert.match(e.message, /^unexpected output from podman image inspect: /);
      return true;
    });
  }
});

Deno.test("DockerRuntime.list() rejects lines of an unknown shape", async () => {
  await using dir = makeTempDir("cmd-docker-shape");
  const path = await fakeRuntime(
    dir.path,
    "docker",
    `echo '{"ID":"sha256:short","Repository":"a","Tag":"1","Digest":"<none>"}'`,
  );
  await assert.rejects(new DockerRuntime({ path }).list(), { code: "RUNTIME_FAILED" });
});

Deno.test("DockerRuntime.load() reads docker's 'Loaded image ID' lines", async () => {
  await using dir = makeTempDir("cmd-docker-load");
  const id = "b".repeat(64);
  const path = await fakeRuntime(
    dir.path,
    "docker",
    `cat >/dev/null; printf 'Loaded image: example.com/a:1\\nLoaded image ID: sha256:${id}\\n'`,
  );
  const loaded = await new DockerRuntime({ path }).load(new Blob(["x".repeat(100_000)]).stream());
  assert.deepEqual(loaded, { names: ["example.com/a:1"], ids: [`sha256:${id}`] });
});

Deno.test("PodmanRuntime.load() reads older podman's 'Loaded image(s)' line and refuses no image", async () => {
  await using dir = makeTempDir("cmd-podman-load");
  const old = await fakeRuntime(
    dir.path,
    "podman",
    "cat >/dev/null; echo 'Loaded image(s): a.io/x:1,b.io/y:2'",
  );
  const loaded = await new PodmanRuntime({ path: old }).load(new Blob(["tar"]).stream());
  assert.deepEqual(loaded, { names: ["a.io/x:1", "b.io/y:2"], ids: [] });
  const silent = await fakeRuntime(dir.path, "podman-silent", "cat >/dev/null");
  await assert.rejects(new PodmanRuntime({ path: silent }).load(new Blob(["tar"]).stream()), {
    code: "RUNTIME_FAILED",
  });
});

Deno.test("PodmanRuntime.load() fails when the runtime exits 0 without reading its input", async () => {
  await using dir = makeTempDir("cmd-noread");
  const path = await fakeRuntime(dir.path, "podman", "exec 0<&-; echo 'Loaded image: a.io/x:1'");
  const big = new Uint8Array(4 * 1024 * 1024);
  await assert.rejects(new PodmanRuntime({ path }).load(new Blob([big]).stream()), (e: unknown) => {
    assert.ok(e instanceof DangerzoneError);
    assert.equal(e.code, "RUNTIME_FAILED");
    assert.match(e.message, /exited before reading all of its input/);
    return true;
  });
});
