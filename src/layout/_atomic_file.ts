/**
 * Private: file primitives for layouts. Temp file, write, fsync, rename, fsync the directory;
 * file-system errors become `IO` or `DISK_FULL` with the path in the message.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { dirname } from "../fs_path.ts";

/** A random suffix for temp files: 16 hex characters. */
export function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes all of `bytes` to `file`. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** Flushes a directory entry (after a rename) to disk; best effort where unsupported. */
export async function syncDir(path: string): Promise<void> {
  let dir: Deno.FsFile | undefined;
  try {
    dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch (err) {
    // Some platforms (Windows) cannot open or fsync a directory; the rename itself is atomic.
    if (!(err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotSupported)) {
      throw ioError(err, `syncing directory ${path}`);
    }
  } finally {
    dir?.close();
  }
}

/** Turns a file-system error into `DISK_FULL` or `IO`; a `DangerzoneError` passes through. */
export function ioError(err: unknown, what: string): DangerzoneError {
  if (err instanceof DangerzoneError) return err;
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  const message = err instanceof Error ? err.message : String(err);
  if (code === "ENOSPC" || /os error 28\b/.test(message)) {
    return new DangerzoneError("DISK_FULL", `no space left on the device while ${what}`, {
      cause: err,
      hint: "free some disk space and try again",
    });
  }
  return new DangerzoneError("IO", `${what} failed: ${message}`, { cause: err });
}

/** Writes `bytes` to `path` atomically: `<path>.<random>.tmp`, fsync, rename, fsync the directory. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${randomSuffix()}.tmp`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    await writeAll(file, bytes);
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (err) {
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    throw ioError(err, `writing ${path}`);
  }
  await syncDir(dirname(path));
}
