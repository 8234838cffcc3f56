/**
 * Where dangerzone-image keeps its state: `--data-dir`, else `$DANGERZONE_DATA_DIR`, else
 * `$XDG_DATA_HOME/dangerzone`, else `~/.local/share/dangerzone` (Dangerzone's own location, so both
 * read the same signature store).
 *
 * @module
 */
import { join } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import { describeFileType } from "../read_bounded.ts";

/** Options of {@linkcode resolveDataDir}. */
export interface ResolveDataDirOptions {
  /** `--data-dir`, if given. */
  dataDir?: string | undefined;
  /** Environment lookup; default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/**
 * Resolves the data directory (not created here).
 *
 * @example
 * ```ts
 * import { resolveDataDir } from "./data_dir.ts";
 * const dir = resolveDataDir({ env: (n) => ({ HOME: "/home/u" } as Record<string, string>)[n] });
 * // "/home/u/.local/share/dangerzone"
 * ```
 */
export function resolveDataDir(options: ResolveDataDirOptions = {}): string {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const nonEmpty = (v: string | undefined): string | undefined => v === undefined || v === "" ? undefined : v;
  const explicit = nonEmpty(options.dataDir) ?? nonEmpty(env("DANGERZONE_DATA_DIR"));
  if (explicit !== undefined) return explicit;
  const xdg = nonEmpty(env("XDG_DATA_HOME"));
  if (xdg !== undefined) return join(xdg, "dangerzone");
  const home = nonEmpty(env("HOME")) ?? nonEmpty(env("USERPROFILE"));
  if (home === undefined) {
    throw new DangerzoneError("CONFIG_INVALID", "cannot find the data directory: HOME is not set", {
      hint: "pass --data-dir DIR or set DANGERZONE_DATA_DIR",
    });
  }
  return join(home, ".local", "share", "dangerzone");
}

/**
 * Makes sure `dataDir/...parts` is a directory the tool may write into, creating missing levels, and
 * returns its path. The data directory itself may be reached through a symlink the user made; every
 * level below it must be a real directory (checked with `lstat`, never followed), so a `signatures/`
 * symlinked elsewhere can never make the tool write outside the data directory. A file, symlink or
 * special file in the way, or a directory that cannot be written, is `DATA_DIR_INVALID`.
 *
 * @example
 * ```ts ignore
 * const keyDir = await ensureOwnDirectory(dataDir, ["signatures", keyFileSha256]);
 * ```
 */
export async function ensureOwnDirectory(dataDir: string, parts: readonly string[]): Promise<string> {
  const root = await rootDirectory(dataDir);
  if (root === "missing") {
    try {
      await Deno.mkdir(dataDir, { recursive: true });
    } catch (cause) {
      throw unusable(dataDir, cause);
    }
    await rootDirectory(dataDir);
  }
  let path = dataDir;
  for (const part of parts) {
    path = join(path, part);
    if (await ownLevel(path) === "missing") {
      try {
        await Deno.mkdir(path);
      } catch (cause) {
        if (!(cause instanceof Deno.errors.AlreadyExists)) throw unusable(path, cause);
      }
      await ownLevel(path); // what is there now must be a real directory too
    }
  }
  return path;
}

/**
 * True when `dataDir/...parts` exists as real directories (read-only: nothing is created); false when
 * a level is missing. A file, symlink or special file in the way is `DATA_DIR_INVALID`.
 */
export async function ownDirectoryExists(dataDir: string, parts: readonly string[]): Promise<boolean> {
  if (await rootDirectory(dataDir) === "missing") return false;
  let path = dataDir;
  for (const part of parts) {
    path = join(path, part);
    if (await ownLevel(path) === "missing") return false;
  }
  return true;
}

/** `DATA_DIR_INVALID` for a write that failed for lack of permission, else null. */
export function unwritable(path: string, cause: unknown): DangerzoneError | null {
  if (
    !(cause instanceof Deno.errors.PermissionDenied) && !(cause instanceof Deno.errors.NotCapable) &&
    !(cause instanceof Error && /read-only file system|EROFS|EPERM|EACCES/i.test(cause.message))
  ) {
    return null;
  }
  return new DangerzoneError(
    "DATA_DIR_INVALID",
    `cannot write in the data directory: ${path} is not writable`,
    {
      cause,
      hint: "fix its owner or permissions, or pass another --data-dir",
    },
  );
}

/** The data directory itself: followed (the user may link it elsewhere) but must be a directory. */
async function rootDirectory(dataDir: string): Promise<"ok" | "missing"> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dataDir);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return "missing";
    if (cause instanceof Deno.errors.NotADirectory) throw notADirectory(dataDir, "a file on its path");
    throw unusable(dataDir, cause);
  }
  if (!info.isDirectory) throw notADirectory(dataDir, describeFileType(info));
  return "ok";
}

/** One level below the data directory: never followed, must be a real directory. */
async function ownLevel(path: string): Promise<"ok" | "missing"> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return "missing";
    throw unusable(path, cause);
  }
  if (info.isSymlink || !info.isDirectory) {
    throw new DangerzoneError(
      "DATA_DIR_INVALID",
      `${path} in the data directory is ${
        describeFileType(info)
      }, not a directory; refusing to follow or use it`,
      { hint: "remove it (dangerzone-image only uses directories it created there)" },
    );
  }
  return "ok";
}

function notADirectory(dataDir: string, what: string): DangerzoneError {
  return new DangerzoneError(
    "DATA_DIR_INVALID",
    `the data directory ${dataDir} is ${what}, not a directory`,
    {
      hint: "pass --data-dir naming a directory (or a path that does not exist yet)",
    },
  );
}

function unusable(path: string, cause: unknown): DangerzoneError {
  return unwritable(path, cause) ??
    new DangerzoneError("DATA_DIR_INVALID", `cannot use ${path} in the data directory: ${String(cause)}`, {
      cause,
      hint: "check the data directory's path and permissions, or pass another --data-dir",
    });
}
