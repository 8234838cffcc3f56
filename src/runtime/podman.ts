/**
 * The podman adapter. Parses podman 4.3's real output: `podman images --format json` lists one entry per
 * name (tags in `Names`, `RepoTags` null), so entries are merged by `Id`; `podman image inspect` of a missing
 * image prints `[]` and exits 125.
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
  optionalStringField,
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

/** podman's "no such image" on stderr. */
const MISSING_RE = /image not known|no such image/i;

/**
 * Podman over `Deno.Command`.
 *
 * @example
 * ```ts
 * import { PodmanRuntime } from "./podman.ts";
 * const podman = new PodmanRuntime({ env: { CONTAINERS_STORAGE_CONF: "/tmp/storage.conf" } });
 * async function installedId(): Promise<string | undefined> {
 *   return (await podman.inspect("ghcr.io/freedomofpress/dangerzone/v1:latest"))?.id;
 * }
 * ```
 */
export class PodmanRuntime implements ContainerRuntime {
  /** Always `podman`. */
  readonly name = "podman";
  /** The binary that is run. */
  readonly path: string;
  readonly #env: Record<string, string> | undefined;
  readonly #timeoutMs: number;
  readonly #loadTimeoutMs: number;

  /** An adapter for the podman at `options.path` (default `podman` on `PATH`). */
  constructor(options: RuntimeOptions = {}) {
    this.path = options.path ?? "podman";
    this.#env = options.env;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#loadTimeoutMs = options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  }

  /** `podman version`; `RUNTIME_NOT_FOUND` when podman is missing or does not answer. */
  async version(): Promise<string> {
    const spec = this.#spec(["version", "--format", "{{.Client.Version}}"]);
    let out: CommandOutcome;
    try {
      out = await runCommand(spec);
    } catch (err) {
      throw unusable("podman", this.path, err);
    }
    const version = out.stdout.trim();
    if (out.code !== 0) throw unusable("podman", this.path, commandFailed(spec, out));
    if (!VERSION_RE.test(version)) {
      throw unusable("podman", this.path, unexpected("podman version", "not a version"));
    }
    return version;
  }

  /** `podman load` with the archive streamed into stdin. */
  async load(archive: ReadableStream<Uint8Array>): Promise<LoadResult> {
    const spec = { ...this.#spec(["load", "--quiet"]), timeoutMs: this.#loadTimeoutMs, stdin: archive };
    const out = await runCommand(spec);
    if (out.code !== 0) {
      throw commandFailed(
        spec,
        out,
        "the archive is not an image podman can load; --debug shows podman's output",
      );
    }
    return parseLoadOutput(out.stdout, "podman load");
  }

  /** `podman tag SOURCE TARGET`. */
  async tag(source: string, target: string): Promise<void> {
    await this.#ok(["tag", "--", imageArg(source), imageArg(target)]);
  }

  /** `podman images --format json [REFERENCE]`, merged by image ID. */
  async list(options: ListOptions = {}): Promise<ImageSummary[]> {
    const args = ["images", "--format", "json"];
    if (options.reference !== undefined) args.push("--", imageArg(options.reference));
    const out = await this.#ok(args);
    return parsePodmanImages(parseJson(out.stdout, "podman images"));
  }

  /** `podman image inspect REF`; `null` when podman holds no such image (exit 125, "image not known"). */
  async inspect(ref: string): Promise<ImageInfo | null> {
    const spec = this.#spec(["image", "inspect", "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === 125 && MISSING_RE.test(out.stderr)) return null;
    if (out.code !== 0) throw commandFailed(spec, out);
    const list = asArray(parseJson(out.stdout, "podman image inspect"), "podman image inspect", "$");
    const [first] = list;
    if (list.length !== 1 || first === undefined) {
      throw unexpected("podman image inspect", `expected 1 image, got ${list.length}`);
    }
    return parsePodmanInspect(first);
  }

  /** `podman image exists REF` (exit 0 yes, 1 no). */
  async exists(ref: string): Promise<boolean> {
    const spec = this.#spec(["image", "exists", "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === 0) return true;
    if (out.code === 1) return false;
    throw commandFailed(spec, out);
  }

  /** `podman rmi [-f] REF`; `false` when there was no such image (exit 1). */
  async remove(ref: string, options: RemoveOptions = {}): Promise<boolean> {
    const args = ["rmi", ...(options.force === true ? ["--force"] : []), "--", imageArg(ref)];
    const spec = this.#spec(args);
    const out = await runCommand(spec);
    if (out.code === 0) return true;
    if (out.code === 1 && MISSING_RE.test(out.stderr)) return false;
    throw commandFailed(spec, out);
  }

  /** `.Digest` plus the repo digests' digests, or `null` when there is no such image. */
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
    return { runtime: "podman", binary: this.path, args, env: this.#env, timeoutMs: this.#timeoutMs };
  }
}

const IMAGES = "podman images";
const INSPECT = "podman image inspect";

/** Parses `podman images --format json`, merging the per-name entries of one image. */
function parsePodmanImages(untrusted: unknown): ImageSummary[] {
  const byId = new Map<Digest, ImageSummary>();
  for (const [i, item] of asArray(untrusted, IMAGES, "$").entries()) {
    const path = `$[${i}]`;
    const entry = asObject(item, IMAGES, path);
    const id = imageId(stringField(entry, "Id", IMAGES, path), IMAGES, `${path}.Id`);
    const names = [
      ...stringListField(entry, "Names", IMAGES, path),
      ...stringListField(entry, "RepoTags", IMAGES, path),
    ];
    const repoDigests = stringListField(entry, "RepoDigests", IMAGES, path);
    const digest = optionalDigest(
      optionalStringField(entry, "Digest", IMAGES, path),
      IMAGES,
      `${path}.Digest`,
    );
    const digests = uniqueDigests(digest, repoDigests, IMAGES, `${path}.RepoDigests`);
    const seen = byId.get(id);
    if (seen === undefined) {
      byId.set(id, {
        id,
        names: unique(names),
        repoDigests: unique(repoDigests),
        digests,
        created: createdAt(entry["Created"]),
      });
    } else {
      seen.names = unique([...seen.names, ...names]);
      seen.repoDigests = unique([...seen.repoDigests, ...repoDigests]);
      seen.digests = unique([...seen.digests, ...digests]);
    }
  }
  return [...byId.values()];
}

/** Parses one element of `podman image inspect`. */
function parsePodmanInspect(untrusted: unknown): ImageInfo {
  const entry = asObject(untrusted, INSPECT, "$[0]");
  const id = imageId(stringField(entry, "Id", INSPECT, "$[0]"), INSPECT, "$[0].Id");
  const digest = optionalDigest(
    optionalStringField(entry, "Digest", INSPECT, "$[0]"),
    INSPECT,
    "$[0].Digest",
  );
  const repoDigests = stringListField(entry, "RepoDigests", INSPECT, "$[0]");
  return {
    id,
    digest,
    repoDigests,
    repoTags: stringListField(entry, "RepoTags", INSPECT, "$[0]"),
    digests: uniqueDigests(digest, repoDigests, INSPECT, "$[0].RepoDigests"),
    architecture: stringField(entry, "Architecture", INSPECT, "$[0]"),
    os: stringField(entry, "Os", INSPECT, "$[0]"),
    created: createdAt(entry["Created"]),
  };
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
