/**
 * The container runtime interface: what the updater needs from podman or docker, and nothing more.
 *
 * Implementations ({@linkcode PodmanRuntime}, {@linkcode DockerRuntime}) are thin adapters over
 * `Deno.Command`: argument arrays only, never a shell string; every failure is a `DangerzoneError`
 * (`RUNTIME_FAILED` with the runtime's stderr in `cause`, `RUNTIME_NOT_FOUND` when the binary is missing
 * or does not answer `version`).
 *
 * @module
 */
import type { Digest } from "../oci/digest.ts";

/** The supported container runtimes. */
export type RuntimeName = "podman" | "docker";

/** Options shared by both adapters. */
export interface RuntimeOptions {
  /** The binary to run (`--runtime-path`); default `podman` or `docker` looked up on `PATH`. */
  path?: string;
  /**
   * Extra environment for every call (merged over the inherited environment), e.g. `CONTAINERS_CONF`,
   * `CONTAINERS_STORAGE_CONF` or `DOCKER_HOST`.
   */
  env?: Record<string, string>;
  /** Time limit of every call except `load()`, in milliseconds (default 120 000). */
  timeoutMs?: number;
  /** Time limit of `load()`, in milliseconds (default 3 600 000). */
  loadTimeoutMs?: number;
}

/** What the runtime printed after a load. Names come from the archive and are not verified. */
export interface LoadResult {
  /** Image names the runtime reports (`Loaded image: NAME`), e.g. `localhost/app:1`. */
  names: string[];
  /** Image IDs the runtime reports for untagged images (`Loaded image: sha256:…`, `Loaded image ID: …`). */
  ids: Digest[];
}

/** Options of {@linkcode ContainerRuntime.loadLayout}. */
export interface LayoutLoadOptions {
  /**
   * Called about four times a second with the bytes the runtime has read so far (Linux: its
   * `/proc/<pid>/io` `rchar`; never called where that cannot be read, e.g. without read permission).
   */
  onProgress?: (bytesRead: number) => void;
}

/** One image of {@linkcode ContainerRuntime.list}, deduplicated by ID (podman lists one entry per name). */
export interface ImageSummary {
  /** The image ID (`sha256:` + the config digest hex on podman and the classic docker store). */
  id: Digest;
  /** Names (`repository:tag`) the image carries; empty when untagged. */
  names: string[];
  /** Repository digests as reported (`repository@sha256:…`). */
  repoDigests: string[];
  /** Every manifest digest the runtime associates with the image (`.Digest` plus the repo digests). */
  digests: Digest[];
  /** Creation time from the image config (untrusted, for display), if reported and parsable. */
  created: Date | undefined;
}

/** The result of {@linkcode ContainerRuntime.inspect}. */
export interface ImageInfo {
  /** The image ID, `sha256:…`. */
  id: Digest;
  /** podman's `.Digest` (the manifest or index digest the image was stored under); docker has none. */
  digest: Digest | undefined;
  /** Repository digests as reported (`repository@sha256:…`). */
  repoDigests: string[];
  /** Names (`repository:tag`) the image carries. */
  repoTags: string[];
  /** Every manifest digest the runtime associates with the image (`digest` plus the repo digests), unique. */
  digests: Digest[];
  /** `Architecture` from the image config. */
  architecture: string;
  /** `Os` from the image config. */
  os: string;
  /** Creation time from the image config (untrusted, for display), if parsable. */
  created: Date | undefined;
}

/** Options of {@linkcode ContainerRuntime.list}. */
export interface ListOptions {
  /** Only images matching this reference (`repository` or `repository:tag`). */
  reference?: string;
}

/** Options of {@linkcode ContainerRuntime.remove}. */
export interface RemoveOptions {
  /** Remove even when the image has other tags or containers use it (`rmi -f`). */
  force?: boolean;
}

/**
 * A container runtime that images can be loaded into and inspected in.
 *
 * Image arguments (`ref`) are a name, `name@sha256:…`, or an image ID; prefer IDs and digests. An argument
 * that could be read as an option (leading `-`) or holds whitespace is refused with `REFERENCE_INVALID`.
 */
export interface ContainerRuntime {
  /** `podman` or `docker`. */
  readonly name: RuntimeName;
  /** The binary that is run. */
  readonly path: string;
  /** The runtime's version (docker: the daemon's); `RUNTIME_NOT_FOUND` when it does not answer. */
  version(): Promise<string>;
  /**
   * Loads a docker-archive or oci-archive tar, streamed into the runtime's stdin (never buffered here).
   * When `archive` errors (e.g. a digest check failing at EOF) the runtime is killed before it sees the end
   * of its input, so nothing is loaded, and that error is rethrown.
   */
  load(archive: ReadableStream<Uint8Array>): Promise<LoadResult>;
  /**
   * True when {@linkcode loadLayout} works: the runtime reads this machine's files itself (a local podman;
   * not docker or `podman --remote`, whose daemon may run elsewhere). Asked once, then remembered.
   */
  canLoadLayout(): Promise<boolean>;
  /**
   * Loads the OCI image layout directory `dir` in place: no tar, no copy (a streamed `load` makes podman
   * copy its whole stdin to a temp file first). `index.json` must list exactly one image; the runtime
   * checks every blob's digest as it reads it. podman names the image after the directory, so `dir`'s base
   * name must be a lowercase repository component (`dz-staging-1a2b`); returns that name
   * (`localhost/dz-staging-1a2b:latest`). `RUNTIME_FAILED` when {@linkcode canLoadLayout} is false.
   */
  loadLayout(dir: string, options?: LayoutLoadOptions): Promise<string>;
  /** Adds the name `target` to the image `source`. */
  tag(source: string, target: string): Promise<void>;
  /** Images, deduplicated by ID. */
  list(options?: ListOptions): Promise<ImageSummary[]>;
  /** Details of one image, or `null` when the runtime holds no such image. */
  inspect(ref: string): Promise<ImageInfo | null>;
  /** True when the runtime holds the image. */
  exists(ref: string): Promise<boolean>;
  /** Removes a name or image; resolves `false` when there was no such image. */
  remove(ref: string, options?: RemoveOptions): Promise<boolean>;
  /**
   * Every manifest digest the runtime associates with the image (`.Digest` plus the repo digests' digests),
   * or `null` when there is no such image. After a load podman reports the per-platform manifest digest,
   * after a pull of an index the index digest (Dangerzone issue #1516): check `includes(verified)`.
   */
  digestsOf(ref: string): Promise<Digest[] | null>;
}
