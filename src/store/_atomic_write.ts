/**
 * Atomic file replacement: write a temp file in the same directory, fsync it, rename it over the
 * target, fsync the directory. A reader sees the old file or the new one, never a torn one. The
 * directory must already exist and have been checked (`ensureOwnDirectory()`): nothing is created or
 * followed here, and the temp file is created exclusively (O_EXCL). Private to `src/store/`.
 *
 * @module
 */
import { basename, dirname, join } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import { unwritable } from "./data_dir.ts";

/** Writes `bytes` to `path` atomically (its directory must exist). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${crypto.randomUUID()}.tmp`);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (cause) {
    await Deno.remove(tmp).catch(() => {});
    const denied = unwritable(dir, cause);
    if (denied !== null) throw denied;
    const full = cause instanceof Error && /no space left|ENOSPC|quota/i.test(cause.message);
    throw new DangerzoneError(
      full ? "DISK_FULL" : "IO",
      `cannot write ${path}: ${String(cause).slice(0, 200)}`,
      {
        cause,
        hint: full ? "free some disk space and retry" : "check the data directory's permissions",
      },
    );
  }
  await syncDirectory(dir);
}

/** fsyncs a directory so a rename in it is durable (not possible on every platform: best effort there). */
async function syncDirectory(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  const handle = await Deno.open(dir, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
