/**
 * Proves the real-service test harness works: each registry mode answers as it should, images push with
 * their digests intact, podman loads them, and the docker CLI sees them through podman's socket.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  buildBusyboxImage,
  buildLargeImage,
  buildMultiArchImage,
  pushImage,
  tagManifest,
  writeLayoutTar,
} from "./images.ts";
import { startDockerApi, startPodman } from "./podman.ts";
import { freePort } from "./ports.ts";
import { makeTempDir, runCommand, spawnProcess, waitUntil } from "./process.ts";
import { type RegistryMode, startRegistry } from "./registry.ts";
import { libtrustKeyId } from "./token_server.ts";
import { validateLayout } from "./validate_layout.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

function basic(user: string, password: string): string {
  return `Basic ${btoa(`${user}:${password}`)}`;
}

async function status(res: Response): Promise<number> {
  await res.body?.cancel();
  return res.status;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

Deno.test("freePort() returns a bindable loopback port", () => {
  const port = freePort();
  assert.ok(port > 0 && port < 65536);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});

Deno.test("spawnProcess() stops a child by PID, escalating to SIGKILL when SIGTERM is ignored", async () => {
  await using dir = makeTempDir("proc");
  const logFile = join(dir.path, "child.log");
  const proc = spawnProcess("sh", {
    args: ["-c", 'trap "" TERM; echo started; while :; do :; done'],
    logFile,
  });
  await waitUntil(async () => (await proc.logTail()).includes("started"), {
    what: "child start",
    process: proc,
  });
  const st = await proc.stop({ graceMs: 200 });
  assert.equal(st.signal, "SIGKILL");
  assert.equal(proc.exitStatus?.success, false);
  assert.equal((await proc.stop()).signal, "SIGKILL", "stop() is idempotent");
});

Deno.test("waitUntil() reports the log tail when the process dies first", async () => {
  await using dir = makeTempDir("proc");
  const proc = spawnProcess("sh", {
    args: ["-c", "echo boom-marker; exit 3"],
    logFile: join(dir.path, "x.log"),
  });
  await assert.rejects(
    waitUntil(() => Promise.resolve(false), { what: "never", process: proc }),
    /exited \(code 3\)[\s\S]*boom-marker/,
  );
  await proc.stop();
});

for (const mode of ["plain", "tls"] as const satisfies RegistryMode[]) {
  Deno.test(`startRegistry() ${mode} mode answers /v2/ with 200 and stops cleanly`, async () => {
    const reg = await startRegistry({ mode });
    try {
      assert.equal(reg.url, `${mode === "tls" ? "https" : "http"}://${reg.host}`);
      assert.equal(await status(await reg.fetch("/v2/")), 200);
      if (mode === "tls") {
        assert.ok(reg.caCertPem?.includes("BEGIN CERTIFICATE"));
        // without the test CA the certificate is refused
        await assert.rejects(fetch(`${reg.url}/v2/`), TypeError);
        const { stdout } = await runCommand("curl", [
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--cacert",
          reg.caCertFile ?? "",
          `https://localhost:${reg.port}/v2/`,
        ]);
        assert.equal(stdout, "200", "the leaf certificate also names localhost");
      }
    } finally {
      await reg.stop();
    }
    assert.notEqual(reg.process.exitStatus, undefined);
    await assert.rejects(Deno.stat(reg.dataDir), Deno.errors.NotFound);
  });
}

Deno.test("startRegistry() htpasswd mode wants Basic credentials", async () => {
  await using reg = await startRegistry({ mode: "htpasswd", username: "alice", password: "s3cret" });
  const res = await reg.fetch("/v2/");
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Basic realm="dangerzone-test-registry"');
  await res.body?.cancel();
  assert.equal(
    await status(await reg.fetch("/v2/", { headers: { authorization: basic("alice", "wrong") } })),
    401,
  );
  assert.equal(
    await status(await reg.fetch("/v2/", { headers: { authorization: basic("alice", "s3cret") } })),
    200,
  );
});

Deno.test("startRegistry() token mode accepts ES256 tokens from the token server, by libtrust kid", async () => {
  await using reg = await startRegistry({ mode: "token" });
  const ts = reg.tokenServer;
  assert.ok(ts !== undefined && reg.username !== undefined && reg.password !== undefined);
  const challenge = await reg.fetch("/v2/sandbox/app/manifests/v1", { headers: { accept: OCI_MANIFEST } });
  assert.equal(challenge.status, 401);
  assert.equal(
    challenge.headers.get("www-authenticate"),
    `Bearer realm="${ts.realm}",service="${ts.service}",scope="repository:sandbox/app:pull"`,
  );
  await challenge.body?.cancel();

  const tokenUrl = `${ts.realm}?service=${ts.service}&scope=repository:sandbox/app:pull,push`;
  assert.equal(await status(await fetch(tokenUrl)), 401, "no anonymous tokens unless configured");
  assert.equal(
    await status(await fetch(tokenUrl, { headers: { authorization: basic(reg.username, "wrong") } })),
    401,
  );
  const res = await fetch(tokenUrl, { headers: { authorization: basic(reg.username, reg.password) } });
  const body: unknown = await res.json();
  assert.equal(res.status, 200);
  assert.ok(typeof body === "object" && body !== null && "token" in body && typeof body.token === "string");
  const token = body.token;
  const [header] = token.split(".");
  const headerJson: unknown = JSON.parse(atob((header ?? "").replaceAll("-", "+").replaceAll("_", "/")));
  assert.deepEqual(headerJson, { typ: "JWT", alg: "ES256", kid: ts.keyId });
  assert.match(ts.keyId, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);

  const bearer = { authorization: `Bearer ${token}` };
  assert.equal(await status(await reg.fetch("/v2/", { headers: bearer })), 200);
  // granted scope: the (empty) repository answers 404, not 401; another repository is out of scope
  assert.equal(await status(await reg.fetch("/v2/sandbox/app/tags/list", { headers: bearer })), 404);
  const other = await reg.fetch("/v2/sandbox/other/tags/list", { headers: bearer });
  assert.equal(other.status, 401);
  assert.match(other.headers.get("www-authenticate") ?? "", /error="insufficient_scope"/);
  await other.body?.cancel();

  const expired = await ts.mint({ subject: "tester", access: [], expiresInSeconds: -120 });
  assert.equal(
    await status(await reg.fetch("/v2/", { headers: { authorization: `Bearer ${expired}` } })),
    401,
  );

  const last = ts.requests.at(-1);
  assert.deepEqual(last?.scopes, ["repository:sandbox/app:pull,push"]);
  assert.deepEqual(last?.granted, [{ type: "repository", name: "sandbox/app", actions: ["pull", "push"] }]);
  assert.equal(last?.account, reg.username);
});

Deno.test("startRegistry() token mode can grant anonymous pull only", async () => {
  await using reg = await startRegistry({ mode: "token", anonymousPull: true });
  const ts = reg.tokenServer;
  assert.ok(ts !== undefined);
  const res = await fetch(`${ts.realm}?service=${ts.service}&scope=repository:sandbox/app:pull,push`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
  assert.deepEqual(ts.requests.at(-1)?.granted, [{
    type: "repository",
    name: "sandbox/app",
    actions: ["pull"],
  }]);
  assert.equal(ts.requests.at(-1)?.account, undefined);
});

Deno.test("libtrustKeyId() matches the openssl + base32 derivation distribution uses", async () => {
  await using dir = makeTempDir("kid");
  const key = join(dir.path, "k.pem");
  await runCommand("openssl", [
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    key,
  ]);
  const der = join(dir.path, "pub.der");
  await runCommand("openssl", ["pkey", "-in", key, "-pubout", "-outform", "DER", "-out", der]);
  const spki = await Deno.readFile(der);
  const digest = createHash("sha256").update(spki).digest().subarray(0, 30);
  // independent base32 via coreutils
  const { stdout } = await runCommand("base32", ["-w0"], { stdin: digest });
  const expected = (stdout.match(/.{4}/g) ?? []).join(":");
  assert.equal(await libtrustKeyId(spki), expected);
});

Deno.test("pushImage() keeps digests; the registry serves the exact manifest, index and blob bytes", async () => {
  await using dir = makeTempDir("push");
  await using reg = await startRegistry({ mode: "plain" });
  const img = await buildBusyboxImage(join(dir.path, "bb"), { text: "v1" });
  const idx = await buildMultiArchImage(join(dir.path, "multi"));
  for (const layout of [img.layoutDir, idx.layoutDir]) {
    const report = await validateLayout(layout);
    assert.deepEqual(report.problems, []);
  }
  const pushed = await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
  assert.equal(pushed.digest, img.digest);
  assert.equal(pushed.reference, `${reg.host}/sandbox/app:v1`);
  assert.equal((await pushImage(idx, reg, { repository: "sandbox/multi", tag: "1.0" })).digest, idx.digest);

  const m = await reg.fetch("/v2/sandbox/app/manifests/v1", { headers: { accept: OCI_MANIFEST } });
  assert.equal(sha256(new Uint8Array(await m.arrayBuffer())), img.digest);
  const i = await reg.fetch("/v2/sandbox/multi/manifests/1.0", {
    headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` },
  });
  assert.equal(i.headers.get("content-type"), OCI_INDEX);
  assert.equal(sha256(new Uint8Array(await i.arrayBuffer())), idx.digest);
  assert.deepEqual(idx.platforms.map((p) => p.platform), ["linux/amd64", "linux/arm64"]);
  for (const p of idx.platforms) {
    const pm = await reg.fetch(`/v2/sandbox/multi/manifests/${p.digest}`, {
      headers: { accept: OCI_MANIFEST },
    });
    assert.equal(sha256(new Uint8Array(await pm.arrayBuffer())), p.digest);
  }
  for (const blob of [img.configDigest, ...img.layerDigests]) {
    const b = await reg.fetch(`/v2/sandbox/app/blobs/${blob}`);
    assert.equal(sha256(new Uint8Array(await b.arrayBuffer())), blob);
  }
  await tagManifest(reg, { repository: "sandbox/app", from: "v1", tags: ["a", "b"] });
  const tags = await reg.fetch("/v2/sandbox/app/tags/list");
  const list: unknown = await tags.json();
  // distribution 2.8 lists tags in directory order unless paginated
  assert.ok(typeof list === "object" && list !== null && "tags" in list && Array.isArray(list.tags));
  assert.deepEqual([...list.tags].sort(), ["a", "b", "v1"]);
  // a "newer" image differs
  const img2 = await buildBusyboxImage(join(dir.path, "bb2"), { text: "v2" });
  assert.notEqual(img2.digest, img.digest);
});

for (const mode of ["tls", "htpasswd", "token"] as const satisfies RegistryMode[]) {
  Deno.test(`pushImage() pushes to a ${mode} registry with its CA or credentials`, async () => {
    await using dir = makeTempDir("push");
    await using reg = await startRegistry({ mode });
    const img = await buildBusyboxImage(join(dir.path, "bb"));
    assert.equal((await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" })).digest, img.digest);
    const anon = await reg.fetch("/v2/sandbox/app/manifests/v1", { headers: { accept: OCI_MANIFEST } });
    assert.equal(await status(anon), mode === "tls" ? 200 : 401);
    const auth = await reg.authHeaders("sandbox/app");
    const m = await reg.fetch("/v2/sandbox/app/manifests/v1", { headers: { ...auth, accept: OCI_MANIFEST } });
    assert.equal(sha256(new Uint8Array(await m.arrayBuffer())), img.digest);
    if (mode !== "tls") {
      await assert.rejects(
        pushImage(img, reg, {
          repository: "sandbox/app",
          tag: "v2",
          creds: { username: "tester", password: "bad" },
        }),
        /skopeo copy .* failed/,
      );
    }
  });
}

Deno.test("buildLargeImage() streams an uncompressed random layer of the requested size", async () => {
  await using dir = makeTempDir("large");
  const img = await buildLargeImage(join(dir.path, "large"), { sizeMiB: 3 });
  const layer = img.layerDigests[0];
  assert.ok(layer !== undefined);
  const st = await Deno.stat(join(img.layoutDir, "blobs", "sha256", layer.slice(7)));
  assert.equal(st.size, 3 * 1024 * 1024 + 512 + 1024);
  const { stdout } = await runCommand("tar", [
    "-tvf",
    join(img.layoutDir, "blobs", "sha256", layer.slice(7)),
  ]);
  assert.match(stdout, /3145728 .* random\.bin/);
  assert.deepEqual((await validateLayout(img.layoutDir)).problems, []);
});

Deno.test("validateLayout() reports every mismatch together", async () => {
  await using dir = makeTempDir("validate");
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  const blobs = join(img.layoutDir, "blobs", "sha256");
  const layer = img.layerDigests[0];
  assert.ok(layer !== undefined);
  // tamper with the config (digest mismatch), delete the layer, leave a temp file behind
  const configPath = join(blobs, img.configDigest.slice(7));
  const config = await Deno.readTextFile(configPath);
  await Deno.writeTextFile(configPath, config.replace('"amd64"', '"arm64"'));
  await Deno.remove(join(blobs, layer.slice(7)));
  await Deno.writeTextFile(join(blobs, "abc.tmp"), "partial");
  const report = await validateLayout(img.layoutDir);
  assert.equal(report.ok, false);
  const text = report.problems.join("\n");
  assert.match(text, new RegExp(`${img.configDigest.slice(7)}: content hashes to`));
  assert.match(text, new RegExp(`blob ${layer} is missing`));
  assert.match(text, /abc\.tmp: stray file/);
  assert.equal(report.problems.length, 3, text);

  // a size that disagrees with the descriptor
  const idx = await buildMultiArchImage(join(dir.path, "multi"));
  const indexJson = join(idx.layoutDir, "index.json");
  const raw = await Deno.readTextFile(indexJson);
  await Deno.writeTextFile(indexJson, raw.replace(`"size":${idx.size}`, `"size":${idx.size + 1}`));
  const r2 = await validateLayout(idx.layoutDir);
  assert.deepEqual(r2.problems, [
    `index.json.manifests[2]: blob ${idx.digest} has ${idx.size} bytes, descriptor says ${idx.size + 1}`,
  ]);
});

Deno.test("startPodman() loads and pulls images and reports the manifest digest; docker CLI sees them", async () => {
  await using dir = makeTempDir("podman");
  await using reg = await startRegistry({ mode: "plain" });
  await using pm = await startPodman();
  const img = await buildBusyboxImage(join(dir.path, "bb"), {
    name: "example.com/sandbox/img:1.0",
    text: "hi",
  });
  const tar = join(dir.path, "img.tar");
  await writeLayoutTar(img.layoutDir, tar);
  const loaded = await pm.podman(["load", "-q", "-i", tar]);
  assert.equal(loaded.stdout.trim(), "Loaded image: example.com/sandbox/img:1.0");
  const inspect = await pm.podman([
    "image",
    "inspect",
    "example.com/sandbox/img:1.0",
    "--format",
    "{{.Digest}} {{.Id}}",
  ]);
  assert.equal(inspect.stdout.trim(), `${img.digest} ${img.configDigest.slice(7)}`);
  const run = await pm.podman(["run", "--rm", "example.com/sandbox/img:1.0"]);
  assert.equal(run.stdout, "hi\n");
  const missing = await pm.podman(["image", "inspect", "example.com/none:1"], { check: false });
  assert.notEqual(missing.code, 0);

  await pushImage(img, reg, { repository: "sandbox/pulled", tag: "v1" });
  await pm.podman(["pull", "-q", "--tls-verify=false", `${reg.host}/sandbox/pulled:v1`]);
  const pulled = await pm.podman([
    "image",
    "inspect",
    `${reg.host}/sandbox/pulled:v1`,
    "--format",
    "{{.Digest}}",
  ]);
  assert.equal(pulled.stdout.trim(), img.digest);

  await using api = await startDockerApi(pm);
  assert.match(api.dockerHost, /^unix:\/\/.*docker\.sock$/);
  const version = await api.docker(["version", "--format", "{{.Server.Version}}"]);
  assert.match(version.stdout.trim(), /^\d+\.\d+/);
  const seen = await api.docker([
    "image",
    "inspect",
    "example.com/sandbox/img:1.0",
    "--format",
    "{{json .RepoDigests}}",
  ]);
  const repoDigests: unknown = JSON.parse(seen.stdout);
  assert.ok(Array.isArray(repoDigests));
  assert.ok(repoDigests.includes(`example.com/sandbox/img@${img.digest}`), seen.stdout);
});
