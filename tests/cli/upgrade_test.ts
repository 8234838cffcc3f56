/**
 * `upgrade` end to end: the CLI as a child process against the real registry (CNCF distribution) and real
 * podman (and the docker CLI over podman's API socket), with signatures made by the tests. Covers fresh
 * install, already up to date, a newer image with `--prune`, rollback refused with the old image and its
 * signatures intact, `--max-age`, `--json` with NDJSON progress, a tampered layer, SIGKILL mid-download,
 * right after the load and right before the tag, and two concurrent runs.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, pathExists as exists, runCli } from "../_helpers/cli.ts";
import { buildLargeImage } from "../_helpers/images.ts";
import { type RunningPodman, startDockerApi, startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { type SignedRegistry, startSignedRegistry } from "../update/_fixture.ts";
import { startSlowProxy } from "../update/_slow_proxy.ts";
import { buildBundle } from "../../scripts/bundle.ts";

const REPO = "sandbox/app";
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

function json(r: CliResult): Record<string, unknown> {
  const doc: unknown = JSON.parse(r.stdout);
  assert.ok(typeof doc === "object" && doc !== null && !Array.isArray(doc), r.stdout);
  return Object.fromEntries(Object.entries(doc));
}

function errorCode(r: CliResult): unknown {
  const e = json(r).error;
  return typeof e === "object" && e !== null ? Reflect.get(e, "code") : undefined;
}

async function signatureFiles(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const root = join(dataDir, "signatures");
  if (!(await exists(root))) return out;
  for await (const key of Deno.readDir(root)) {
    if (!key.isDirectory) continue;
    for await (const f of Deno.readDir(join(root, key.name))) out.push(`${key.name}/${f.name}`);
  }
  return out.sort();
}

async function snapshot(dataDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await signatureFiles(dataDir)) {
    out[f] = await Deno.readTextFile(join(dataDir, "signatures", f));
  }
  for (const f of ["last_log_index", "log_state.json"]) {
    const p = join(dataDir, "signatures", f);
    if (await exists(p)) out[f] = await Deno.readTextFile(p);
  }
  return out;
}

async function imageIds(pm: RunningPodman): Promise<string[]> {
  const r = await pm.podman(["images", "-q", "--no-trunc"]);
  const ids = r.stdout.trim().split("\n").filter((l) => l !== "").map((l) => l.replace(/^sha256:/, ""));
  return [...new Set(ids)].sort();
}

/** The CLI's common arguments plus `--runtime podman`. */
function cli(sr: SignedRegistry, image: string, dataDir: string): string[] {
  return [...sr.cliArgs(image, dataDir), "--runtime", "podman"];
}

