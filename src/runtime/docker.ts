/**
 * The docker adapter (the docker CLI against a docker daemon or podman's docker-compatible API socket).
 * `docker image inspect` has no `.Digest`: the manifest digests are those in `RepoDigests`, so an untagged
 * image has none; `docker images --format '{{json .}}'` prints one line per name (and per repo digest),
 * merged here by ID. A missing image is exit 1 with "No such image" on stderr.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { commandFailed, type CommandOutcome, type CommandSpec, runCommand, unusable } from "./_command.ts";
import { DEFAULT_LOAD_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, VERSION_RE } from "./_defaults.ts";
import { imageArg } from "./_image_arg.ts";
import {
  asArray,
  asObject,
  createdAt,
  imageId,
  optionalDigest,
  parseJson,
  stringField,
  stringListField,
  unexpected,
  uniqueDigests,
} from "./_json.ts";
import { parseLoadOutput } from "./_load_output.ts";
import type {
  ContainerRuntime,
  ImageInfo,
  ImageSummary,
  ListOptions,
  LoadResult,
  RemoveOptions,
  RuntimeOptions,
} from "./runtime.ts";

/** docker's (and podman's API's) "no such image" on stderr. */
const MISSING_RE = /no such image|image not known/i;

/**
 * The docker CLI over `Deno.Command`; set `DOCKER_HOST` in `options.env` to pick the daemon.
 *
 * @example
 * ```ts
 * import { DockerRuntime } from "./docker.ts";
 * const docker = new DockerRuntime({ env: { DOCKER_HOST: "unix:///run/podman/podman.sock" } });
 * async function installed(): Promise<string[] | null> {
 *   return await docker.digestsOf("ghcr.io/freedomofpress/dangerzone/v1:latest");
 * }
 * ```
 */
export class DockerRuntime implements ContainerRuntime {
  /** Always `docker`. */
  readonly name = "docker";
  /** The binary that is run. */
  readonly path: string;
  readonly #env: Record<string, string> | undefined;
  readonly #timeoutMs: number;
  readonly #loadTimeoutMs: number;

