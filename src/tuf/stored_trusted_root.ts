/**
 * Where `trust-root update` keeps its state in the data directory, and the stored trusted root that
 * verification uses in place of the embedded one:
 *
 * ```
 * <data-dir>/tuf/trusted_root.json           the verified trusted root in use
 * <data-dir>/tuf/trusted_root.origin.json    which TUF repository it came from, and when
 * <data-dir>/tuf/<repository name>/          the TUF metadata cache (root, timestamp, snapshot, targets)
 * ```
 *
 * @module
 */
import { join } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import { readOwnFileBounded } from "../read_bounded.ts";
import { ownDirectoryExists } from "../store/data_dir.ts";
import type { SigstoreTrustedRoot } from "../sigstore/crypto/trusted_root.ts";

/** Sigstore's public TUF repository, the default `--tuf-url`. */
export const DEFAULT_TUF_URL = "https://tuf-repo-cdn.sigstore.dev/";

/** The TUF metadata files kept in a repository's cache. */
export const TUF_METADATA_FILES = ["root.json", "timestamp.json", "snapshot.json", "targets.json"] as const;

/** Where the stored trusted root came from (`trusted_root.origin.json`). */
export interface TrustedRootOrigin {
  /** The TUF repository URL. */
  tufUrl: string;
  /** The version of the TUF root that verified it. */
  tufRootVersion: number;
  /** When it was stored (ISO 8601). */
  updatedAt: string;
}

/** `<data-dir>/tuf`. */
export function tufDir(dataDir: string): string {
  return join(dataDir, "tuf");
}

/** The stored, verified trusted_root.json. */
export function storedTrustedRootPath(dataDir: string): string {
  return join(tufDir(dataDir), "trusted_root.json");
}

/** The origin record written next to the stored trusted root. */
export function storedOriginPath(dataDir: string): string {
  return join(tufDir(dataDir), "trusted_root.origin.json");
}

/** The metadata cache directory of a TUF repository: its host and path as one safe file name. */
export function tufCacheDir(dataDir: string, tufUrl: URL): string {
  const name = `${tufUrl.host}${tufUrl.pathname}`.replace(/[^A-Za-z0-9.-]+/g, "_").replace(/^_+|_+$/g, "");
  return join(tufDir(dataDir), name === "" ? "_" : name);
}

/**
 * The path of the trusted root `trust-root update` stored, or `undefined` when none was stored
 * (then the embedded root stays in use, offline).
 *
 * @example
 * ```ts ignore
 * const file = await storedTrustedRootFile(dataDir);
 * ```
 */
export async function storedTrustedRootFile(dataDir: string): Promise<string | undefined> {
  // a data dir that is a file, or a `tuf/` that is a link or special file, is DATA_DIR_INVALID
  if (!await ownDirectoryExists(dataDir, ["tuf"])) return undefined;
  const path = storedTrustedRootPath(dataDir);
  try {
    await Deno.lstat(path);
    return path;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new DangerzoneError("IO", `cannot read ${path}: ${String(err)}`, { cause: err });
  }
}

/**
 * The stored trusted root, validated again (a file in the data directory is input too), or
 * `undefined` when `trust-root update` never stored one.
 *
 * @example
 * ```ts ignore
 * const root = (await storedTrustedRoot(dataDir)) ?? productionTrustedRoot();
 * ```
 */
export async function storedTrustedRoot(dataDir: string): Promise<SigstoreTrustedRoot | undefined> {
  const path = await storedTrustedRootFile(dataDir);
  if (path === undefined) return undefined;
  const { MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot } = await import("../sigstore/crypto/trusted_root.ts");
  const bytes = await readOwnFileBounded(path, {
    limit: MAX_TRUSTED_ROOT_BYTES,
    tooLargeCode: "TRUST_ROOT_INVALID",
    what: "stored trusted root",
  });
  return bytes === null ? undefined : parseTrustedRoot(bytes, { source: path });
}

/** The origin record of the stored trusted root, or `undefined` (none stored, or unreadable). */
export async function readTrustedRootOrigin(dataDir: string): Promise<TrustedRootOrigin | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(storedOriginPath(dataDir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new DangerzoneError("IO", `cannot read ${storedOriginPath(dataDir)}: ${String(err)}`, {
      cause: err,
    });
  }
  try {
    const x: unknown = JSON.parse(text);
    if (typeof x !== "object" || x === null) return undefined;
    const o = x as Record<string, unknown>;
    if (
      typeof o["tufUrl"] !== "string" || typeof o["tufRootVersion"] !== "number" ||
      typeof o["updatedAt"] !== "string"
    ) return undefined;
    return { tufUrl: o["tufUrl"], tufRootVersion: o["tufRootVersion"], updatedAt: o["updatedAt"] };
  } catch {
    return undefined; // display-only record: a damaged one is shown as unknown, never trusted for anything
  }
}
