/**
 * Runs one runtime command over `Deno.Command`: argument array, bounded output, a time limit, and stdin
 * streamed from a `ReadableStream` with backpressure. Private to `src/runtime/`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { RuntimeName } from "./runtime.ts";

/** What to run. */
export interface CommandSpec {
  /** Which runtime, for messages and hints. */
  runtime: RuntimeName;
  /** The binary. */
  binary: string;
  /** Arguments (never a shell string). */
  args: string[];
  /** Extra environment, merged over the inherited one. */
  env: Record<string, string> | undefined;
  /** Time limit in milliseconds. */
  timeoutMs: number;
  /** Streamed into the child's stdin; stdin is `null` without it. */
  stdin?: ReadableStream<Uint8Array>;
  /** Working directory of the child (default: ours). */
  cwd?: string;
  /** Called with the child's process ID once it runs (e.g. to sample its I/O counters). */
  onSpawn?: (pid: number) => void;
}

/** What a command did. */
export interface CommandOutcome {
  /** Exit code. */
  code: number;
  /** Decoded stdout. */
  stdout: string;
  /** Decoded stderr (its last {@linkcode STDERR_LIMIT} bytes). */
  stderr: string;
}

/** Most stdout we accept (image lists of a few thousand images fit easily). */
const STDOUT_LIMIT = 32 * 1024 * 1024;
/** Most stderr we keep (the tail). */
const STDERR_LIMIT = 64 * 1024;
/** Grace between SIGTERM and SIGKILL after a timeout. */
const KILL_GRACE_MS = 3000;
/** How long output may stay open after the child exited (a grandchild holding the pipe must not hang us). */
const OUTPUT_GRACE_MS = 2000;

/** How to get each runtime working, for `RUNTIME_NOT_FOUND`. */
export function notFoundHint(runtime: RuntimeName): string {
  return runtime === "podman"
    ? "install podman (e.g. apt install podman), pass --runtime-path, or use --runtime docker"
    : "start the docker daemon (or set DOCKER_HOST), install docker, or pass --runtime-path";
}

/** `RUNTIME_NOT_FOUND` for a runtime whose `version` fails: it is missing, broken or its daemon is down. */
export function unusable(runtime: RuntimeName, path: string, cause: unknown): DangerzoneError {
  if (cause instanceof DangerzoneError && cause.code === "RUNTIME_NOT_FOUND") return cause;
  return new DangerzoneError(
    "RUNTIME_NOT_FOUND",
    `${runtime} at '${path}' does not work ('version' failed)`,
    {
      cause,
      hint: notFoundHint(runtime),
    },
  );
}

/**
 * Runs the command and returns its exit code and output, whatever the code.
 *
 * Throws `RUNTIME_NOT_FOUND` when the binary cannot be started, `RUNTIME_FAILED` on a timeout or oversized
 * output, and rethrows the error of `spec.stdin` when that stream fails (after killing the child before it
 * saw the end of its input).
 */
export async function runCommand(spec: CommandSpec): Promise<CommandOutcome> {
  const label = describe(spec);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(spec.binary, {
      args: spec.args,
      ...(spec.env === undefined ? {} : { env: spec.env }),
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      stdin: spec.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    await spec.stdin?.cancel(err).catch(() => {});
    throw spawnError(spec, err);
  }

  spec.onSpawn?.(child.pid);
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child, "SIGTERM");
    killTimer = setTimeout(() => kill(child, "SIGKILL"), KILL_GRACE_MS);
  }, spec.timeoutMs);

  const input = spec.stdin === undefined
    ? Promise.resolve<PumpResult>({ kind: "done" })
    : pump(spec.stdin, child);
  const drain = new AbortController();
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const exited = child.status.then((status) => {
    drainTimer = setTimeout(() => drain.abort(), OUTPUT_GRACE_MS);
    return status;
  });
  let results: [Deno.CommandStatus, Collected, Collected, PumpResult];
  try {
    results = await Promise.all([
      exited,
      collect(child.stdout, STDOUT_LIMIT, "head", drain.signal),
      collect(child.stderr, STDERR_LIMIT, "tail", drain.signal),
      input,
    ]);
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    clearTimeout(drainTimer);
  }
  const [status, stdout, stderr, pumped] = results;

  if (pumped.kind === "source-error") {
    // The archive stream failed (e.g. a digest mismatch): the child was killed before EOF.
    if (pumped.error instanceof DangerzoneError) throw pumped.error;
    throw new DangerzoneError("RUNTIME_FAILED", `${label} aborted: its input stream failed`, {
      cause: pumped.error,
      hint: "nothing was loaded; retry the operation",
    });
  }
  const stderrText = decode(stderr.bytes);
  if (timedOut) {
    throw new DangerzoneError(
      "RUNTIME_FAILED",
      `${label} timed out after ${seconds(spec.timeoutMs)} s`,
      {
        cause: new Error(trimStderr(stderrText)),
        hint: `check that ${spec.runtime} works (e.g. '${spec.runtime} images'), then retry`,
      },
    );
  }
  if (stdout.cutOff) {
    throw new DangerzoneError("RUNTIME_FAILED", `${label} exited but its output stayed open`, {
      cause: new Error(trimStderr(stderrText)),
      hint: `a process started by ${spec.runtime} kept running; check '${spec.runtime}' and retry`,
    });
  }
  if (stdout.overflow) {
    throw new DangerzoneError("RUNTIME_FAILED", `${label} printed more than ${STDOUT_LIMIT} bytes`, {
      hint: "narrow the request (e.g. a reference filter)",
    });
  }
  if (pumped.kind === "write-error" && status.code === 0) {
    throw new DangerzoneError("RUNTIME_FAILED", `${label} exited before reading all of its input`, {
      cause: pumped.error,
      hint: "the archive has bytes the runtime ignored; check what it loaded and retry",
    });
  }
  return { code: status.code, stdout: decode(stdout.bytes), stderr: stderrText };
}

