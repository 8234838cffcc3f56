/** `updateTrustRoot()` as a library: timeouts, the staging area, the data-dir layout. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import { storedTrustedRoot, tufCacheDir } from "../../src/tuf/stored_trusted_root.ts";
import { parseTufUrl, updateTrustRoot } from "../../src/tuf/update.ts";
import { TestTufRepo } from "./_tuf_repo.ts";

const ROOT_A = await Deno.readFile(
  new URL("../testdata/vectors/sigstore-root-signing/targets/trusted_root.json", import.meta.url),
);

async function withRepo(
  fn: (repo: TestTufRepo, url: string, dataDir: string, rootFile: string) => Promise<void>,
) {
  const repo = new TestTufRepo();
  repo.publish(ROOT_A);
  await using server = repo.serve();
  const dataDir = await Deno.makeTempDir();
  try {
    const rootFile = join(dataDir, "initial.root.json");
    await Deno.writeFile(rootFile, repo.rootBytes);
    await fn(repo, server.url, dataDir, rootFile);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("updateTrustRoot() keeps the TUF cache per repository in the data dir and stores a validated root", async () => {
  await withRepo(async (_repo, url, dataDir, rootFile) => {
    const result = await updateTrustRoot(dataDir, {
      tufUrl: url,
      tufRootFile: rootFile,
      network: { env: {} },
    });
    assert.equal(result.startedFrom, "file");
    assert.equal(result.tufRoot.version, 1);
    assert.equal(result.changed, true);
    const cache = tufCacheDir(dataDir, new URL(url));
    assert.match(cache, /tuf\/127\.0\.0\.1_\d+$/);
    for (const name of ["root.json", "timestamp.json", "snapshot.json", "targets.json"]) {
      assert.ok((await Deno.stat(join(cache, name))).isFile, name);
    }
    assert.equal((await storedTrustedRoot(dataDir))?.rekorLogs.length, 2);
    // no staging directory or temp file is left behind
    const left = (await Array.fromAsync(Deno.readDir(join(dataDir, "tuf")))).map((e) => e.name).sort();
    assert.deepEqual(left, [cache.split("/").pop(), "trusted_root.json", "trusted_root.origin.json"].sort());
  });
});

Deno.test("updateTrustRoot() gives up on a repository that stalls mid-body (TUF_UNREACHABLE, exit 12)", async () => {
  await withRepo(async (repo, url, dataDir, rootFile) => {
    repo.stalled.add("/timestamp.json");
    const started = Date.now();
    await assert.rejects(
      updateTrustRoot(dataDir, { tufUrl: url, tufRootFile: rootFile, network: { env: {} }, timeoutMs: 300 }),
      (err) =>
        isDangerzoneError(err, "TUF_UNREACHABLE") &&
        /stalled for 0.3 s while sending timestamp.json/.test(err.message),
    );
    assert.ok(Date.now() - started < 5_000);
    assert.equal(await storedTrustedRoot(dataDir), undefined);
  });
});

Deno.test("updateTrustRoot() gives up on a repository that sends no response headers in time", async () => {
  await withRepo(async (repo, url, dataDir, rootFile) => {
    repo.slowHeaders.add("/2.root.json");
    await assert.rejects(
      updateTrustRoot(dataDir, { tufUrl: url, tufRootFile: rootFile, network: { env: {} }, timeoutMs: 300 }),
      (err) =>
        isDangerzoneError(err, "TUF_UNREACHABLE") &&
        /did not answer for 2.root.json within 0.3 s/.test(err.message),
    );
  });
});

Deno.test("updateTrustRoot() refuses a target that is not a valid trusted root, after TUF verified it", async () => {
  await withRepo(async (repo, url, dataDir, rootFile) => {
    repo.publish(
      new TextEncoder().encode('{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'),
    );
    await assert.rejects(
      updateTrustRoot(dataDir, { tufUrl: url, tufRootFile: rootFile, network: { env: {} } }),
      (err) => isDangerzoneError(err, "TRUST_ROOT_INVALID"),
    );
    assert.equal(await storedTrustedRoot(dataDir), undefined);
    assert.deepEqual(
      await Array.fromAsync(Deno.readDir(tufCacheDir(dataDir, new URL(url)))).catch(() => []),
      [],
    );
  });
});

Deno.test("parseTufUrl() accepts https and loopback http only, and adds the trailing slash", () => {
  assert.equal(parseTufUrl("https://tuf-repo-cdn.sigstore.dev").href, "https://tuf-repo-cdn.sigstore.dev/");
  assert.equal(parseTufUrl("http://127.0.0.1:8080/repo").href, "http://127.0.0.1:8080/repo/");
  for (
    const bad of [
      "http://tuf.example/",
      "ftp://127.0.0.1/",
      "https://u:p@tuf.example/",
      "https://x/?a=1",
      "::",
    ]
  ) {
    assert.throws(() => parseTufUrl(bad), (err) => isDangerzoneError(err, "USAGE"), bad);
  }
});
