/**
 * The data directory as an attacker or an accident leaves it (issue 14 item 6): `--data-dir` naming a
 * file, a directory that cannot be written, a FIFO as the lock file or a state file, a state file that
 * is a symlink to `/dev/zero`, and `signatures/` a symlink to a directory outside. Each gives one clean
 * line with exit 2 (`DATA_DIR_INVALID`), quickly (a FIFO is never opened), and nothing is written outside
 * the data directory. Against the real registry, through the CLI.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { readOwnFileBounded } from "../../src/read_bounded.ts";
import { ensureOwnDirectory, ownDirectoryExists } from "../../src/store/data_dir.ts";
import { LOCK_FILE_NAME, StoreLock } from "../../src/store/lock.ts";
import { LogStateStore } from "../../src/store/log_state.ts";
import { type CliResult, oneLine, pathExists, runCli } from "../_helpers/cli.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startSignedRegistry } from "../update/_fixture.ts";

const REPO = "sandbox/datadir";
const isDataDirInvalid = (e: unknown) => e instanceof DangerzoneError && e.code === "DATA_DIR_INVALID";

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

async function listAll(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("CLI: a hostile or broken data directory is one line, exit 2, no hang, no write outside", async (t) => {
  await using sr = await startSignedRegistry("plain");
  await using tmp = makeTempDir("hostile-data");
  const img = await sr.pushBusybox(REPO, "latest", "data dir");
  await sr.sign(img.digest, { repository: REPO, logIndex: 7 });
  const image = `${sr.reg.host}/${REPO}:latest`;
  const run = (command: string, dataDir: string) =>
    runCli([command, ...sr.cliArgs(image, dataDir)], { env: sr.env, timeoutMs: 30_000 });
  const expectDataDirError = (r: CliResult, pattern: RegExp) => {
    assert.equal(r.code, 2, r.stderr);
    const line = oneLine(r.stderr);
    assert.match(line, pattern);
    assert.doesNotMatch(line, /internal error/);
  };

  await t.step("--data-dir naming a regular file", async () => {
    const file = join(tmp.path, "a-file");
    await Deno.writeTextFile(file, "not a directory");
    for (const command of ["store-signatures", "check"]) {
      expectDataDirError(
        await run(command, file),
        /data directory .*a-file is a regular file, not a directory/,
      );
    }
    assert.equal(await Deno.readTextFile(file), "not a directory");
  });

  await t.step("an unwritable data directory (root ignores mode bits: /sys refuses even root)", async () => {
    expectDataDirError(
      await run("store-signatures", "/sys/dangerzone-image-test"),
      /\/sys\/dangerzone-image-test/,
    );
  });

  await t.step("a FIFO as the lock file", async () => {
    const dataDir = join(tmp.path, "fifo-lock");
    await Deno.mkdir(dataDir);
    await mkfifo(join(dataDir, LOCK_FILE_NAME));
    expectDataDirError(await run("store-signatures", dataDir), /lock file .* is a FIFO, not a regular file/);
  });

  await t.step("a FIFO as a state file (last_log_index)", async () => {
    const dataDir = join(tmp.path, "fifo-state");
    await Deno.mkdir(join(dataDir, "signatures"), { recursive: true });
    await mkfifo(join(dataDir, "signatures", "last_log_index"));
    for (const command of ["check", "store-signatures"]) {
      expectDataDirError(await run(command, dataDir), /last_log_index is a FIFO, not a regular file/);
    }
  });

  await t.step("a state file that is a symlink to /dev/zero", async () => {
    const dataDir = join(tmp.path, "zero-state");
    await Deno.mkdir(join(dataDir, "signatures"), { recursive: true });
    await Deno.symlink("/dev/zero", join(dataDir, "signatures", "log_state.json"));
    expectDataDirError(await run("check", dataDir), /log_state\.json is a symbolic link, not a regular file/);
  });

  await t.step("signatures/ a symlink to a directory outside: refused, nothing written there", async () => {
    const dataDir = join(tmp.path, "linked");
    const outside = join(tmp.path, "outside");
    await Deno.mkdir(dataDir);
    await Deno.mkdir(outside);
    await Deno.symlink(outside, join(dataDir, "signatures"));
    for (const command of ["store-signatures", "check"]) {
      expectDataDirError(await run(command, dataDir), /signatures in the data directory is a symbolic link/);
    }
    assert.deepEqual(await listAll(outside), []);
  });
});

Deno.test("ensureOwnDirectory() creates real directories and refuses a symlink or file in the way", async () => {
  await using tmp = makeTempDir("own-dir");
  const dataDir = join(tmp.path, "data");
  assert.equal(await ownDirectoryExists(dataDir, ["signatures"]), false);
  assert.equal(await pathExists(dataDir), false, "the read-only check creates nothing");
  assert.equal(await ensureOwnDirectory(dataDir, ["signatures", "k"]), join(dataDir, "signatures", "k"));
  assert.equal(await ownDirectoryExists(dataDir, ["signatures", "k"]), true);
  await Deno.symlink(tmp.path, join(dataDir, "cache"));
  await assert.rejects(ensureOwnDirectory(dataDir, ["cache"]), isDataDirInvalid);
  await Deno.writeTextFile(join(dataDir, "signatures", "f"), "");
  await assert.rejects(ownDirectoryExists(dataDir, ["signatures", "f"]), isDataDirInvalid);
  // The data directory itself may be a link the user made.
  await Deno.symlink(dataDir, join(tmp.path, "via-link"));
  assert.equal(await ownDirectoryExists(join(tmp.path, "via-link"), ["signatures"]), true);
});

Deno.test("readOwnFileBounded() reads regular files only, bounded; StoreLock and LogStateStore use it", async () => {
  await using tmp = makeTempDir("own-file");
  const options = { limit: 8, tooLargeCode: "STORE_INVALID" as const, what: "test file" };
  assert.equal(await readOwnFileBounded(join(tmp.path, "missing"), options), null);
  await Deno.writeTextFile(join(tmp.path, "small"), "12345678");
  assert.equal(
    new TextDecoder().decode(await readOwnFileBounded(join(tmp.path, "small"), options) ?? undefined),
    "12345678",
  );
  await Deno.writeTextFile(join(tmp.path, "big"), "123456789");
  await assert.rejects(
    readOwnFileBounded(join(tmp.path, "big"), options),
    (e) => e instanceof DangerzoneError && e.code === "STORE_INVALID",
  );
  await Deno.symlink("/dev/zero", join(tmp.path, "zero"));
  await assert.rejects(readOwnFileBounded(join(tmp.path, "zero"), options), isDataDirInvalid);
  await mkfifo(join(tmp.path, "fifo"));
  await assert.rejects(readOwnFileBounded(join(tmp.path, "fifo"), options), isDataDirInvalid);
  // The state and lock readers go through it.
  const dataDir = join(tmp.path, "d");
  await Deno.mkdir(join(dataDir, "signatures"), { recursive: true });
  await Deno.writeTextFile(join(dataDir, "signatures", "last_log_index"), "9".repeat(2000));
  await assert.rejects(
    new LogStateStore(dataDir).read(),
    (e) => e instanceof DangerzoneError && e.code === "STORE_INVALID",
  );
  await mkfifo(join(dataDir, LOCK_FILE_NAME));
  await assert.rejects(StoreLock.acquire(dataDir), isDataDirInvalid);
});
