/**
 * Long-running child processes for the test harness: spawn with logs in a file, wait until ready, stop by
 * PID (SIGTERM, then SIGKILL), plus one-shot commands and per-test temp dirs.
 *
 * Every process spawned here is also killed when the test process unloads, so a crashed test never leaves
 * a registry or podman service behind.
 *
 * @module
 */

/** Options of {@linkcode spawnProcess}. */
export interface SpawnOptions {
  /** Arguments (never a shell string). */
  args?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** File that receives the child's stdout and stderr (appended). */
  logFile: string;
}

/** A running child process started by {@linkcode spawnProcess}. */
export interface ManagedProcess extends AsyncDisposable {
  /** Process id. */
  readonly pid: number;
  /** The command, for messages. */
  readonly command: string;
  /** Where stdout and stderr go. */
  readonly logFile: string;
  /** Exit status once the process has ended, else undefined. */
  readonly exitStatus: Deno.CommandStatus | undefined;
  /** The last `maxChars` characters of the log (for error messages). */
  logTail(maxChars?: number): Promise<string>;
  /** SIGTERM, wait up to `graceMs` (default 3000), then SIGKILL. Idempotent. */
  stop(options?: { graceMs?: number }): Promise<Deno.CommandStatus>;
}

const livePids = new Set<number>();
let unloadHookInstalled = false;

function installUnloadHook(): void {
  if (unloadHookInstalled) return;
  unloadHookInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const pid of livePids) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Spawns `command` with its output appended to `options.logFile`.
 *
 * The child is started through `sh -c 'exec "$@" >>log 2>&1'`, so the PID is the command's own PID and the
 * log is written by the OS (no pending pipe reads in the test process).
 *
 * @example
 * ```ts
 * import { spawnProcess } from "./process.ts";
 * await using proc = spawnProcess("sleep", { args: ["30"], logFile: "/tmp/sleep.log" });
 * ```
 */
export function spawnProcess(command: string, options: SpawnOptions): ManagedProcess {
  installUnloadHook();
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'log=$1; shift; exec "$@" >>"$log" 2>&1',
      "sh",
      options.logFile,
      command,
      ...(options.args ?? []),
    ],
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const pid = child.pid;
  livePids.add(pid);
  let exitStatus: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => {
    exitStatus = s;
    livePids.delete(pid);
    return s;
  });
  let stopping: Promise<Deno.CommandStatus> | undefined;

  async function stopOnce(graceMs: number): Promise<Deno.CommandStatus> {
    if (exitStatus !== undefined) return exitStatus;
    try {
      child.kill("SIGTERM");
    } catch {
      // exited meanwhile
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const first = await Promise.race([status, timedOut]);
    clearTimeout(timer);
    if (first !== "timeout") return first;
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
    return await status;
  }

  return {
    pid,
    command,
    logFile: options.logFile,
    get exitStatus() {
      return exitStatus;
    },
    async logTail(maxChars = 2000): Promise<string> {
      try {
        const text = await Deno.readTextFile(options.logFile);
        return text.slice(-maxChars);
      } catch {
        return "(no log)";
      }
    },
    stop(stopOptions?: { graceMs?: number }): Promise<Deno.CommandStatus> {
      stopping ??= stopOnce(stopOptions?.graceMs ?? 3000);
      return stopping;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await this.stop();
    },
  };
}

/** Options of {@linkcode waitUntil}. */
export interface WaitOptions {
  /** What is awaited, for the timeout message. */
  what: string;
  /** Give up after this long (default 15000 ms). */
  timeoutMs?: number;
  /** Poll interval (default 25 ms). */
  intervalMs?: number;
  /** Fail early (with its log tail) when this process exits. */
  process?: ManagedProcess;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns true; throws on timeout or when `options.process` exits first.
 *
 * @example
 * ```ts
 * import { waitUntil } from "./process.ts";
 * await waitUntil(() => Promise.resolve(true), { what: "nothing" });
 * ```
 */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15000);
  for (;;) {
    if (await check()) return;
    const proc = options.process;
    if (proc?.exitStatus !== undefined) {
      throw new Error(
        `${proc.command} exited (code ${proc.exitStatus.code}) before ${options.what}; log ${proc.logFile}:\n${await proc
          .logTail()}`,
      );
    }
    if (Date.now() > deadline) {
      const tail = proc === undefined ? "" : `; log ${proc.logFile}:\n${await proc.logTail()}`;
      throw new Error(`timed out waiting for ${options.what}${tail}`);
    }
    await sleep(options.intervalMs ?? 25);
  }
}

