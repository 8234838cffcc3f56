/**
 * Runs the dangerzone-image CLI as a child process, the way users and the Dangerzone app do.
 *
 * @module
 */

/** The result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runCli}. */
export interface RunCliOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Deno permission flags; default `-A`. */
  permissions?: string[];
  /** Run this entry point instead of main.ts (e.g. the bundle artifact). */
  entry?: string;
  stdin?: Uint8Array;
  /** Kill the run with SIGKILL after this many milliseconds (a hang then fails instead of blocking). */
  timeoutMs?: number;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Runs `deno run <permissions> main.ts ...args` and collects exit code, stdout and stderr. */
export async function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...(options.permissions ?? ["-A"]), options.entry ?? MAIN, ...args],
    env: { NO_COLOR: "1", ...(options.env ?? {}) },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const timer = options.timeoutMs === undefined
    ? undefined
    : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  const out = await child.output().finally(() => clearTimeout(timer));
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** True when `path` exists (any kind of file). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Asserts that a failure printed exactly one stderr line, and returns it. */
export function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  if (lines.length !== 1) throw new Error(`expected one stderr line, got: ${stderr}`);
  return lines[0] ?? "";
}

/** Reads `doc.a.b...` from a parsed `--json` document without casts; undefined when absent. */
export function field(doc: unknown, ...path: string[]): unknown {
  let cur = doc;
  for (const p of path) cur = typeof cur === "object" && cur !== null ? Reflect.get(cur, p) : undefined;
  return cur;
}
