import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { LOCK_FILE_NAME, StoreLock, withStoreLock } from "../../src/store/lock.ts";
import { hostname } from "node:os";

const isHeld = (e: unknown) => e instanceof DangerzoneError && e.code === "LOCK_HELD";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("StoreLock.acquire() is exclusive: a second acquire is LOCK_HELD until release()", async () => {
  await withTempDir(async (dir) => {
    const lock = await StoreLock.acquire(dir);
    await assert.rejects(StoreLock.acquire(dir), isHeld);
    await lock.release();
    await lock.release(); // idempotent
    const again = await StoreLock.acquire(dir);
    await again.release();
    await assert.rejects(Deno.stat(`${dir}/${LOCK_FILE_NAME}`), Deno.errors.NotFound);
  });
});

Deno.test("StoreLock.acquire() takes over a lock left by a dead process", async () => {
  await withTempDir(async (dir) => {
    const child = new Deno.Command("true").spawn();
    const { pid } = child;
    await child.status; // now dead
    await Deno.writeTextFile(
      `${dir}/${LOCK_FILE_NAME}`,
      JSON.stringify({ pid, host: hostname(), token: "old", since: "2020-01-01T00:00:00Z" }),
    );
    const lock = await StoreLock.acquire(dir);
    await lock.release();
  });
});

Deno.test("StoreLock.acquire() does not take over a live process's lock or an unreadable one", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/${LOCK_FILE_NAME}`,
      JSON.stringify({ pid: 1, host: hostname(), token: "t", since: "x" }),
    );
    await assert.rejects(StoreLock.acquire(dir), isHeld);
    await Deno.writeTextFile(`${dir}/${LOCK_FILE_NAME}`, "garbage");
    await assert.rejects(StoreLock.acquire(dir), isHeld);
  });
});

Deno.test("withStoreLock() serialises two processes: a child sees LOCK_HELD while we hold it", async () => {
  await withTempDir(async (dir) => {
    const lockModule = new URL("../../src/store/lock.ts", import.meta.url).href;
    const script = `import { StoreLock } from "${lockModule}";
      try { const l = await StoreLock.acquire(${JSON.stringify(dir)}); await l.release(); Deno.exit(0); }
      catch (e) { Deno.exit(e.code === "LOCK_HELD" ? 3 : 1); }`;
    const run = async () =>
      (await new Deno.Command(Deno.execPath(), { args: ["eval", script], stdout: "null", stderr: "null" })
        .output()).code;
    const inside = await withStoreLock(dir, run);
    assert.equal(inside, 3);
    assert.equal(await run(), 0);
  });
});
