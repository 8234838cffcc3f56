/**
 * Picks the container runtime: the one asked for, else podman, then docker; each must answer `version`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
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
    ? [basename(options.path).includes("docker") ? "docker" : "podman"]
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

function basename(path: string): string {
  return path.split("/").pop() ?? path;
}