Deno.test("upgrade: install, up to date, newer with --prune, rollback refused, --max-age (real podman)", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("upgrade-data");
  const dataDir = join(data.path, "state");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const env = { ...pm.env, ...sr.env };
  const args = cli(sr, image, dataDir);
  const now = Math.floor(Date.now() / 1000);
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  await sr.sign(v1.digest, { repository: REPO, logIndex: 100, integratedTime: now - 86400 });

  await t.step("fresh install: exit 0, --json on stdout, NDJSON progress on stderr", async () => {
    const r = await runCli(["upgrade", ...args, "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const doc = json(r);
    assert.equal(doc.status, "upgraded");
    assert.equal(doc.digest, v1.digest);
    assert.equal(doc.logIndex, 100);
    assert.deepEqual(doc.warnings, []);
    const events = r.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assert.ok(events.some((e) => e.phase === "download" && e.final === true), r.stderr);
    assert.ok(events.some((e) => e.phase === "load" && e.final === true && e.done === e.total), r.stderr);
    assert.equal((await Deno.readTextFile(join(dataDir, "signatures", "last_log_index"))).trim(), "100");
    assert.equal(await exists(join(dataDir, "cache")), false, "the cache is emptied after success");
    const local = await runCli(["verify-local", ...args], { env });
    assert.equal(local.code, 0, local.stderr);
    const tags = await pm.podman(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert.deepEqual(tags.stdout.trim().split("\n"), [image], "no staging name is left");
  });

  await t.step("again: already up to date, exit 0, nothing downloaded", async () => {
    const r = await runCli(["upgrade", ...args], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /already up to date/);
    assert.doesNotMatch(r.stdout, /downloading/);
  });

  const v2 = await sr.pushBusybox(REPO, "latest", "v2");
  await sr.sign(v2.digest, { repository: REPO, logIndex: 101, integratedTime: now });

  await t.step("a newer signed image: upgraded, --prune removes v1", async () => {
    const r = await runCli(["upgrade", ...args, "--prune", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const doc = json(r);
    assert.equal(doc.status, "upgraded");
    assert.equal(doc.digest, v2.digest);
    assert.deepEqual(doc.pruned, [v1.configDigest]);
    assert.deepEqual(await imageIds(pm), [v2.configDigest.slice(7)]);
    assert.equal((await Deno.readTextFile(join(dataDir, "signatures", "last_log_index"))).trim(), "101");
    assert.equal((await runCli(["verify-local", ...args], { env })).code, 0);
  });

  await t.step(
    "rollback: the tag moves back to v1 (index 100): exit 11, v2 and the store intact",
    async () => {
      await sr.push({ ...v1 }, REPO, "latest");
      const before = await snapshot(dataDir);
      const r = await runCli(["upgrade", ...args, "--json"], { env });
      assert.equal(r.code, 11, r.stderr);
      assert.equal(errorCode(r), "ROLLBACK");
      assert.deepEqual(await snapshot(dataDir), before);
      assert.deepEqual(await imageIds(pm), [v2.configDigest.slice(7)]);
      const local = await runCli(["verify-local", ...args], { env });
      assert.equal(local.code, 0, local.stderr);
    },
  );

  await t.step("--max-age: a newer image signed 40 days ago installs with a warning", async () => {
    const v3 = await sr.pushBusybox(REPO, "latest", "v3");
    await sr.sign(v3.digest, { repository: REPO, logIndex: 102, integratedTime: now - 40 * 86400 });
    const r = await runCli(["upgrade", ...args, "--max-age", "30", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    const doc = json(r);
    assert.equal(doc.digest, v3.digest);
    assert.equal(Reflect.get(Object(doc.signatureAge), "stale"), true);
    assert.match(String(doc.warnings), /40 days old/);
    assert.match(r.stderr, /warning: .*40 days old/);
    const quiet = await runCli(["upgrade", ...args, "--max-age", "60"], { env });
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /warning/);
    const bad = await runCli(["upgrade", ...args, "--max-age", "soon"], { env });
    assert.equal(bad.code, 2, bad.stderr);
  });
});

Deno.test("upgrade: a tampered layer in the registry is refused (exit 12), nothing loaded or stored", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("upgrade-data");
  const dataDir = join(data.path, "state");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  await sr.sign(v1.digest, { repository: REPO, logIndex: 7 });
  const layer = v1.layerDigests[0]?.slice(7) ?? "";
  const blob = join(sr.reg.dataDir, "docker/registry/v2/blobs/sha256", layer.slice(0, 2), layer, "data");
  const bytes = await Deno.readFile(blob);
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
  await Deno.writeFile(blob, bytes);
  const r = await runCli(["upgrade", ...cli(sr, image, dataDir), "--json"], {
    env: { ...pm.env, ...sr.env },
  });
  assert.equal(r.code, 12, r.stderr);
  assert.equal(errorCode(r), "DIGEST_MISMATCH");
  assert.deepEqual(await imageIds(pm), []);
  assert.deepEqual(await signatureFiles(dataDir), []);
  assert.equal(await exists(join(dataDir, "signatures", "last_log_index")), false);
});

/** Spawns the CLI, kills it with SIGKILL once `when()` is true, and returns after it died. */
async function killWhen(
  args: string[],
  env: Record<string, string>,
  when: () => Promise<boolean>,
): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (await when()) break;
    if (Date.now() > deadline) throw new Error("the kill condition never became true");
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    child.kill("SIGKILL");
  } catch (err) {
    // a wrapper runtime may have killed it already (also with SIGKILL)
    if (!(err instanceof TypeError)) throw err;
  }
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
}

async function partialBytes(dataDir: string): Promise<number> {
  const dir = join(dataDir, "cache", "blobs", "sha256");
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".partial")) n += (await Deno.stat(join(dir, e.name))).size;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return n;
}

/** A podman wrapper that SIGKILLs its caller (the CLI) right after `podman load`, or instead of `podman tag`. */
async function killingPodman(dir: string, on: "load" | "tag"): Promise<string> {
  const path = join(dir, `podman-kill-${on}`);
  const script = on === "load"
    ? `#!/bin/sh\npodman "$@"; rc=$?\nif [ "$1" = load ]; then kill -9 $PPID; fi\nexit $rc\n`
    : `#!/bin/sh\nif [ "$1" = tag ]; then kill -9 $PPID; exit 1; fi\nexec podman "$@"\n`;
  await Deno.writeTextFile(path, script, { mode: 0o755 });
  return path;
}

