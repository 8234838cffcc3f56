/**
 * Free-space check before a download. Deno has no `statfs` of its own; `node:fs` `statfs` (Deno's
 * Node compatibility layer) calls statfs(2) directly and needs `--allow-sys=statfs` plus read access
 * to the directory, which is narrower than running `df` (`--allow-run=df`) and needs no parsing.
 *
 * Only the download cache's file system is checked: where the runtime keeps its images (podman's
 * graphroot, docker's data root) is the runtime's business, and a load that runs out of space there
 * fails cleanly as `RUNTIME_FAILED` with nothing recorded.
 *
 * @module
 */
import { statfs } from "node:fs/promises";
import { DangerzoneError } from "../errors.ts";

/** The result of {@linkcode checkDiskSpace}. */
export type DiskSpaceVerdict =
  | { kind: "ok"; available: number; needed: number }
  /** The free space could not be measured (no `--allow-sys=statfs`, an unusual file system). */
  | { kind: "unknown"; needed: number; reason: string };

/** Options of {@linkcode checkDiskSpace}. */
export interface DiskSpaceOptions {
  /** Extra bytes to keep free beyond `needed` (default 64 MiB). */
  margin?: number;
  /** Measures the bytes available to unprivileged users on `dir`'s file system (tests replace it). */
  available?: (dir: string) => Promise<number>;
}

const DEFAULT_MARGIN = 64 * 1024 * 1024;

/**
 * Checks that `dir`'s file system has `needed` bytes plus a margin available; throws `DISK_FULL`
 * when not. When free space cannot be measured, returns `unknown` (the caller warns): this is a
 * courtesy check, not a security one, and a download that runs out of space fails without
 * leaving anything behind that could be mistaken for a complete blob.
 *
 * @example
 * ```ts ignore
 * import { checkDiskSpace } from "./disk_space.ts";
 * const verdict = await checkDiskSpace("/var/tmp", 1 << 30);
 * ```
 */
export async function checkDiskSpace(
  dir: string,
  needed: number,
  options: DiskSpaceOptions = {},
): Promise<DiskSpaceVerdict> {
  const margin = options.margin ?? DEFAULT_MARGIN;
  let available: number;
  try {
    available = await (options.available ?? statfsAvailable)(dir);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotCapable
      ? "no permission to measure it (run with --allow-sys=statfs)"
      : err instanceof Error
      ? err.message.split("\n")[0] ?? "unknown error"
      : String(err);
    return { kind: "unknown", needed, reason };
  }
  if (available < needed + margin) {
    throw new DangerzoneError(
      "DISK_FULL",
      `not enough disk space in ${dir}: the download needs ${mib(needed + margin)} MiB, ` +
        `${mib(available)} MiB are available`,
      { hint: "free some space (or pass --data-dir on a larger disk) and run the upgrade again" },
    );
  }
  return { kind: "ok", available, needed };
}

async function statfsAvailable(dir: string): Promise<number> {
  const s = await statfs(dir, { bigint: false });
  return s.bavail * s.bsize;
}

function mib(n: number): string {
  return (n / (1024 * 1024)).toFixed(0);
}
