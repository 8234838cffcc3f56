/**
 * An exclusive lock on the data directory so two processes never interleave store updates
 * (STYLE 16). The lock is a file created with O_EXCL holding the owner's pid, host and a random
 * token. A lock whose owner is a dead process on this host (checked through `/proc`) is stale and is
 * taken over atomically; any other held lock is reported as `LOCK_HELD`, never waited on silently.
 * The lock file is only ever read as a regular file of bounded size: a FIFO, symlink or device put in
 * its place is `DATA_DIR_INVALID`, never opened (a FIFO would block the open forever).
 *
 * @module
 */
import { hostname } from "node:os";
import { join } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import { readOwnFileBounded } from "../read_bounded.ts";
import { ensureOwnDirectory, unwritable } from "./data_dir.ts";

/** The lock file's name inside the data directory. */
export const LOCK_FILE_NAME = "dangerzone-image.lock";

interface LockOwner {
  pid: number;
  host: string;
  token: string;
  since: string;
}

/** An acquired lock; call {@linkcode StoreLock.release} in a `finally` block. */
export class StoreLock {
  readonly #path: string;
  readonly #token: string;
  #released = false;

  private constructor(path: string, token: string) {
    this.#path = path;
    this.#token = token;
  }

  /** The lock file's path. */
  get path(): string {
    return this.#path;
  }

  /**
   * Acquires the lock of `dataDir` (created if missing) or throws `LOCK_HELD`.
   *
   * @example
   * ```ts ignore
   * const lock = await StoreLock.acquire(dataDir);
   * try { await store.write(verified); } finally { await lock.release(); }
   * ```
   */
  static async acquire(dataDir: string): Promise<StoreLock> {
    await ensureOwnDirectory(dataDir, []);
    const path = join(dataDir, LOCK_FILE_NAME);
    const owner: LockOwner = {
      pid: Deno.pid,
      host: hostname(),
      token: crypto.randomUUID(),
      since: new Date().toISOString(),
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await tryCreate(path, owner)) return new StoreLock(path, owner.token);
      const current = await readOwnerText(path);
      if (current === null) continue; // released meanwhile
      if (!isStale(current)) break;
      await takeOverStale(path, current);
    }
    const holder = await readOwnerText(path);
    const who = holder === null ? "another process" : describe(holder);
    throw new DangerzoneError("LOCK_HELD", `the data directory ${dataDir} is locked by ${who}`, {
      hint: `wait for it to finish; if no dangerzone-image runs, remove ${path}`,
    });
  }

  /** Releases the lock (idempotent). Removes the file only if it is still ours. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    // A lock file that is no longer a small regular file is not ours to remove (and must not mask the
    // error of the work done under the lock).
    const text = await readOwnerText(this.#path).catch((err) => {
      if (err instanceof DangerzoneError) return null;
      throw err;
    });
    if (text !== null && parseOwner(text)?.token === this.#token) {
      await Deno.remove(this.#path).catch(() => {});
    }
  }
}

/** Runs `fn` while holding the lock of `dataDir`. */
export async function withStoreLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = await StoreLock.acquire(dataDir);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    const denied = unwritable(path, err);
    if (denied !== null) throw denied;
    throw new DangerzoneError("IO", `cannot create the lock file ${path}: ${String(err)}`, { cause: err });
  }
  try {
    await file.write(new TextEncoder().encode(JSON.stringify(owner)));
    await file.sync();
  } finally {
    file.close();
  }
  return true;
}

/** The lock file's text (a regular file of at most 4 KiB, never followed), or null when absent. */
async function readOwnerText(path: string): Promise<string | null> {
  const bytes = await readOwnFileBounded(path, {
    limit: 4096,
    tooLargeCode: "DATA_DIR_INVALID",
    what: "lock file",
  });
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

function parseOwner(text: string): LockOwner | null {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== "object" || v === null) return null;
    const pid = Reflect.get(v, "pid");
    const host = Reflect.get(v, "host");
    const token = Reflect.get(v, "token");
    const since = Reflect.get(v, "since");
    if (
      typeof pid !== "number" || typeof host !== "string" || typeof token !== "string" ||
      typeof since !== "string"
    ) {
      return null;
    }
    return { pid, host, token, since };
  } catch {
    return null; // an unreadable lock is held (not stale) unless its owner is provably gone
  }
}

/** Stale = owned by a process of this host that no longer exists (Linux `/proc`). */
function isStale(text: string): boolean {
  const owner = parseOwner(text);
  if (owner === null || owner.host !== hostname() || owner.pid === Deno.pid) return false;
  if (Deno.build.os !== "linux") return false;
  try {
    Deno.statSync(`/proc/${owner.pid}`);
    return false;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

/** Moves the stale lock aside atomically; restores it if someone else replaced it meanwhile. */
async function takeOverStale(path: string, staleText: string): Promise<void> {
  const aside = `${path}.stale.${crypto.randomUUID()}`;
  try {
    await Deno.rename(path, aside);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const moved = await readOwnerText(aside);
  if (moved !== staleText) {
    // We moved a fresh lock of another process: put it back if the slot is still free.
    await Deno.link(aside, path).catch(() => {});
  }
  await Deno.remove(aside).catch(() => {});
}

function describe(text: string): string {
  const owner = parseOwner(text);
  return owner === null ? "another process" : `process ${owner.pid} on ${owner.host} since ${owner.since}`;
}
