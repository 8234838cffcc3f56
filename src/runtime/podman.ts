/**
 * The podman adapter. Parses podman 4.3's real output: `podman images --format json` lists one entry per
 * name (tags in `Names`, `RepoTags` null), so entries are merged by `Id`; `podman image inspect` of a missing
 * image prints `[]` and exits 125.
 *
 * @module
 */
import { basename, dirname } from "../fs_path.ts";
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { parseLoadOutput } from "./_load_output.ts";
import { CliRuntime, unique } from "./_cli_runtime.ts";
import { commandFailed, type CommandOutcome, type CommandSpec, runCommand } from "./_command.ts";
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
import type { ImageInfo, ImageSummary, LayoutLoadOptions, RuntimeOptions } from "./runtime.ts";

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
export class PodmanRuntime extends CliRuntime {
  /** An adapter for the podman at `options.path` (default `podman` on `PATH`). */
  constructor(options: RuntimeOptions = {}) {
    super({
      name: "podman",
      versionTemplate: "{{.Client.Version}}",
      listArgs: ["images", "--format", "json"],
      parseList: (stdout) => parsePodmanImages(parseJson(stdout, IMAGES)),
      parseInspect: parsePodmanInspect,
      missingInspectCode: 125,
      missing: MISSING_RE,
    }, options);
  }

  #local: Promise<boolean> | undefined;

  /**
   * True for a local podman 4 or later (`podman version` reports no server): it reads a layout directory
   * in place. `podman --remote` (and podman machine) reads files on the server side, and podman 3 is not
   * known to load layout directories, so those stream instead.
   */
  override canLoadLayout(): Promise<boolean> {
    this.#local ??= this.#readsLayouts();
    return this.#local;
  }

  /**
   * `podman load --quiet --input BASE` run in the directory's parent, so the image is named
   * `localhost/<base name>:latest` (see `ContainerRuntime.loadLayout`).
   */
  override async loadLayout(dir: string, options: LayoutLoadOptions = {}): Promise<string> {
    if (!(await this.canLoadLayout())) return super.loadLayout(dir, options);
    const base = basename(dir);
    if (!LAYOUT_NAME_RE.test(base)) {
      throw new DangerzoneError("USAGE", `'${base}' cannot name an image: use [a-z0-9] with . _ - between`);
    }
    const onProgress = options.onProgress;
    let sampler: ReturnType<typeof setInterval> | undefined;
    const spec: CommandSpec = {
      ...this.loadSpec(["load", "--quiet", "--input", base]),
      cwd: dirname(dir),
      ...(onProgress === undefined ? {} : {
        onSpawn: (pid: number) => {
          // Never a permission prompt for a progress bar: sample only what is already allowed.
          if (Deno.permissions.querySync({ name: "read", path: `/proc/${pid}/io` }).state !== "granted") {
            return;
          }
          sampler = setInterval(() => {
            const read = bytesReadBy(pid);
            if (read !== undefined) onProgress(read);
          }, PROGRESS_INTERVAL_MS);
        },
      }),
    };
    let out: CommandOutcome;
    try {
      out = await runCommand(spec);
    } finally {
      clearInterval(sampler);
    }
    if (out.code !== 0) {
      throw commandFailed(
        spec,
        out,
        `${this.name} could not load the verified image; --debug shows its output`,
      );
    }
    const name = `localhost/${base}`;
    const loaded = parseLoadOutput(out.stdout, `${this.name} load`);
    if (!loaded.names.some((n) => n === name || n === `${name}:latest`)) {
      throw unexpected(`${this.name} load`, `it did not report the image as ${name}`);
    }
    return `${name}:latest`;
  }

  async #readsLayouts(): Promise<boolean> {
    const out = await this.ok(["version", "--format", "json"]);
    const version = asObject(parseJson(out.stdout, VERSION), VERSION, "$");
    const server = version["Server"];
    const client = asObject(version["Client"], VERSION, "$.Client");
    const major = Number(/^(\d+)\./.exec(stringField(client, "Version", VERSION, "$.Client"))?.[1]);
    return (server === undefined || server === null) && major >= 4;
  }

  /** `podman image exists REF` (exit 0 yes, 1 no). */
  override async exists(ref: string): Promise<boolean> {
    const spec = this.spec(["image", "exists", "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === 0) return true;
    if (out.code === 1) return false;
    throw commandFailed(spec, out);
  }
}

const IMAGES = "podman images";
const VERSION = "podman version";

/** A base name podman accepts as the repository of `localhost/<name>` (lowercase, separators between). */
const LAYOUT_NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** How often a layout load's progress is sampled. */
const PROGRESS_INTERVAL_MS = 250;

/** The bytes process `pid` has read (`rchar` of `/proc/<pid>/io`), or undefined where that is unreadable. */
function bytesReadBy(pid: number): number | undefined {
  try {
    const m = /^rchar:\s*(\d+)$/m.exec(Deno.readTextFileSync(`/proc/${pid}/io`));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}
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
