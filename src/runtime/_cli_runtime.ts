/**
 * The behaviour podman and docker share: both are CLIs run over `Deno.Command` with the same verbs
 * (`version`, `load`, `tag`, `images`, `image inspect`, `rmi`). Each adapter supplies only what differs:
 * its name, version template, list arguments and output parsers, and how it says "no such image".
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { commandFailed, type CommandOutcome, type CommandSpec, runCommand, unusable } from "./_command.ts";
import { DEFAULT_LOAD_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, VERSION_RE } from "./_defaults.ts";
import { imageArg } from "./_image_arg.ts";
import { asArray, parseJson, unexpected } from "./_json.ts";
import { parseLoadOutput } from "./_load_output.ts";
import type {
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

/** What differs between the podman and docker CLIs. */
export interface CliDialect {
  name: RuntimeName;
  /** The Go template `version --format` prints the version with. */
  versionTemplate: string;
  /** Arguments of the image listing, before an optional `-- REFERENCE`. */
  listArgs: string[];
  parseList(stdout: string): ImageSummary[];
  parseInspect(untrusted: unknown): ImageInfo;
  /** The exit code of `image inspect` for a missing image. */
  missingInspectCode: number;
  /** The runtime's "no such image" on stderr. */
  missing: RegExp;
}

/** A container runtime driven through its CLI. */
export class CliRuntime implements ContainerRuntime {
  /** The runtime's name. */
  readonly name: RuntimeName;
  /** The binary that is run. */
  readonly path: string;
  readonly #dialect: CliDialect;
  readonly #env: Record<string, string> | undefined;
  readonly #timeoutMs: number;
  readonly #loadTimeoutMs: number;

  /** An adapter for the CLI of `dialect` at `options.path` (default: its name on `PATH`). */
  constructor(dialect: CliDialect, options: RuntimeOptions = {}) {
    this.#dialect = dialect;
    this.name = dialect.name;
    this.path = options.path ?? dialect.name;
    this.#env = options.env;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#loadTimeoutMs = options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
  }

  /** The runtime's version; `RUNTIME_NOT_FOUND` when it is missing or does not answer. */
  async version(): Promise<string> {
    const spec = this.spec(["version", "--format", this.#dialect.versionTemplate]);
    let out: CommandOutcome;
    try {
      out = await runCommand(spec);
    } catch (err) {
      throw unusable(this.name, this.path, err);
    }
    const version = out.stdout.trim();
    if (out.code !== 0) throw unusable(this.name, this.path, commandFailed(spec, out));
    if (!VERSION_RE.test(version)) {
      throw unusable(this.name, this.path, unexpected(`${this.name} version`, "not a version"));
    }
    return version;
  }

  /** `load` with the archive streamed into stdin. */
  async load(archive: ReadableStream<Uint8Array>): Promise<LoadResult> {
    const spec = { ...this.loadSpec(["load", "--quiet"]), stdin: archive };
    const out = await runCommand(spec);
    if (out.code !== 0) {
      throw commandFailed(
        spec,
        out,
        `the archive is not an image ${this.name} can load; --debug shows ${this.name}'s output`,
      );
    }
    return parseLoadOutput(out.stdout, `${this.name} load`);
  }

  /** False: only a local podman reads a layout directory in place (see {@linkcode PodmanRuntime}). */
  canLoadLayout(): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** Not supported by this runtime: `RUNTIME_FAILED`. */
  loadLayout(_dir: string, _options?: LayoutLoadOptions): Promise<string> {
    return Promise.reject(
      new DangerzoneError("RUNTIME_FAILED", `${this.name} cannot load an OCI layout directory in place`),
    );
  }

  /** The spec of a `load` call: this runtime's binary and environment, with the load time limit. */
  protected loadSpec(args: string[]): CommandSpec {
    return { ...this.spec(args), timeoutMs: this.#loadTimeoutMs };
  }

  /** `tag SOURCE TARGET`. */
  async tag(source: string, target: string): Promise<void> {
    await this.ok(["tag", "--", imageArg(source), imageArg(target)]);
  }

  /** The image listing, merged by image ID. */
  async list(options: ListOptions = {}): Promise<ImageSummary[]> {
    const args = [...this.#dialect.listArgs];
    if (options.reference !== undefined) args.push("--", imageArg(options.reference));
    const out = await this.ok(args);
    return this.#dialect.parseList(out.stdout);
  }

  /** `image inspect REF`; `null` when the runtime holds no such image. */
  async inspect(ref: string): Promise<ImageInfo | null> {
    const spec = this.spec(["image", "inspect", "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === this.#dialect.missingInspectCode && this.#dialect.missing.test(out.stderr)) return null;
    if (out.code !== 0) throw commandFailed(spec, out);
    const what = `${this.name} image inspect`;
    const list = asArray(parseJson(out.stdout, what), what, "$");
    const [first] = list;
    if (list.length !== 1 || first === undefined) {
      throw unexpected(what, `expected 1 image, got ${list.length}`);
    }
    return this.#dialect.parseInspect(first);
  }

  /** True when `image inspect` finds the image. */
  async exists(ref: string): Promise<boolean> {
    return (await this.inspect(ref)) !== null;
  }

  /** `rmi [-f] REF`; `false` when there was no such image. */
  async remove(ref: string, options: RemoveOptions = {}): Promise<boolean> {
    const spec = this.spec(["rmi", ...(options.force === true ? ["--force"] : []), "--", imageArg(ref)]);
    const out = await runCommand(spec);
    if (out.code === 0) return true;
    if (out.code === 1 && this.#dialect.missing.test(out.stderr)) return false;
    throw commandFailed(spec, out);
  }

  /** Every manifest digest the runtime associates with the image, or `null` when there is no such image. */
  async digestsOf(ref: string): Promise<Digest[] | null> {
    const info = await this.inspect(ref);
    return info === null ? null : info.digests;
  }

  /** Runs `args` and fails with `RUNTIME_FAILED` unless it exits 0. */
  protected async ok(args: string[]): Promise<CommandOutcome> {
    const spec = this.spec(args);
    const out = await runCommand(spec);
    if (out.code !== 0) throw commandFailed(spec, out);
    return out;
  }

  /** The command spec for `args` with this runtime's binary, environment and time limit. */
  protected spec(args: string[]): CommandSpec {
    return { runtime: this.name, binary: this.path, args, env: this.#env, timeoutMs: this.#timeoutMs };
  }
}

/** Merges `items` keeping first occurrences. */
export function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
