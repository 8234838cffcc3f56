/**
 * Where dangerzone-image keeps its state: `--data-dir`, else `$DANGERZONE_DATA_DIR`, else
 * `$XDG_DATA_HOME/dangerzone`, else `~/.local/share/dangerzone` (Dangerzone's own location, so both
 * read the same signature store).
 *
 * @module
 */
import { join } from "node:path";
import { DangerzoneError } from "../errors.ts";

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
