/**
 * Private to `scripts/`: what the benchmarks measure a command with (wall time, and peak RSS through
 * `/usr/bin/time` when it is installed), and the median of their runs.
 *
 * @module
 */

const haveTime = await Deno.stat("/usr/bin/time").then(() => true, () => false);

/**
 * Runs `cmd` to completion (throwing with its stderr's tail on failure): stdout, seconds, peak RSS (KiB).
 * `env` is added to this process's environment.
 */
export async function timedRun(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ stdout: string; seconds: number; rssKiB?: number }> {
  const timeFile = await Deno.makeTempFile({ prefix: "dz-bench-time-" });
  try {
    const full = haveTime ? ["/usr/bin/time", "-f", "%M", "-o", timeFile, cmd, ...args] : [cmd, ...args];
    const t0 = performance.now();
    const out = await new Deno.Command(full[0] ?? cmd, {
      args: full.slice(1),
      ...(env === undefined ? {} : { env }),
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const seconds = (performance.now() - t0) / 1000;
    const dec = new TextDecoder();
    if (!out.success) throw new Error(`${cmd} failed: ${dec.decode(out.stderr).trim().slice(-2000)}`);
    const rss = haveTime ? Number((await Deno.readTextFile(timeFile)).trim().split("\n").at(-1)) : NaN;
    return { stdout: dec.decode(out.stdout), seconds, ...(Number.isFinite(rss) ? { rssKiB: rss } : {}) };
  } finally {
    await Deno.remove(timeFile).catch(() => {});
  }
}

/** The median of `xs` (NaN for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] ?? NaN : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}