  /** An adapter for the docker CLI at `options.path` (default `docker` on `PATH`). */
  constructor(options: RuntimeOptions = {}) {
    this.path = options.path ?? "docker";
    this.#env = options.env;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#loadTimeoutMs = options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  }

  /** The daemon's version; `RUNTIME_NOT_FOUND` when the CLI is missing or the daemon does not answer. */
  async version(): Promise<string> {
    const spec = this.#spec(["version", "--format", "{{.Server.Version}}"]);
    let out: CommandOutcome;
    try {
      out = await runCommand(spec);
    } catch (err) {
      throw unusable("docker", this.path, err);
    }
    const version = out.stdout.trim();
    if (out.code !== 0) throw unusable("docker", this.path, commandFailed(spec, out));
    if (!VERSION_RE.test(version)) {
      throw unusable("docker", this.path, unexpected("docker version", "not a version"));
    }
    return version;
  }

  /** `docker load` with the archive streamed into stdin. */
  async load(archive: ReadableStream<Uint8Array>): Promise<LoadResult> {
    const spec = { ...this.#spec(["load", "--quiet"]), timeoutMs: this.#loadTimeoutMs, stdin: archive };
    const out = await runCommand(spec);
    if (out.code !== 0) {
      throw commandFailed(
        spec,
        out,
        "the archive is not an image docker can load; --debug shows docker's output",
      );
    }
    return parseLoadOutput(out.stdout, "docker load");
  }

  /** `docker tag SOURCE TARGET`. */
  async tag(source: string, target: string): Promise<void> {
    await this.#ok(["tag", "--", imageArg(source), imageArg(target)]);
  }

  /** `docker images --no-trunc --digests --format '{{json .}}' [REFERENCE]`, merged by image ID. */
  async list(options: ListOptions = {}): Promise<ImageSummary[]> {
    const args = ["images", "--no-trunc", "--digests", "--format", "{{json .}}"];
    if (options.reference !== undefined) args.push("--", imageArg(options.reference));
    const out = await this.#ok(args);
    return parseDockerImages(out.stdout);
  }

  /** `docker image inspect REF`; `null` when there is no such image. */
  async inspect(ref: string): Promise<ImageInfo | null> {
    const spec = this.#spec(["image", "inspect", "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === 1 && MISSING_RE.test(out.stderr)) return null;
    if (out.code !== 0) throw commandFailed(spec, out);
    const list = asArray(parseJson(out.stdout, INSPECT), INSPECT, "$");
    const [first] = list;
    if (list.length !== 1 || first === undefined) {
      throw unexpected(INSPECT, `expected 1 image, got ${list.length}`);
    }
    return parseDockerInspect(first);
  }

  /** True when `docker image inspect` finds the image (docker has no `image exists`). */
  async exists(ref: string): Promise<boolean> {
    return (await this.inspect(ref)) !== null;
  }

  /** `docker rmi [-f] REF`; `false` when there was no such image. */
  async remove(ref: string, options: RemoveOptions = {}): Promise<boolean> {
    const spec = this.#spec(["rmi", ...(options.force === true ? ["--force"] : []), "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === 0) return true;
    if (out.code === 1 && MISSING_RE.test(out.stderr)) return false;
    throw commandFailed(spec, out);
  }

  /** The repo digests' digests (docker has no `.Digest`), or `null` when there is no such image. */
  async digestsOf(ref: string): Promise<Digest[] | null> {
    const info = await this.inspect(ref);
    return info === null ? null : info.digests;
  }

  async #ok(args: string[]): Promise<CommandOutcome> {
    const spec = this.#spec(args);
    const out = await runCommand(spec);
    if (out.code !== 0) throw commandFailed(spec, out);
    return out;
  }

  #spec(args: string[]): CommandSpec {
    return { runtime: "docker", binary: this.path, args, env: this.#env, timeoutMs: this.#timeoutMs };
  }
}

const IMAGES = "docker images";
const INSPECT = "docker image inspect";
const NONE = "<none>";

/** Parses `docker images --format '{{json .}}'` (one JSON object per line), merging rows by ID. */
function parseDockerImages(stdout: string): ImageSummary[] {
  const byId = new Map<Digest, ImageSummary>();
  for (const [i, line] of stdout.split("\n").entries()) {
    if (line.trim() === "") continue;
    const path = `line ${i + 1}`;
    const row = asObject(parseJson(line, IMAGES), IMAGES, path);
    const id = imageId(stringField(row, "ID", IMAGES, path), IMAGES, `${path}.ID`);
    const repository = stringField(row, "Repository", IMAGES, path);
    const tag = stringField(row, "Tag", IMAGES, path);
    const rawDigest = stringField(row, "Digest", IMAGES, path);
    const names = repository !== NONE && tag !== NONE ? [`${repository}:${tag}`] : [];
    const digest = rawDigest === NONE ? undefined : optionalDigest(rawDigest, IMAGES, `${path}.Digest`);
    const repoDigests = repository !== NONE && digest !== undefined ? [`${repository}@${digest}`] : [];
    const seen = byId.get(id);
    if (seen === undefined) {
      byId.set(id, {
        id,
        names,
        repoDigests,
        digests: digest === undefined ? [] : [digest],
        created: createdAt(row["CreatedAt"]),
      });
    } else {
      seen.names = unique([...seen.names, ...names]);
      seen.repoDigests = unique([...seen.repoDigests, ...repoDigests]);
      seen.digests = unique([...seen.digests, ...(digest === undefined ? [] : [digest])]);
    }
  }
  return [...byId.values()];
}

/** Parses one element of `docker image inspect`. */
function parseDockerInspect(untrusted: unknown): ImageInfo {
  const entry = asObject(untrusted, INSPECT, "$[0]");
  const repoDigests = stringListField(entry, "RepoDigests", INSPECT, "$[0]");
  return {
    id: imageId(stringField(entry, "Id", INSPECT, "$[0]"), INSPECT, "$[0].Id"),
    digest: undefined,
    repoDigests,
    repoTags: stringListField(entry, "RepoTags", INSPECT, "$[0]"),
    digests: uniqueDigests(undefined, repoDigests, INSPECT, "$[0].RepoDigests"),
    architecture: stringField(entry, "Architecture", INSPECT, "$[0]"),
    os: stringField(entry, "Os", INSPECT, "$[0]"),
    created: createdAt(entry["Created"]),
  };
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
