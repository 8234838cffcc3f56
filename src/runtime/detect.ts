/**
 * Picks the container runtime: the one asked for, else podman, then docker; each must answer `version`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { basename, posix, win32 } from "../fs_path.ts";
import { DockerRuntime } from "./docker.ts";
import { PodmanRuntime } from "./podman.ts";
import type { ContainerRuntime, RuntimeName, RuntimeOptions } from "./runtime.ts";

/** Options of {@linkcode detectRuntime}. */
export interface DetectOptions extends RuntimeOptions {
  /** Use only this runtime (`--runtime`). */
  preferred?: RuntimeName;
}

/**
 * Returns a working runtime. With `preferred`, only that one is tried; with only `path`, the runtime is the
 * one the binary's name says (`docker` when it contains "docker", else podman); otherwise podman, then
 * docker. `RUNTIME_NOT_FOUND` when none answers `version`.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./detect.ts";
 * async function runtimeVersion(): Promise<string> {
 *   const runtime = await detectRuntime({ preferred: "podman" });
 *   return `${runtime.name} ${await runtime.version()}`;
 * }
 * ```
 */
export async function detectRuntime(options: DetectOptions = {}): Promise<ContainerRuntime> {
  const { preferred, ...runtimeOptions } = options;
  const names: RuntimeName[] = preferred !== undefined
    ? [preferred]
    : options.path !== undefined
    ? [runtimeNamedBy(options.path)]
    : ["podman", "docker"];
  const failures: DangerzoneError[] = [];
  for (const name of names) {
    const runtime = name === "podman" ? new PodmanRuntime(runtimeOptions) : new DockerRuntime(runtimeOptions);
    try {
      await runtime.version();
      return runtime;
    } catch (err) {
      if (!(err instanceof DangerzoneError) || err.code !== "RUNTIME_NOT_FOUND") throw err;
      failures.push(err);
    }
  }
  const [only] = failures;
  if (failures.length === 1 && only !== undefined) throw only;
  throw new DangerzoneError(
    "RUNTIME_NOT_FOUND",
    "no working container runtime: neither podman nor docker answered",
    {
      cause: new AggregateError(failures, failures.map((f) => f.message).join("; ")),
      hint: "install podman (e.g. apt install podman) or start docker; or pass --runtime and --runtime-path",
    },
  );
}

/**
 * Like {@linkcode detectRuntime}, but without a `version` call where the choice is already known, for
 * commands that run often and need one runtime call (`verify-local` runs before every conversion):
 * `preferred` or `path` name the runtime; otherwise podman when a `podman` executable is on `PATH`.
 * Only when none of these decides (no podman on `PATH`, or `PATH` cannot be read under narrow
 * permissions) does it fall back to {@linkcode detectRuntime}'s probes. A runtime chosen without a probe
 * reports a missing or broken binary on its first call (`RUNTIME_NOT_FOUND`, `RUNTIME_FAILED`).
 *
 * @example
 * ```ts
 * import { selectRuntime } from "./detect.ts";
 * async function heldDigests(image: string) {
 *   const runtime = await selectRuntime();
 *   return await runtime.digestsOf(image);
 * }
 * ```
 */
export async function selectRuntime(options: DetectOptions = {}): Promise<ContainerRuntime> {
  const { preferred, ...runtimeOptions } = options;
  const name: RuntimeName | undefined = preferred ??
    (options.path !== undefined
      ? runtimeNamedBy(options.path)
      : onPath("podman", options.env?.["PATH"])
      ? "podman"
      : undefined);
  if (name === undefined) return await detectRuntime(options);
  return name === "podman" ? new PodmanRuntime(runtimeOptions) : new DockerRuntime(runtimeOptions);
}

/** The runtime a binary's name says: docker when its file name contains "docker", else podman. */
function runtimeNamedBy(path: string): RuntimeName {
  return basename(path).includes("docker") ? "docker" : "podman";
}

/**
 * True when an executable file `name` is in a directory of `path` (default: this process's `PATH`, the
 * one the runtime inherits). False when it is not, or when `PATH` or the directories cannot be read (no
 * prompt: permissions are queried first, so the caller probes instead).
 */
function onPath(name: string, path: string | undefined): boolean {
  if (path === undefined) {
    if (Deno.permissions.querySync({ name: "env", variable: "PATH" }).state !== "granted") return false;
    path = Deno.env.get("PATH") ?? "";
  }
  const windows = Deno.build.os === "windows";
  for (const file of pathCandidates(name, path, windows)) {
    if (Deno.permissions.querySync({ name: "read", path: file }).state !== "granted") return false;
    try {
      const info = Deno.statSync(file);
      // Windows has no execute bits: a file named NAME.exe is a program
      if (info.isFile && (windows || ((info.mode ?? 0) & 0o111) !== 0)) return true;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) return false;
    }
  }
  return false;
}

/**
 * The files a shell would run for `name` by `path`, in order: each absolute directory of `path`
 * (`:`-separated; on Windows `;`-separated, with drive or UNC roots, and `NAME.exe`). Relative
 * entries are skipped: they depend on the directory the runtime is started from.
 *
 * @example
 * ```ts
 * import { pathCandidates } from "./detect.ts";
 * pathCandidates("podman", "/usr/local/bin:bin:/usr/bin", false); // ["/usr/local/bin/podman", "/usr/bin/podman"]
 * ```
 */
export function pathCandidates(name: string, path: string, windows: boolean): string[] {
  const flavour = windows ? win32 : posix;
  const absolute = windows ? /^(?:[A-Za-z]:[\\/]|[\\/]{2}[^\\/])/ : /^\//;
  return path.split(windows ? ";" : ":")
    .filter((dir) => absolute.test(dir))
    .map((dir) => flavour.join(dir, windows ? `${name}.exe` : name));
}
