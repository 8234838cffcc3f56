// deno-lint-ignore-file no-console -- a benchmark prints its numbers
/**
 * Benchmark for issue 4: one run of `upgrade` on a 1 GiB single-layer image from a local CNCF distribution
 * registry, against the physical floor: `curl` of the layer blob plus a bare `podman load` of the same
 * image (an OCI archive of its layout), each into fresh storage. Reports seconds, the ratio to the floor
 * (target <= 1.3x) and the peak RSS of the dangerzone-image process (target <= 120 MB), sampled from
 * `/proc/<pid>/status` `VmHWM` (podman's own memory is not counted, as for the floor). Exit 1 when a
 * target is missed.
 *
 * Usage: `scripts/bench-upgrade [--size-mib 1024]`
 *
 * @module
 */
import { join } from "node:path";
import { buildLargeImage, writeLayoutTar } from "../tests/_helpers/images.ts";
import { startPodman } from "../tests/_helpers/podman.ts";
import { makeTempDir } from "../tests/_helpers/process.ts";
import { startSignedRegistry } from "../tests/update/_fixture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const REPO = "bench/large";
const i = Deno.args.indexOf("--size-mib");
const sizeMiB = i >= 0 ? Number(Deno.args[i + 1]) : 1024;
if (!Number.isInteger(sizeMiB) || sizeMiB <= 0) throw new Error("--size-mib needs a positive integer");

async function timed(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; peakKiB: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  let peakKiB = 0;
  const sampler = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
      if (m !== null) peakKiB = Math.max(peakKiB, Number(m[1]));
    } catch {
      // the process is gone
    }
  }, 25);
  const out = await child.output();
  clearInterval(sampler);
  const seconds = (performance.now() - t0) / 1000;
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return { seconds, peakKiB };
}

await using sr = await startSignedRegistry("plain");
await using tmp = makeTempDir("bench-upgrade");
console.log(`building a ${sizeMiB} MiB single-layer image and pushing it to ${sr.reg.host}/${REPO} ...`);
const big = await buildLargeImage(join(tmp.path, "layout"), { sizeMiB });
await sr.push(big, REPO, "latest");
await sr.sign(big.digest, { repository: REPO, logIndex: 1 });
const archive = join(tmp.path, "image.tar");
await writeLayoutTar(big.layoutDir, archive);
await Deno.remove(big.layoutDir, { recursive: true });
const layer = big.layerDigests[0];
if (layer === undefined) throw new Error("no layer");

// The floor: curl of the layer blob, then a bare podman load of the same image.
const curlOut = join(tmp.path, "layer.bin");
const curl = await timed("curl", ["-sSf", "-o", curlOut, `${sr.reg.url}/v2/${REPO}/blobs/${layer}`]);
await Deno.remove(curlOut);
let load: { seconds: number };
{
  await using pm = await startPodman();
  load = await timed("podman", ["load", "-q", "-i", archive], pm.env);
}
await Deno.remove(archive);
await new Deno.Command("sync").output();

// dangerzone-image upgrade, fresh storage and data dir.
let upgrade: { seconds: number; peakKiB: number };
{
  await using pm = await startPodman();
  const dataDir = join(tmp.path, "data");
  upgrade = await timed(Deno.execPath(), [
    "run",
    "-A",
    MAIN,
    "upgrade",
    ...sr.cliArgs(`${sr.reg.host}/${REPO}:latest`, dataDir),
    "--runtime",
    "podman",
  ], { ...pm.env, ...sr.env, NO_COLOR: "1" });
}

const floor = curl.seconds + load.seconds;
const ratio = upgrade.seconds / floor;
const peakMB = (upgrade.peakKiB * 1024) / 1e6;
console.log(`\nimage: ${sizeMiB} MiB, one uncompressed layer`);
console.log(`curl of the layer blob:      ${curl.seconds.toFixed(2)} s`);
console.log(`bare podman load (OCI tar):  ${load.seconds.toFixed(2)} s`);
console.log(`floor (sum):                 ${floor.toFixed(2)} s`);
console.log(
  `dangerzone-image upgrade:    ${upgrade.seconds.toFixed(2)} s  = ${
    ratio.toFixed(2)
  }x the floor (target <= 1.3x)`,
);
console.log(`peak RSS of upgrade:         ${peakMB.toFixed(1)} MB (target <= 120 MB)`);
const ok = ratio <= 1.3 && peakMB <= 120;
console.log(ok ? "targets met" : "TARGET MISSED");
if (!ok) Deno.exitCode = 1;
