/**
 * Container runtimes: the {@linkcode ContainerRuntime} interface, the podman and docker adapters, and
 * {@linkcode detectRuntime}.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./mod.ts";
 * // after loading: does the runtime hold exactly the verified digest?
 * async function holds(verified: string): Promise<boolean> {
 *   const runtime = await detectRuntime({});
 *   const digests = await runtime.digestsOf("ghcr.io/freedomofpress/dangerzone/v1:latest");
 *   return digests !== null && digests.some((d) => d === verified);
 * }
 * ```
 *
 * @module
 */
export type {
  ContainerRuntime,
  ImageInfo,
  ImageSummary,
  LayoutLoadOptions,
  ListOptions,
  LoadResult,
  RemoveOptions,
  RuntimeName,
  RuntimeOptions,
} from "./runtime.ts";
export { PodmanRuntime } from "./podman.ts";
export { DockerRuntime } from "./docker.ts";
export { detectRuntime, selectRuntime } from "./detect.ts";
export type { DetectOptions } from "./detect.ts";
export { CliRuntime } from "./_cli_runtime.ts";
export type { CommandOutcome, CommandSpec } from "./_command.ts";
export type { Digest } from "../oci/digest.ts";
