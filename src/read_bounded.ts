/**
 * Reads a whole file, but never more than a limit: an oversized or endless file (a FIFO, `/dev/zero`)
 * fails after `limit + 1` bytes instead of exhausting memory.
 *
 * Two entry points: {@linkcode readFileBounded} for a file the user names (keys, trust roots, signature
 * lists, bundles; a symlink or a pipe such as `<(cat sigs.json)` is the user's choice and is followed),
 * and {@linkcode readOwnFileBounded} for the tool's own files in the data directory (state, lock,
 * stored signatures), which must be regular files: a symlink, FIFO, device or directory there is
 * refused before it is opened (no hang, nothing followed), and the opened file must be the one
 * checked (same device and inode), or it was swapped in between.
 *
 * @module
 */
import { DangerzoneError, type ErrorCode } from "./errors.ts";

/** Options of {@linkcode readFileBounded}. */
export interface ReadBoundedOptions {
  /** Largest accepted size in bytes. */
  limit: number;
  /** The code for a file over the limit. */
  tooLargeCode: ErrorCode;
  /** What the file is, for messages ("signature file"). */
  what: string;
}

/** Reads `path` completely if it holds at most `options.limit` bytes. */
export async function readFileBounded(path: string, options: ReadBoundedOptions): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    const notFound = cause instanceof Deno.errors.NotFound;
    throw new DangerzoneError(
      "IO",
      `cannot read the ${options.what} ${path}: ${notFound ? "no such file" : String(cause)}`,
      {
        cause,
        hint: "check the path and its permissions",
      },
    );
  }
  try {
    return await readAllBounded(file, path, options);
  } finally {
    file.close();
  }
}

/**
 * Reads one of the tool's own files (in the data directory) completely, or returns null when it does
 * not exist. Anything but a regular file (a symlink, FIFO, socket, device, directory) is
 * `DATA_DIR_INVALID`, checked with `lstat` before opening; a file over the limit is
 * `options.tooLargeCode`.
 *
 * @example
 * ```ts ignore
 * const bytes = await readOwnFileBounded(`${dataDir}/signatures/last_log_index`, {
 *   limit: 1024, tooLargeCode: "STORE_INVALID", what: "log index file",
 * });
 * ```
 */
export async function readOwnFileBounded(
  path: string,
  options: ReadBoundedOptions,
): Promise<Uint8Array | null> {
  let before: Deno.FileInfo;
  try {
    before = await Deno.lstat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return null;
    throw cannotRead(path, options, cause);
  }
  if (!before.isFile) throw notRegular(path, options.what, before);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return null;
    throw cannotRead(path, options, cause);
  }
  try {
    const opened = await file.stat();
    if (!opened.isFile || opened.dev !== before.dev || opened.ino !== before.ino) {
      throw new DangerzoneError(
        "DATA_DIR_INVALID",
        `the ${options.what} ${path} changed while it was opened`,
        {
          hint: "another program is replacing files in the data directory; stop it and retry",
        },
      );
    }
    return await readAllBounded(file, path, options);
  } finally {
    file.close();
  }
}

/** `DATA_DIR_INVALID` for a path that should be one of our regular files but is something else. */
export function notRegular(path: string, what: string, info: Deno.FileInfo): DangerzoneError {
  return new DangerzoneError(
    "DATA_DIR_INVALID",
    `the ${what} ${path} is ${describeFileType(info)}, not a regular file; refusing to use it`,
    { hint: "remove it (dangerzone-image only uses regular files and directories it created there)" },
  );
}

/** "a symbolic link", "a FIFO", ... for messages. */
export function describeFileType(info: Deno.FileInfo): string {
  if (info.isSymlink) return "a symbolic link";
  if (info.isDirectory) return "a directory";
  if (info.isFile) return "a regular file";
  if (info.isFifo === true) return "a FIFO";
  if (info.isSocket === true) return "a socket";
  if (info.isCharDevice === true || info.isBlockDevice === true) return "a device";
  return "a special file";
}

function cannotRead(path: string, options: ReadBoundedOptions, cause: unknown): DangerzoneError {
  if (cause instanceof Deno.errors.PermissionDenied) {
    return new DangerzoneError(
      "DATA_DIR_INVALID",
      `cannot read the ${options.what} ${path}: permission denied`,
      {
        cause,
        hint: "check the data directory's owner and permissions",
      },
    );
  }
  return new DangerzoneError("IO", `cannot read the ${options.what} ${path}: ${String(cause)}`, { cause });
}

async function readAllBounded(
  file: Deno.FsFile,
  path: string,
  options: ReadBoundedOptions,
): Promise<Uint8Array> {
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      total += n;
      if (total > options.limit) {
        throw new DangerzoneError(
          options.tooLargeCode,
          `the ${options.what} ${path} is larger than the ${options.limit}-byte limit (bounded input)`,
        );
      }
      chunks.push(buf.slice(0, n));
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  } catch (cause) {
    if (cause instanceof DangerzoneError) throw cause;
    throw new DangerzoneError("IO", `cannot read the ${options.what} ${path}: ${String(cause)}`, { cause });
  }
}
