/**
 * `mirror` as users run it (a child process) against real registries: a destination behind token auth
 * (credentials from `REGISTRY_AUTH_FILE`, as for reading, or from a real `docker-credential-*` helper
 * named by `credHelpers`), exit codes with one-line errors (2 usage,
 * 11 rollback, 12 registry), and a mirror killed in the middle of a large upload: the destination tag
 * stays where it was, and the next run finishes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { field, oneLine, runCli } from "../_helpers/cli.ts";
import { buildLargeImage } from "../_helpers/images.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { type RunningRegistry, startRegistry } from "../_helpers/registry.ts";
import { createCredentialResolver } from "../../src/registry/credentials.ts";
import { startSignedRegistry } from "../update/_fixture.ts";
import { destinationCredentials, tagDigest } from "../update/_mirror_fixture.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("mirror --to a token-auth registry: exit 0, JSON result; clients verify it with --identity", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "token" });
  await using tmp = makeTempDir("cli-mirror-token");
  const img = await sr.pushBusybox("pub/dz", "latest", "token mirror");
  await sr.sign(img.digest, { repository: "pub/dz", logIndex: 77 });
  const { env } = await destinationCredentials(tmp.path, dest);
  const args = [...sr.cliArgs(`${sr.reg.host}/pub/dz:latest`, join(tmp.path, "mirror-data")), "--json"];
  const r = await runCli(["mirror", ...args, "--to", `${dest.host}/org/dangerzone`], { env });
  assert.equal(r.code, 0, r.stderr);
  const doc: unknown = JSON.parse(r.stdout);
  assert.equal(field(doc, "destination"), `${dest.host}/org/dangerzone:latest`);
  assert.equal(field(doc, "digest"), img.digest);
  assert.equal(field(doc, "signatures", "legacySignatures"), 1);

  // a client of the mirror: store-signatures with --identity naming the publisher's repository
  const client = [
    "store-signatures",
    ...sr.cliArgs(`${dest.host}/org/dangerzone:latest`, join(tmp.path, "client")),
    "--identity",
    `${sr.reg.host}/pub/dz`,
    "--json",
  ];
  const stored = await runCli(client, { env });
  assert.equal(stored.code, 0, stored.stderr);
  assert.equal(field(JSON.parse(stored.stdout), "remote", "digest"), img.digest);
  // without --identity the mirror's repository is not what was signed: refused (exit 10)
  const noIdentity = await runCli(
    client.filter((a, i) => a !== "--identity" && client[i - 1] !== "--identity"),
    {
      env,
    },
  );
  assert.equal(noIdentity.code, 10, noIdentity.stderr);
});

Deno.test("mirror pushes with credentials from a real docker-credential helper (credHelpers in DOCKER_CONFIG)", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "token" });
  await using tmp = makeTempDir("cli-mirror-helper");
  const img = await sr.pushBusybox("pub/dz", "latest", "helper mirror");
  await sr.sign(img.digest, { repository: "pub/dz", logIndex: 78 });
  // docker-credential-dztest: the credential-helper protocol (`get`, the server on stdin, JSON out)
  const bin = join(tmp.path, "bin");
  const calls = join(tmp.path, "helper-calls");
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    join(bin, "docker-credential-dztest"),
    `#!/bin/sh\nread -r server\necho "$1 $server" >> '${calls}'\n` +
      `[ "$server" = '${dest.host}' ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
      `printf '{"ServerURL":"%s","Username":"${dest.username}","Secret":"${dest.password}"}' "$server"\n`,
  );
  await Deno.chmod(join(bin, "docker-credential-dztest"), 0o755);
  const dockerConfig = join(tmp.path, "docker");
  await Deno.mkdir(dockerConfig);
  await Deno.writeTextFile(
    join(dockerConfig, "config.json"),
    JSON.stringify({ credHelpers: { [dest.host]: "dztest" } }),
  );
  const env = {
    DOCKER_CONFIG: dockerConfig,
    HOME: tmp.path, // no other credential file
    PATH: `${bin}:${Deno.env.get("PATH") ?? ""}`,
  };
  const args = [...sr.cliArgs(`${sr.reg.host}/pub/dz:latest`, join(tmp.path, "data")), "--json"];
  const r = await runCli(["mirror", ...args, "--to", `${dest.host}/org/dangerzone`], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(field(JSON.parse(r.stdout), "digest"), img.digest);
  const reader = await destinationCredentials(tmp.path, dest);
  assert.equal(
    await tagDigest(`${dest.host}/org/dangerzone:latest`, {
      credentials: createCredentialResolver({ env: reader.env }),
    }),
    img.digest,
  );
  const asked = (await Deno.readTextFile(calls)).trim().split("\n");
  assert.ok(asked.length >= 1 && asked.every((line) => line === `get ${dest.host}`), asked.join(" | "));

  // a helper the configuration names but that is not installed: the source is verified, then one
  // error line naming it, exit 12, nothing pushed
  await Deno.writeTextFile(
    join(dockerConfig, "config.json"),
    JSON.stringify({ credHelpers: { [dest.host]: "missing" } }),
  );
  const none = await runCli(["mirror", ...args, "--to", `${dest.host}/org/other`], { env });
  assert.equal(none.code, 12, none.stderr);
  assert.equal(field(JSON.parse(none.stdout), "error", "code"), "CREDENTIALS_INVALID");
  assert.match(none.stderr.trim().split("\n").at(-1) ?? "", /^error: cannot run docker-credential-missing /);
  assert.equal(
    await tagDigest(`${dest.host}/org/other:latest`, {
      credentials: createCredentialResolver({ env: reader.env }),
    }),
    null,
  );
});

Deno.test("mirror exit codes: 2 without --to, 11 for an older image than the destination, 12 for a refused push", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "htpasswd" });
  await using tmp = makeTempDir("cli-mirror-codes");
  const newer = await sr.pushBusybox("pub/c", "new", "newer");
  await sr.sign(newer.digest, { repository: "pub/c", logIndex: 9 });
  const older = await sr.pushBusybox("pub/c", "old", "older");
  await sr.sign(older.digest, { repository: "pub/c", logIndex: 8 });
  const { env } = await destinationCredentials(tmp.path, dest);

  const usage = await runCli(["mirror", ...sr.cliArgs(`${sr.reg.host}/pub/c:new`, tmp.path)], { env });
  assert.equal(usage.code, 2, usage.stderr);

  const to = ["--to", `${dest.host}/dz/c:stable`];
  const ok = await runCli(["mirror", ...sr.cliArgs(`${sr.reg.host}/pub/c:new`, join(tmp.path, "a")), ...to], {
    env,
  });
  assert.equal(ok.code, 0, ok.stderr);
  const rollback = await runCli(
    ["mirror", ...sr.cliArgs(`${sr.reg.host}/pub/c:old`, join(tmp.path, "b")), ...to],
    { env },
  );
  assert.equal(rollback.code, 11, rollback.stderr);
  assert.match(oneLine(rollback.stderr), /^error: rollback refused/);

  const denied = await runCli(
    ["mirror", ...sr.cliArgs(`${sr.reg.host}/pub/c:new`, join(tmp.path, "c")), ...to],
    { env: { REGISTRY_AUTH_FILE: join(tmp.path, "none.json") } },
  );
  assert.equal(denied.code, 12, denied.stderr);
  assert.match(oneLine(denied.stderr), /^error: /);
  assert.doesNotMatch(denied.stderr, /internal error|\n\s+at /);
});

/** Bytes the registry holds in unfinished uploads of `repository`. */
async function uploadingBytes(reg: RunningRegistry, repository: string): Promise<number> {
  const dir = join(reg.dataDir, "docker", "registry", "v2", "repositories", repository, "_uploads");
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      try {
        n += (await Deno.stat(join(dir, e.name, "data"))).size;
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return n;
}

Deno.test("mirror killed in the middle of a large upload leaves the destination tag where it was", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("cli-mirror-kill");
  const small = await sr.pushBusybox("pub/k", "latest", "v1");
  await sr.sign(small.digest, { repository: "pub/k", logIndex: 1 });
  const args = [
    "mirror",
    ...sr.cliArgs(`${sr.reg.host}/pub/k:latest`, tmp.path),
    "--to",
    `${dest.host}/dz/k`,
  ];
  const first = await runCli(args);
  assert.equal(first.code, 0, first.stderr);

  const big = await buildLargeImage(join(tmp.path, "big"), { sizeMiB: 192 });
  const v2 = await sr.push(big, "pub/k", "latest");
  await sr.sign(v2, { repository: "pub/k", logIndex: 2 });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "-A", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 60_000;
  while ((await uploadingBytes(dest, "dz/k")) < 16 * 1024 * 1024) {
    if (Date.now() > deadline) throw new Error("the upload never started");
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  assert.equal((await child.status).signal, "SIGKILL");
  assert.equal(await tagDigest(`${dest.host}/dz/k:latest`), small.digest);

  const again = await runCli(args);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await tagDigest(`${dest.host}/dz/k:latest`), v2);
});