Deno.test("upgrade: SIGKILL mid-download, right after load, before tag: v1 still verifies, the next run completes", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("upgrade-data");
  await using proxy = startSlowProxy(sr.reg, 16 * 1024 * 1024);
  const dataDir = join(data.path, "state");
  const image = `${proxy.host}/${REPO}:latest`;
  const reference = `${proxy.host}/${REPO}`;
  const env = { ...pm.env, ...sr.env };
  const args = cli(sr, image, dataDir);
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  await sr.sign(v1.digest, { repository: REPO, reference, logIndex: 10 });
  assert.equal((await runCli(["upgrade", ...args], { env })).code, 0);
  const installed = await snapshot(dataDir);

  const big = await buildLargeImage(join(data.path, "big"), { sizeMiB: 64 });
  await sr.push(big, REPO, "latest");
  await sr.sign(big.digest, { repository: REPO, reference, logIndex: 11 });

  async function v1StillVerifies(): Promise<void> {
    assert.deepEqual(await snapshot(dataDir), installed);
    const local = await runCli(["verify-local", ...args, "--json"], { env });
    assert.equal(local.code, 0, local.stderr);
    assert.equal(json(local).digest, v1.digest);
  }

  await t.step("killed mid-download", async () => {
    await killWhen(["upgrade", ...args], env, async () => (await partialBytes(dataDir)) > 8 * 1024 * 1024);
    assert.ok((await partialBytes(dataDir)) > 0, "the partial download is kept for resuming");
    await v1StillVerifies();
  });

  await t.step("killed right after podman load, before anything is stored", async () => {
    const wrapper = await killingPodman(data.path, "load");
    await killWhen(["upgrade", ...args, "--runtime-path", wrapper], env, async () => {
      const r = await pm.podman(["images", "-q", "--no-trunc"]);
      return r.stdout.includes(big.configDigest.slice(7));
    });
    await new Promise((r) => setTimeout(r, 500));
    await v1StillVerifies();
  });

  await t.step("killed after storing, instead of tagging", async () => {
    const wrapper = await killingPodman(data.path, "tag");
    const r = await runCli(["upgrade", ...args, "--runtime-path", wrapper], { env });
    assert.notEqual(r.code, 0);
    const local = await runCli(["verify-local", ...args, "--json"], { env });
    assert.equal(local.code, 0, local.stderr);
    assert.equal(json(local).digest, v1.digest, "the name stays on v1, whose signatures are still stored");
  });

  await t.step("the next run completes and the new image verifies", async () => {
    // staging names other killed runs (other digests, layout and streamed loads) left behind go too
    const stale = [
      `localhost/dz-staging-${"0".repeat(16)}:latest`,
      `${reference}:dz-staging-${"1".repeat(16)}`,
    ];
    for (const name of stale) await pm.podman(["tag", v1.configDigest.slice(7), name]);
    const before = proxy.requests.length;
    const r = await runCli(["upgrade", ...args, "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(json(r).digest, big.digest);
    const local = await runCli(["verify-local", ...args, "--json"], { env });
    assert.equal(local.code, 0, local.stderr);
    assert.equal(json(local).digest, big.digest);
    assert.ok(proxy.requests.length >= before);
    const names = (await pm.podman(["images", "--format", "{{.Repository}}:{{.Tag}}"])).stdout;
    assert.doesNotMatch(names, /dz-staging/);
  });
});

/**
 * A signed single-layer image of `sizeMiB` MiB behind a proxy that serves 16 MiB/s (so a run can be
 * killed mid-download), a podman, and the CLI arguments for a data dir.
 */
async function slowBigImage(sizeMiB: number) {
  const sr = await startSignedRegistry("plain");
  const pm = await startPodman();
  const data = makeTempDir("upgrade-data");
  const proxy = startSlowProxy(sr.reg, 16 * 1024 * 1024);
  const dataDir = join(data.path, "state");
  const image = `${proxy.host}/${REPO}:latest`;
  const big = await buildLargeImage(join(data.path, "big"), { sizeMiB });
  await sr.push(big, REPO, "latest");
  await sr.sign(big.digest, { repository: REPO, reference: `${proxy.host}/${REPO}`, logIndex: 1 });
  return {
    sr,
    proxy,
    dataDir,
    big,
    env: { ...pm.env, ...sr.env },
    args: cli(sr, image, dataDir),
    async [Symbol.asyncDispose]() {
      await proxy[Symbol.asyncDispose]();
      await pm.stop();
      await sr[Symbol.asyncDispose]();
      await data.remove();
    },
  };
}

Deno.test("upgrade: a resumed download sends Range after SIGKILL", async () => {
  await using w = await slowBigImage(48);
  const { proxy, dataDir, env, big } = w;
  const args = [...w.args, "--connections", "1"]; // one stream: its resume is `bytes=N-` (ranges: parallel_download_test)
  await killWhen(["upgrade", ...args], env, async () => (await partialBytes(dataDir)) > 8 * 1024 * 1024);
  const kept = await partialBytes(dataDir);
  assert.ok(kept > 8 * 1024 * 1024);
  const r = await runCli(["upgrade", ...args], { env });
  assert.equal(r.code, 0, r.stderr);
  const layer = big.layerDigests[0] ?? "";
  const ranged = proxy.requests.filter((q) => q.url.includes(layer) && q.headers["range"] !== undefined);
  assert.ok(ranged.length >= 1, "the layer download resumed with Range");
  const start = Number(/bytes=(\d+)-/.exec(ranged.at(-1)?.headers["range"] ?? "")?.[1]);
  assert.ok(start >= kept - 1024 * 1024 && start <= kept, `resumed at ${start}, kept ${kept}`);
});

Deno.test("upgrade: two concurrent runs never interleave (one gets LOCK_HELD)", async () => {
  await using w = await slowBigImage(32);
  const env = w.env;
  const args = [...w.args, "--json"];
  const [a, b] = await Promise.all([
    runCli(["upgrade", ...args], { env }),
    runCli(["upgrade", ...args], { env }),
  ]);
  const codes = [a.code, b.code].sort();
  assert.deepEqual(codes, [0, 1], `${a.stderr}\n${b.stderr}`);
  const loser = a.code === 1 ? a : b;
  assert.equal(errorCode(loser), "LOCK_HELD");
  const local = await runCli(["verify-local", ...w.args], { env });
  assert.equal(local.code, 0, local.stderr);
});

Deno.test("upgrade: the docker CLI against podman's API socket (install, up to date, verify-local)", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using api = await startDockerApi(pm);
  await using data = makeTempDir("upgrade-data");
  const dataDir = join(data.path, "state");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const env = { ...api.env, ...sr.env };
  const args = [...sr.cliArgs(image, dataDir), "--runtime", "docker"];
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  await sr.sign(v1.digest, { repository: REPO, logIndex: 3 });
  const r = await runCli(["upgrade", ...args, "--json"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(json(r).runtime, "docker");
  const again = await runCli(["upgrade", ...args, "--json"], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(json(again).status, "up-to-date");
  const local = await runCli(["verify-local", ...args], { env });
  assert.equal(local.code, 0, local.stderr);
  const ids = await api.docker(["images", "-q", "--no-trunc"]);
  assert.deepEqual([...new Set(ids.stdout.trim().split("\n"))], [v1.configDigest]);
});

/**
 * The narrowest Deno permissions for `upgrade` (README "Permissions"): network to the registry only, run
 * podman only, read the data dir and the key files, write the data dir, two env variables, and two sys
 * calls (the lock's host name, the free-space check). Run from the bundle artifact with `--no-prompt`.
 */
export function upgradePermissions(o: {
  registry: string;
  podman: string;
  dataDir: string;
  keyFiles: string[];
}): string[] {
  return [
    `--allow-net=${o.registry}`,
    `--allow-run=${o.podman}`,
    `--allow-read=${[o.dataDir, ...o.keyFiles, "/etc/os-release"].join(",")}`,
    `--allow-write=${o.dataDir}`,
    "--allow-env=SIGSTORE_REKOR_PUBLIC_KEY,TERM",
    "--allow-sys=hostname,statfs",
  ];
}

Deno.test("upgrade: runs from the bundle artifact under the narrowest permissions (--no-prompt)", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("upgrade-data");
  const dataDir = join(data.path, "state");
  // the bundle folder lies outside every --allow-read: loading its chunks needs no permission
  const bundle = await buildBundle(join(data.path, "dz"));
  const image = `${sr.reg.host}/${REPO}:latest`;
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  await sr.sign(v1.digest, { repository: REPO, logIndex: 5 });
  const permissions = upgradePermissions({
    registry: sr.reg.host,
    podman: "podman",
    dataDir,
    keyFiles: [sr.pubkeyFile, sr.rekorKeyFile],
  });
  const args = ["upgrade", ...cli(sr, image, dataDir), "--json"];
  const r = await runCli(args, { env: pm.env, entry: bundle, permissions });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(json(r).digest, v1.digest);
  assert.doesNotMatch(r.stderr, /could not check free disk space/);
  const again = await runCli(args, { env: pm.env, entry: bundle, permissions });
  assert.equal(json(again).status, "up-to-date", again.stderr);
  // one permission less: a clean one-line failure, never a prompt
  const denied = await runCli(args, {
    env: pm.env,
    entry: bundle,
    permissions: permissions.filter((p) => !p.startsWith("--allow-net")),
  });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /net|network|NotCapable|Requires/i);
});
