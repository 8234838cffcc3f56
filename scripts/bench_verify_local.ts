// deno-lint-ignore-file no-console -- a benchmark script prints its numbers
/**
 * Benchmark (issue 11 item 5): `verify-local` runs before every document conversion, so it must cost
 * little more than its floor: an empty `deno run` plus one `podman image inspect` of the same image.
 * Target: median verify-local <= 1.5x the median floor.
 *
 * Sets up a local registry, a signed busybox image pulled into an isolated podman and its signatures
 * stored by `store-signatures`; then runs, interleaved round by round, the floor (`deno run` of an empty
 * file, then `podman image inspect IMAGE`) and `verify-local IMAGE` from main.ts and from the bundle
 * (`scripts/bundle.ts`, as shipped). Prints the medians and the ratios, and the floor's two parts.
 *
 * Usage: bash scripts/bench-verify-local [--runs N] (default 21)
 */
import { join } from "node:path";
import { startPodman } from "../tests/_helpers/podman.ts";
import { startSignedRegistry } from "../tests/update/_fixture.ts";
import { buildBundle } from "./bundle.ts";
import { median, timedRun } from "./_timed_run.ts";

const runsArg = Deno.args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(Deno.args[runsArg + 1]) : 21;
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error("--runs needs a positive integer");
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
const REPO = "sandbox/bench-verify-local";
const DENO = Deno.execPath();

/** Runs a command to completion; returns its wall time in ms; throws on a non-zero exit. */
async function timed(cmd: string, args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, {
    args,
    env,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t0;
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

await using sr = await startSignedRegistry("plain");
await using pm = await startPodman();
const work = join(sr.dir, "bench");
await Deno.mkdir(work);
const empty = join(work, "empty.ts");
await Deno.writeTextFile(empty, "");
const bundle = await buildBundle(join(work, "dangerzone-image"));

const built = await sr.pushBusybox(REPO, "latest", "bench");
await sr.sign(built.digest, { repository: REPO, logIndex: 42 });
const image = `${sr.reg.host}/${REPO}:latest`;
await pm.podman(["pull", "-q", "--tls-verify=false", image]);
const env = { ...pm.env, ...sr.env, NO_COLOR: "1" };
const dataDir = join(work, "data");
const common = [...sr.cliArgs(image, dataDir), "--runtime", "podman"];
await timed(DENO, ["run", "-A", MAIN, "store-signatures", ...common], env);

const [loadBefore = NaN] = Deno.loadavg();
const emptyRun: number[] = [];
const inspect: number[] = [];
const floor: number[] = [];
const fromMain: number[] = [];
const fromBundle: number[] = [];
// one warm-up round (module cache, page cache), not counted
for (let round = -1; round < RUNS; round++) {
  const e = await timed(DENO, ["run", "--no-prompt", empty], env);
  const p = await timed("podman", ["image", "inspect", image], env);
  const m = await timed(DENO, ["run", "--no-prompt", "-A", MAIN, "verify-local", image, ...common], env);
  const b = await timed(DENO, ["run", "--no-prompt", "-A", bundle, "verify-local", image, ...common], env);
  if (round < 0) continue;
  emptyRun.push(e);
  inspect.push(p);
  floor.push(e + p);
  fromMain.push(m);
  fromBundle.push(b);
}

const mf = median(floor);
const line = (name: string, xs: number[]) =>
  `${name.padEnd(34)} median ${median(xs).toFixed(1).padStart(6)} ms  ratio ${(median(xs) / mf).toFixed(2)}x`;
console.log(`verify-local vs floor, ${RUNS} interleaved rounds (busybox image, podman vfs, 1 signature)`);
// the machine is shared: the 1-minute load average says how much the numbers can be trusted
console.log(
  `load average (1 min): ${loadBefore.toFixed(2)} before, ${(Deno.loadavg()[0] ?? NaN).toFixed(2)} after`,
);
console.log(
  `${"floor: empty deno run + podman image inspect".padEnd(34)} median ${mf.toFixed(1).padStart(6)} ms`,
);
console.log(
  `  of which: empty deno run ${median(emptyRun).toFixed(1)} ms, podman image inspect ${
    median(inspect).toFixed(1)
  } ms`,
);
console.log(line("verify-local (bundle, as shipped)", fromBundle));
console.log(line("verify-local (deno run main.ts)", fromMain));
// peak RSS, from one more run of each (not timed: /usr/bin/time adds its own start-up)
const rss = async (cmd: string, args: string[]) => ((await timedRun(cmd, args, env)).rssKiB ?? NaN) / 1024;
console.log(
  `peak RSS: verify-local (bundle) ${
    (await rss(DENO, ["run", "--no-prompt", "-A", bundle, "verify-local", image, ...common])).toFixed(1)
  } MiB, empty deno run ${(await rss(DENO, ["run", "--no-prompt", empty])).toFixed(1)} MiB`,
);
const ok = median(fromBundle) / mf <= 1.5;
console.log(`target <= 1.50x (bundle): ${ok ? "OK" : "TOO SLOW"}`);
if (!ok) Deno.exitCode = 1;
