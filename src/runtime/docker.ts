/**
 * The docker adapter (the docker CLI against a docker daemon or podman's docker-compatible API socket).
 * `docker image inspect` has no `.Digest`: the manifest digests are those in `RepoDigests`, so an untagged
 * image has none; `docker images --format '{{json .}}'` prints one line per name (and per repo digest),
 * merged here by ID. A missing image is exit 1 with "No such image" on stderr.
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";
import { CliRuntime, unique } from "./_cli_runtime.ts";
import {
  asObject,
  createdAt,
  imageId,
  optionalDigest,
  parseJson,
  stringField,
  stringListField,
  uniqueDigests,
} from "./_json.ts";
import type { ImageInfo, ImageSummary, RuntimeOptions } from "./runtime.ts";

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
export class DockerRuntime extends CliRuntime {
  /** An adapter for the docker CLI at `options.path` (default `docker` on `PATH`). */
  constructor(options: RuntimeOptions = {}) {
    super({
      name: "docker",
      versionTemplate: "{{.Server.Version}}",
      listArgs: ["images", "--no-trunc", "--digests", "--format", "{{json .}}"],
      parseList: parseDockerImages,
      parseInspect: parseDockerInspect,
      missingInspectCode: 1,
      missing: MISSING_RE,
    }, options);
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
