/**
 * Anti-rollback over a data directory Dangerzone wrote (issue 14 item 3), against the real registry and
 * real podman. Dangerzone's Python updater (freedomofpress/dangerzone `dangerzone/updater/signatures.py`,
 * read at commit 08ebaae24ac7cb8f9a8f39d816cb486e549f4224) records only `signatures/last_log_index`
 * (`open(path, "w").write(str(log_index))`: decimal text, no newline, mode 0644 under umask 022) and
 * `signatures/<sha256 of the pubkey file>/<digest hex>.json` (`json.dump(signatures, f)`: Python's
 * `", "`/`": "` separators, ASCII escapes, no newline). With that state, an image whose only signature is
 * in another log (a Rekor v2 shard, indexes from 0) must be judged by its signed time against the
 * installed image's, which comes from the runtime's digest and the stored signatures, verified again.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { field, oneLine, pathExists, runCli } from "../_helpers/cli.ts";
import type { BuiltImage } from "../_helpers/images.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import {
  pushBundleReferrers,
  signImageBundle,
  testShardLog,
  testTrustedRoot,
} from "../_helpers/sigstore_signer.ts";
import { startSignedRegistry } from "./_fixture.ts";

const REPO = "dangerzone/v1";

/** Python's `json.dumps(value)` with its defaults (separators `", "` and `": "`, ensure_ascii). */
function pythonJsonDumps(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(", ")}]`;
  if (typeof value === "object") {
    return `{${
      Object.entries(value).map(([k, v]) => `${pythonJsonDumps(k)}: ${pythonJsonDumps(v)}`).join(", ")
    }}`;
  }
  throw new Error(`cannot dump ${typeof value}`);
}

/** Writes the data dir exactly as Dangerzone's `store_signatures()` and `write_log_index()` do. */
async function writeDangerzoneState(
  dataDir: string,
  keyFileSha256: string,
  stored: { digest: string; signatures: unknown[] } | null,
  lastLogIndexText: string,
): Promise<void> {
  const sigDir = join(dataDir, "signatures");
  await Deno.mkdir(sigDir, { recursive: true, mode: 0o755 });
  if (stored !== null) {
    await Deno.mkdir(join(sigDir, keyFileSha256), { mode: 0o755 });
    await Deno.writeTextFile(
      join(sigDir, keyFileSha256, `${stored.digest.slice(7)}.json`),
      pythonJsonDumps(stored.signatures),
      { mode: 0o644 },
    );
  }
  await Deno.writeTextFile(join(sigDir, "last_log_index"), lastLogIndexText, { mode: 0o644 });
}

Deno.test("rollback over Dangerzone's state: another log's entry is judged by the installed image's signed time", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using data = makeTempDir("dz-state");
  const shard = testShardLog(); // a Rekor v2-style shard: its own log ID, indexes from 0
  const rootFile = join(sr.dir, "trusted_root.json");
  await Deno.writeTextFile(rootFile, testTrustedRoot([shard]));
  const image = `${sr.reg.host}/${REPO}:latest`;
  const env = { ...pm.env, ...sr.env };
  const args = (dataDir: string) => [
    ...sr.cliArgs(image, dataDir),
    "--trusted-root",
    rootFile,
    "--runtime",
    "podman",
  ];
  const keyFileSha256 = createHash("sha256").update(await Deno.readFile(sr.pubkeyFile)).digest("hex");
  const publishInShard = async (img: BuiltImage, integratedTime: number) => {
    const b = signImageBundle({ publisher: sr.publisher, digest: img.digest, log: shard, integratedTime });
    await pushBundleReferrers(
      sr.clientOptions,
      `${sr.reg.host}/${REPO}`,
      { mediaType: img.mediaType, digest: img.digest, size: img.size },
      [b.json],
    );
    return b;
  };

  // Dangerzone installed img1 (legacy cosign signature, signed at t=1.8e9) and wrote its state.
  const installedTime = 1_800_000_000;
  const img1 = await sr.pushBusybox(REPO, "latest", "installed by dangerzone");
  const [sig1] = await sr.sign(img1.digest, {
    repository: REPO,
    logIndex: 5000,
    integratedTime: installedTime,
  });
  assert.ok(sig1 !== undefined);
  await pm.podman(["pull", "-q", "--tls-verify=false", image]);
  const dzDir = join(data.path, "dangerzone");
  await writeDangerzoneState(dzDir, keyFileSha256, { digest: img1.digest, signatures: [sig1.entry] }, "5000");
  const stateBefore = await Deno.readTextFile(join(dzDir, "signatures", "last_log_index"));

  await t.step(
    "the registry offers an OLDER image signed into a shard: check, store-signatures, upgrade refuse (11)",
    async () => {
      const old = await sr.pushBusybox(REPO, "latest", "old image in a shard");
      await publishInShard(old, installedTime - 100_000_000);
      for (const command of ["check", "store-signatures", "upgrade"]) {
        const r = await runCli([command, ...args(dzDir)], { env });
        assert.equal(r.code, 11, `${command}: ${r.stderr}`);
        assert.match(
          oneLine(r.stderr),
          /rollback refused: log [0-9a-f]{12}… is new but its entry \(time 1700000000\)/,
        );
      }
      assert.equal(
        await pathExists(join(dzDir, "signatures", keyFileSha256, `${old.digest.slice(7)}.json`)),
        false,
      );
      assert.equal(await pathExists(join(dzDir, "signatures", "log_state.json")), false);
      assert.equal(await Deno.readTextFile(join(dzDir, "signatures", "last_log_index")), stateBefore);
      assert.deepEqual(
        await pm.podman(["image", "inspect", "--format", "{{.Digest}}", image]).then((s) => s.stdout.trim()),
        img1.digest,
      );
    },
  );

  await t.step(
    "a NEWER image signed into a shard is still accepted: check 3, upgrade installs it",
    async () => {
      const next = await sr.pushBusybox(REPO, "latest", "newer image in a shard");
      await publishInShard(next, installedTime + 100_000_000);
      const c = await runCli(["check", ...args(dzDir), "--json"], { env });
      assert.equal(c.code, 3, c.stderr);
      assert.equal(field(JSON.parse(c.stdout), "remote", "digest"), next.digest);
      const u = await runCli(["upgrade", ...args(dzDir), "--json"], { env });
      assert.equal(u.code, 0, u.stderr);
      assert.equal(field(JSON.parse(u.stdout), "digest"), next.digest);
      assert.equal(
        await pathExists(join(dzDir, "signatures", keyFileSha256, `${next.digest.slice(7)}.bundles.json`)),
        true,
      );
    },
  );

  await t.step(
    "the installed image's time cannot be established (no stored list, last_log_index with newline): refused",
    async () => {
      const bare = join(data.path, "bare");
      await writeDangerzoneState(bare, keyFileSha256, null, "5000\n");
      const later = await sr.pushBusybox(REPO, "latest", "later image in a shard");
      await publishInShard(later, installedTime + 200_000_000);
      const r = await runCli(["check", ...args(bare)], { env });
      assert.equal(r.code, 11, r.stderr);
      assert.match(
        oneLine(r.stderr),
        /when the installed image was signed is unknown \(the installed image's stored signatures do not verify: no stored signatures/,
      );
    },
  );
});
