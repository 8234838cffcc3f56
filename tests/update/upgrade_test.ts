/**
 * `upgradeImage()` as a library against the real registry and real podman: the runtime must report the
 * verified digest (a runtime that reports another is refused with RUNTIME_DIGEST_MISMATCH and nothing is
 * stored), the free-space check stops before any download (DISK_FULL), a held lock is LOCK_HELD, and the
 * progress reporter sees both phases. Also `createProgress()` and `checkDiskSpace()` on their own.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import type { Digest } from "../../src/oci/digest.ts";
import { PodmanRuntime } from "../../src/runtime/podman.ts";
import type { ContainerRuntime } from "../../src/runtime/runtime.ts";
import { StoreLock } from "../../src/store/lock.ts";
import { checkDiskSpace } from "../../src/update/disk_space.ts";
import { createProgress, type ProgressEvent } from "../../src/update/progress.ts";
import { upgradeImage } from "../../src/update/upgrade.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startSignedRegistry } from "./_fixture.ts";

const REPO = "sandbox/app";

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => err instanceof DangerzoneError && err.code === code;
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    const out: string[] = [];
    for await (const e of Deno.readDir(dir)) out.push(e.name);
    return out;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** A registry with a signed busybox `v1` (log index 1), a podman and a data dir (not created). */
async function signedV1() {
  const sr = await startSignedRegistry("plain");
  const pm = await startPodman();
  const data = makeTempDir("upgrade-lib");
  const v1 = await sr.pushBusybox(REPO, "latest", "v1");
  await sr.sign(v1.digest, { repository: REPO, logIndex: 1 });
  return {
    sr,
    dataDir: join(data.path, "state"),
    v1,
    podman: new PodmanRuntime({ env: pm.env }),
    async [Symbol.asyncDispose]() {
      await pm.stop();
      await sr[Symbol.asyncDispose]();
      await data.remove();
    },
  };
}

Deno.test("upgradeImage() refuses a runtime that does not report the verified digest, storing nothing", async () => {
  await using w = await signedV1();
  const { sr, dataDir, podman } = w;
  const other = "sha256:" + "0".repeat(64) as Digest;
  const lying: ContainerRuntime = {
    name: podman.name,
    path: podman.path,
    version: () => podman.version(),
    load: (a) => podman.load(a),
    canLoadLayout: () => podman.canLoadLayout(),
    loadLayout: (d) => podman.loadLayout(d),
    tag: (s, t) => podman.tag(s, t),
    list: (o) => podman.list(o),
    inspect: (r) => podman.inspect(r),
    exists: (r) => podman.exists(r),
    remove: (r, o) => podman.remove(r, o),
    digestsOf: () => Promise.resolve([other]),
  };
  using ctx = await sr.context(`${sr.reg.host}/${REPO}:latest`, dataDir, {
    runtime: () => Promise.resolve(lying),
  });
  await assert.rejects(upgradeImage(ctx), isCode("RUNTIME_DIGEST_MISMATCH"));
  assert.deepEqual(await listFiles(join(dataDir, "signatures")), []);
  assert.equal(await podman.exists(`${sr.reg.host}/${REPO}:latest`), false);
  // the lock was released
  const lock = await StoreLock.acquire(dataDir);
  await lock.release();
});

Deno.test("upgradeImage() stops before downloading when the disk is too full (DISK_FULL)", async () => {
  await using w = await signedV1();
  const { sr, dataDir, podman } = w;
  using ctx = await sr.context(`${sr.reg.host}/${REPO}:latest`, dataDir, {
    runtime: () => Promise.resolve(podman),
  });
  await assert.rejects(
    upgradeImage(ctx, { diskSpace: { available: () => Promise.resolve(1024) } }),
    isCode("DISK_FULL"),
  );
  assert.deepEqual(await listFiles(join(dataDir, "cache", "blobs", "sha256")), []);
  assert.deepEqual(await listFiles(join(dataDir, "signatures")), []);
  assert.deepEqual(await podman.list(), []);
});

Deno.test("upgradeImage() is LOCK_HELD while another process holds the data directory", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("upgrade-lib");
  const dataDir = join(data.path, "state");
  using ctx = await sr.context(`${sr.reg.host}/${REPO}:latest`, dataDir);
  const lock = await StoreLock.acquire(dataDir);
  try {
    await assert.rejects(upgradeImage(ctx), isCode("LOCK_HELD"));
  } finally {
    await lock.release();
  }
});

Deno.test("upgradeImage() reports download and load progress and the installed digests", async () => {
  await using w = await signedV1();
  const { sr, dataDir, v1, podman } = w;
  using ctx = await sr.context(`${sr.reg.host}/${REPO}:latest`, dataDir, {
    runtime: () => Promise.resolve(podman),
  });
  // a staging layout left by a killed run is removed
  await Deno.mkdir(join(dataDir, "dz-staging-ffffffffffffffff", "blobs"), { recursive: true });
  const lines: string[] = [];
  const result = await upgradeImage(ctx, {
    progress: createProgress({ mode: "ndjson", write: (t) => void lines.push(t) }),
  });
  assert.equal(result.status, "upgraded");
  assert.equal(result.digest, v1.digest);
  assert.equal(result.platformDigest, v1.digest);
  const events: ProgressEvent[] = lines.map((l) => JSON.parse(l));
  for (const phase of ["download", "load"]) {
    const last = events.filter((e) => e.phase === phase).at(-1);
    assert.ok(last !== undefined && last.final && last.done === last.total && last.total > 0, phase);
  }
  assert.ok((await podman.digestsOf(`${sr.reg.host}/${REPO}:latest`))?.includes(v1.digest));
  // A local podman read the verified cache in place through a staging layout; nothing staged is left.
  const left = (await Array.fromAsync(Deno.readDir(dataDir))).map((e) => e.name);
  assert.deepEqual(left.filter((n) => n.startsWith("dz-staging") || n === "cache"), []);
  const names = (await podman.list()).flatMap((i) => i.names);
  assert.deepEqual(names, [`${sr.reg.host}/${REPO}:latest`]);
});

Deno.test("createProgress() draws a bar with bytes, rate and ETA on a terminal", () => {
  let t = 0;
  const out: string[] = [];
  const p = createProgress({ mode: "tty", write: (s) => void out.push(s), now: () => t, intervalMs: 0 });
  p.start("download", 4 * 1024 * 1024);
  t = 1000;
  p.update(1024 * 1024);
  p.end();
  assert.match(out[1] ?? "", /download \[######\.+\]\s+25%\s+1\.0 MiB \/ 4\.0 MiB\s+1\.0 MiB\/s\s+ETA 0:03/);
  const last = out.at(-1) ?? "";
  assert.match(last, /100%.*done/);
  assert.ok(last.endsWith("\x1b[K\n"), "the last draw clears the line and ends it");
});

Deno.test("checkDiskSpace() is DISK_FULL below need plus margin, unknown when it cannot measure", async () => {
  const ok = await checkDiskSpace("/x", 100, { margin: 0, available: () => Promise.resolve(100) });
  assert.equal(ok.kind, "ok");
  await assert.rejects(
    checkDiskSpace("/x", 100, { margin: 1, available: () => Promise.resolve(100) }),
    isCode("DISK_FULL"),
  );
  const unknown = await checkDiskSpace("/x", 1, {
    available: () => Promise.reject(new Deno.errors.NotCapable("no")),
  });
  assert.equal(unknown.kind, "unknown");
  const real = await checkDiskSpace(Deno.cwd(), 1, { margin: 0 });
  assert.equal(real.kind, "ok");
});