/**
 * Waits until `url` answers HTTP at all (any status counts).
 *
 * @example
 * ```ts
 * import { waitForHttp } from "./process.ts";
 * // await waitForHttp("http://127.0.0.1:5000/v2/", { what: "registry" });
 * ```
 */
export async function waitForHttp(
  url: string,
  options: WaitOptions & { client?: Deno.HttpClient },
): Promise<void> {
  await waitUntil(async () => {
    try {
      const res = await fetch(url, options.client === undefined ? {} : { client: options.client });
      await res.body?.cancel();
      return true;
    } catch {
      return false;
    }
  }, options);
}

/** Result of {@linkcode runCommand}. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Decoded stdout. */
  stdout: string;
  /** Decoded stderr. */
  stderr: string;
}

/** Options of {@linkcode runCommand}. */
export interface RunOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Bytes or text for stdin. */
  stdin?: string | Uint8Array;
  /** Throw (with stderr) on a non-zero exit. Default true. */
  check?: boolean;
}

/**
 * Runs a command to completion and returns its exit code and output; throws on a non-zero exit unless
 * `check: false`.
 *
 * @example
 * ```ts
 * import { runCommand } from "./process.ts";
 * const { stdout } = await runCommand("echo", ["hi"]);
 * ```
 */
export async function runCommand(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const cmd = new Deno.Command(command, {
    args,
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  let out: Deno.CommandOutput;
  if (options.stdin === undefined) {
    out = await cmd.output();
  } else {
    const child = cmd.spawn();
    const writer = child.stdin.getWriter();
    await writer.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    );
    await writer.close();
    out = await child.output();
  }
  const dec = new TextDecoder();
  const result = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if ((options.check ?? true) && result.code !== 0) {
    throw new Error(
      `${command} ${redactArgs(args).join(" ")} failed (exit ${result.code}): ${
        result.stderr.trim().slice(-2000)
      }`,
    );
  }
  return result;
}

const SECRET_FLAGS = /^--(?:(?:src|dest)-)?(?:creds|registry-token|password)$/;

/** Hides the values of credential flags (`--dest-creds U:P`, `--registry-token T`) in messages. */
function redactArgs(args: string[]): string[] {
  return args.map((a, i) => {
    if (i > 0 && SECRET_FLAGS.test(args[i - 1] ?? "")) return "***";
    return a.replace(/^(--(?:(?:src|dest)-)?(?:creds|registry-token|password)=).*/, "$1***");
  });
}

/** A per-test temp dir, removed on dispose (kept when `DZ_KEEP_TEST_DIRS=1`). */
export interface TempDir extends AsyncDisposable {
  /** Absolute path. */
  readonly path: string;
  /** Removes the dir (idempotent). */
  remove(): Promise<void>;
}

/**
 * Creates a temp dir that `await using` removes, even when the test fails.
 *
 * @example
 * ```ts
 * import { makeTempDir } from "./process.ts";
 * await using dir = makeTempDir("example");
 * ```
 */
export function makeTempDir(prefix: string): TempDir {
  const path = Deno.makeTempDirSync({ prefix: `dz-${prefix}-` });
  let removed = false;
  return {
    path,
    async remove(): Promise<void> {
      if (removed) return;
      removed = true;
      if (Deno.env.get("DZ_KEEP_TEST_DIRS") === "1") return;
      await Deno.remove(path, { recursive: true }).catch((e: unknown) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await this.remove();
    },
  };
}
