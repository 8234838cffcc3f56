// deno-lint-ignore-file no-console -- a demo script talks to the person watching it
/**
 * The README's first command (`bash scripts/demo`): dangerzone-image's main job, end to end, offline.
 *
 * It starts a local registry (CNCF distribution), builds a small sandbox image and pushes it, signs it the
 * way `cosign sign --key` with a Rekor upload does (a demo publisher key and a demo transparency-log key),
 * then runs `upgrade`, `verify-local` and `check`; publishes a newer signed image and runs `check` and
 * `upgrade` again. podman storage and the data directory are temporary; everything is stopped and removed
 * on any exit (also Ctrl-C).
 *
 * @module
 */
import { join } from "node:path";
import { type RunningPodman, startPodman } from "../tests/_helpers/podman.ts";
import { makeTempDir, type TempDir } from "../tests/_helpers/process.ts";
import { type SignedRegistry, startSignedRegistry } from "../tests/update/_fixture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const REPO = "dangerzone/sandbox";
const color = Deno.stdout.isTerminal() && Deno.env.get("NO_COLOR") === undefined;
const bold = (s: string) => color ? `\x1b[1m${s}\x1b[0m` : s;
const dim = (s: string) => color ? `\x1b[2m${s}\x1b[0m` : s;
const green = (s: string) => color ? `\x1b[32m${s}\x1b[0m` : s;
const yellow = (s: string) => color ? `\x1b[33m${s}\x1b[0m` : s;

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err) => console.error(`cleanup: ${err}`));
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    cleanup().finally(() => Deno.exit(130));
  });
}

function section(title: string): void {
  console.log(`\n${bold(`━━ ${title} `)}${bold("━".repeat(Math.max(0, 70 - title.length)))}`);
}

function say(text: string): void {
  console.log(dim(`   ${text}`));
}

/** Runs the CLI, printing the command (with short paths) and its output, indented. */
async function dz(
  args: string[],
  env: Record<string, string>,
  shorten: (s: string) => string,
): Promise<number> {
  console.log(`\n${green("$")} ${bold(`dangerzone-image ${args.map(shorten).join(" ")}`)}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr)).trimEnd();
  for (const line of text.split("\n")) if (line !== "") console.log(`  │ ${shorten(line)}`);
  const meaning = out.code === 0 ? "ok" : out.code === 3 ? "update available" : "failure";
  console.log((out.code === 0 || out.code === 3 ? green : yellow)(`  └ exit ${out.code} (${meaning})`));
  return out.code;
}

function expect(code: number, wanted: number, what: string): void {
  if (code !== wanted) throw new Error(`${what}: expected exit ${wanted}, got ${code}`);
}

async function main(): Promise<void> {
  section("Setting up: a local registry, an isolated podman, a temporary data directory");
  const sr: SignedRegistry = await startSignedRegistry("plain");
  cleanups.push(async () => await sr[Symbol.asyncDispose]());
  const pm: RunningPodman = await startPodman();
  cleanups.push(() => pm.stop());
  const data: TempDir = makeTempDir("demo-data");
  cleanups.push(() => data.remove());
  const dataDir = join(data.path, "dangerzone");
  const image = `${sr.reg.host}/${REPO}:latest`;
  const shorten = (s: string) => s.replaceAll(sr.dir, "$DEMO").replaceAll(data.path, "$TMP");
  say(`registry: docker-registry (CNCF distribution) at http://${sr.reg.host}`);
  say(`podman storage: ${pm.dir} (isolated; your images are not touched)`);
  say(`publisher key: ${shorten(sr.pubkeyFile)}, transparency-log key: ${shorten(sr.rekorKeyFile)}`);
  say(`data directory: ${shorten(dataDir)}`);
  const env = { ...pm.env, ...sr.env };
  const common = [...sr.cliArgs(image, dataDir), "--runtime", "podman"];

  section("Publishing sandbox v1: build, push, sign (cosign format, Rekor entry at log index 1000)");
  const v1 = await sr.pushBusybox(REPO, "latest", "hello from sandbox v1");
  await sr.sign(v1.digest, { repository: REPO, logIndex: 1000 });
  say(`pushed ${image} = ${v1.digest}`);
  say(`signed it: ${sr.reg.host}/${REPO}:${v1.digest.replace(":", "-")}.sig`);

  section("1. upgrade: resolve, verify signatures, download blob by blob, load, confirm the digest, store");
  expect(await dz(["upgrade", ...common], env, shorten), 0, "upgrade");

  section("2. verify-local: the image podman holds has stored signatures that verify");
  expect(await dz(["verify-local", ...common], env, shorten), 0, "verify-local");

  section("3. check: is a newer signed image available? (exit 0: no)");
  expect(await dz(["check", ...common], env, shorten), 0, "check");

  section("Publishing sandbox v2 (log index 1001)");
  const v2 = await sr.pushBusybox(REPO, "latest", "hello from sandbox v2");
  await sr.sign(v2.digest, { repository: REPO, logIndex: 1001 });
  say(`pushed ${image} = ${v2.digest}`);

  section("4. check again (exit 3: an update is available)");
  expect(await dz(["check", ...common], env, shorten), 3, "check");

  section("5. upgrade again, removing the old image (--prune)");
  expect(await dz(["upgrade", ...common, "--prune"], env, shorten), 0, "upgrade");
  expect(await dz(["verify-local", ...common], env, shorten), 0, "verify-local");

  section("6. the sandbox runs the verified image");
  const run = await pm.podman(["run", "--rm", image], { check: false });
  console.log(`\n${green("$")} ${bold(`podman run --rm ${image}`)}`);
  console.log(`  │ ${(run.stdout + run.stderr).trim()}`);

  section("Done: everything the demo started is being stopped and removed");
}

try {
  await main();
} finally {
  await cleanup();
}
console.log(green("\nThe demo finished; nothing is left running."));
