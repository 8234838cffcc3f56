/**
 * Real podman with isolated storage and configuration, and the docker CLI talking to it through
 * `podman system service` on a unix socket.
 *
 * The configuration is what works on a root machine without systemd (see
 * `../shared/recipes/container-env.sh`): vfs storage, cgroupfs, runc, small ulimits, no network, events in a
 * file. Everything lives in a temp dir chosen through `CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF` and
 * `CONTAINERS_REGISTRIES_CONF`, so tests never touch the machine's images.
 *
 * @module
 */
import { join } from "node:path";
import {
  type CommandResult,
  makeTempDir,
  type ManagedProcess,
  runCommand,
  spawnProcess,
  waitUntil,
} from "./process.ts";

/** Options of {@link RunningPodman.podman} and {@link DockerApi.docker}. */
export interface CliOptions {
  /** Bytes or text for stdin. */
  stdin?: string | Uint8Array;
  /** Throw (with stderr) on a non-zero exit. Default true; pass false to assert on failures. */
  check?: boolean;
}

/** An isolated podman. */
export interface RunningPodman extends AsyncDisposable {
  /** Root of its storage and configuration. */
  readonly dir: string;
  /**
   * Environment that selects this podman's configuration; pass it to any `podman` the code under test runs
   * (it also sets `REGISTRY_AUTH_FILE` to a file in `dir`).
   */
  readonly env: Record<string, string>;
  /** Runs `podman ARGS` with {@link env}. */
  podman(args: string[], options?: CliOptions): Promise<CommandResult>;
  /** Removes any containers and the whole storage. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Creates an isolated podman configuration and storage in a temp dir (no daemon is started).
 *
 * @example
 * ```ts
 * import { startPodman } from "./podman.ts";
 * await using pm = await startPodman();
 * const { stdout } = await pm.podman(["images", "--format", "json"]);
 * ```
 */
export async function startPodman(): Promise<RunningPodman> {
  const tmp = makeTempDir("podman");
  const dir = tmp.path;
  try {
    await writePodmanConfig(dir);
  } catch (e) {
    await tmp.remove();
    throw e;
  }
  const env: Record<string, string> = {
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
  };
  function podman(args: string[], options: CliOptions = {}): Promise<CommandResult> {
    return runCommand("podman", args, {
      env,
      ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
      check: options.check ?? true,
    });
  }
  let stopping: Promise<void> | undefined;
  async function stopOnce(): Promise<void> {
    try {
      const ps = await podman(["ps", "-aq"], { check: false });
      if (ps.stdout.trim() !== "") await podman(["rm", "-af", "-t", "0"], { check: false });
    } finally {
      await tmp.remove();
    }
  }
  function stop(): Promise<void> {
    stopping ??= stopOnce();
    return stopping;
  }
  return { dir, env, podman, stop, [Symbol.asyncDispose]: stop };
}

async function writePodmanConfig(dir: string): Promise<void> {
  for (const sub of ["root", "run", "tmp", "copytmp"]) await Deno.mkdir(join(dir, sub));
  await Deno.writeTextFile(
    join(dir, "storage.conf"),
    `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/root"\nrunroot = "${dir}/run"\n`,
  );
  // crun refuses this kernel's hybrid cgroup layout -> runc; the default nofile rlimit exceeds the hard
  // limit without CAP_SYS_RESOURCE -> lower it; there is no network for containers.
  await Deno.writeTextFile(
    join(dir, "containers.conf"),
    `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
runtime = "runc"
tmp_dir = "${dir}/tmp"
image_copy_tmp_dir = "${dir}/copytmp"
`,
  );
  await Deno.writeTextFile(join(dir, "registries.conf"), "unqualified-search-registries = []\n");
  // podman refuses to run when REGISTRY_AUTH_FILE names a missing file
  await Deno.writeTextFile(join(dir, "auth.json"), '{"auths":{}}\n');
}

/** The docker CLI against a podman API socket. */
export interface DockerApi extends AsyncDisposable {
  /** `unix:///…/docker.sock`. */
  readonly dockerHost: string;
  /** The socket path. */
  readonly socketPath: string;
  /** The podman environment plus `DOCKER_HOST` and an isolated `DOCKER_CONFIG`. */
  readonly env: Record<string, string>;
  /** The `podman system service` process. */
  readonly process: ManagedProcess;
  /** Milliseconds from the call until `/_ping` answered. */
  readonly startupMs: number;
  /** Runs `docker ARGS` with {@link env}. */
  docker(args: string[], options?: CliOptions): Promise<CommandResult>;
  /** Stops the service by PID. Idempotent. */
  stop(): Promise<void>;
}

async function pingUnixSocket(path: string): Promise<boolean> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return false;
  }
  try {
    await conn.write(new TextEncoder().encode("GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n"));
    const buf = new Uint8Array(512);
    let text = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
      if (/\r\n\r\n[\s\S]*OK/.test(text)) break;
    }
    return text.startsWith("HTTP/1.") && text.includes(" 200 ");
  } catch {
    return false;
  } finally {
    conn.close();
  }
}

/**
 * Starts `podman system service --time=0` on a unix socket in the podman's dir, for the docker CLI.
 *
 * @example
 * ```ts
 * import { startDockerApi, startPodman } from "./podman.ts";
 * await using pm = await startPodman();
 * await using api = await startDockerApi(pm);
 * await api.docker(["version"]);
 * ```
 */
export async function startDockerApi(podman: RunningPodman): Promise<DockerApi> {
  const started = performance.now();
  const socketPath = join(podman.dir, "docker.sock");
  const dockerConfig = join(podman.dir, "docker-config");
  await Deno.mkdir(dockerConfig, { recursive: true });
  const proc = spawnProcess("podman", {
    args: ["system", "service", "--time=0", `unix://${socketPath}`],
    env: podman.env,
    logFile: join(podman.dir, "podman-service.log"),
  });
  try {
    await waitUntil(() => pingUnixSocket(socketPath), {
      what: "podman system service socket",
      process: proc,
    });
  } catch (e) {
    await proc.stop();
    throw e;
  }
  const dockerHost = `unix://${socketPath}`;
  const env = { ...podman.env, DOCKER_HOST: dockerHost, DOCKER_CONFIG: dockerConfig };
  async function stop(): Promise<void> {
    await proc.stop();
  }
  return {
    dockerHost,
    socketPath,
    env,
    process: proc,
    startupMs: performance.now() - started,
    docker(args: string[], options: CliOptions = {}): Promise<CommandResult> {
      return runCommand("docker", args, {
        env,
        ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
        check: options.check ?? true,
      });
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