/**
 * The `RUNTIME_FAILED` error for a command that exited non-zero: one line naming the command, the exit code
 * and the runtime's own error line; the trimmed stderr in `cause`.
 */
export function commandFailed(spec: CommandSpec, outcome: CommandOutcome, hint?: string): DangerzoneError {
  const summary = errorLine(outcome.stderr);
  return new DangerzoneError(
    "RUNTIME_FAILED",
    `${describe(spec)} failed (exit ${outcome.code})${summary === "" ? "" : `: ${summary}`}`,
    {
      cause: new Error(trimStderr(outcome.stderr)),
      hint: hint ??
        `check that ${spec.runtime} works (e.g. '${spec.runtime} images'); --debug shows its output`,
    },
  );
}

/** `podman load`, `docker image inspect`: the binary's base name and the subcommand words. */
function describe(spec: CommandSpec): string {
  const base = spec.binary.split("/").pop() ?? spec.binary;
  const words: string[] = [];
  for (const arg of spec.args) {
    if (arg.startsWith("-") || words.length === 2) break;
    words.push(arg);
  }
  return [base, ...words].join(" ");
}

function spawnError(spec: CommandSpec, err: unknown): DangerzoneError {
  if (err instanceof Deno.errors.NotFound) {
    return new DangerzoneError("RUNTIME_NOT_FOUND", `${spec.runtime} was not found at '${spec.binary}'`, {
      cause: err,
      hint: notFoundHint(spec.runtime),
    });
  }
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new DangerzoneError(
      "RUNTIME_NOT_FOUND",
      `not allowed to run ${spec.runtime} at '${spec.binary}'`,
      {
        cause: err,
        hint: `allow running it (deno --allow-run=${spec.binary}) or make it executable`,
      },
    );
  }
  return new DangerzoneError("RUNTIME_FAILED", `could not start ${spec.runtime} at '${spec.binary}'`, {
    cause: err,
    hint: notFoundHint(spec.runtime),
  });
}

/** Milliseconds as seconds for messages: `0.3`, `12`. */
function seconds(ms: number): string {
  return ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // already exited
  }
}

type PumpResult =
  | { kind: "done" }
  | { kind: "source-error"; error: unknown }
  | { kind: "write-error"; error: unknown };

/**
 * Copies `source` into the child's stdin chunk by chunk, waiting for each write (backpressure). On a source
 * error the child is killed BEFORE its stdin is closed, so it never sees a clean end of input; on a write
 * error (the child stopped reading) the source is cancelled.
 */
async function pump(source: ReadableStream<Uint8Array>, child: Deno.ChildProcess): Promise<PumpResult> {
  const writer = child.stdin.getWriter();
  const reader = source.getReader();
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch (error) {
      kill(child, "SIGKILL");
      await writer.abort(error).catch(() => {});
      reader.releaseLock();
      return { kind: "source-error", error };
    }
    if (step.done) {
      try {
        await writer.close();
        return { kind: "done" };
      } catch (error) {
        return { kind: "write-error", error };
      }
    }
    try {
      await writer.write(step.value);
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      await writer.abort(error).catch(() => {});
      return { kind: "write-error", error };
    }
  }
}

interface Collected {
  bytes: Uint8Array;
  overflow: boolean;
  /** `stop` fired before the stream ended. */
  cutOff: boolean;
}

/**
 * Reads a stream to its end, keeping at most `limit` bytes (the head or the tail); when `stop` fires first
 * the stream is cancelled.
 */
async function collect(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  keep: "head" | "tail",
  stop: AbortSignal,
): Promise<Collected> {
  let chunks: Uint8Array[] = [];
  let size = 0;
  let overflow = false;
  let cutOff = false;
  const reader = stream.getReader();
  const onStop = () => {
    cutOff = true;
    reader.cancel().catch(() => {});
  };
  stop.addEventListener("abort", onStop, { once: true });
  for (;;) {
    const step = await reader.read();
    if (step.done) break;
    const chunk = step.value;
    if (keep === "head" && overflow) continue; // drain
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size > limit) {
      overflow = true;
      if (keep === "tail") {
        const all = concat(chunks, size);
        chunks = [all.slice(all.byteLength - limit)];
        size = limit;
      }
    }
  }
  stop.removeEventListener("abort", onStop);
  reader.releaseLock();
  const bytes = concat(chunks, size);
  return { bytes: keep === "head" ? bytes.subarray(0, limit) : bytes, overflow, cutOff };
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk.subarray(0, size - offset), offset);
    offset += Math.min(chunk.byteLength, size - offset);
  }
  return out;
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** Removes control characters (stderr may echo attacker-chosen names from an archive). */
function clean(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "");
}

/** The last lines of stderr, for `cause`. */
function trimStderr(stderr: string): string {
  const lines = clean(stderr).split("\n").map((l) => l.trimEnd()).filter((l) => l !== "");
  return lines.slice(-8).join("\n").slice(-2000);
}

/** The runtime's own error line (`Error: …`), else the last line of stderr, shortened. */
function errorLine(stderr: string): string {
  const lines = clean(stderr).split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const line = lines.find((l) => /^error\b/i.test(l)) ?? lines.at(-1) ?? "";
  const text = line.replace(/^error:\s*/i, "").replace(/^error response from daemon:\s*/i, "");
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
