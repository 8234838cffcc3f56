/**
 * Benchmark for issue 5, in one run: a single-layer image (default 1 GiB) in a local CNCF distribution
 * registry, signed with the test signer.
 *
 * - `prepare-archive` (the CLI, a fresh process) against `curl -o` of the same layer blob (the floor;
 *   target: within 1.5x) and against `skopeo copy docker://... oci-archive:...`;
 * - `load-archive` into a fresh podman storage against a bare `podman load -i` of the same archive into
 *   another fresh storage (target: the difference is at most 1.5x `openssl dgst -sha256` of the archive);
 * - peak RSS (`/usr/bin/time -f %M`) of both commands, for the main size and for `--big-mib` (default
 *   4096; 0 skips it). Target: <= 120 MB.
 *
 * Usage: `scripts/bench-archive [--size-mib 1024] [--big-mib 4096]`. Exits 1 when a target is missed.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { join } from "node:path";
import { buildLargeImage } from "../tests/_helpers/images.ts";
import { startPodman } from "../tests/_helpers/podman.ts";
import { makeTempDir } from "../tests/_helpers/process.ts";
import { startSignedRegistry } from "../tests/update/_fixture.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
  return v;
}

const sizeMiB = flag("--size-mib", 1024);
const bigMiB = flag("--big-mib", 4096);
const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; rssMB: number; stdout: string }> {
  const timeFile = await Deno.makeTempFile({ prefix: "dz-bench-time-" });
  try {
    const t0 = performance.now();
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M", "-o", timeFile, cmd, ...args],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    const dec = new TextDecoder();
    if (!out.success) {
      throw new Error(`${cmd} ${args[0] ?? ""} failed: ${dec.decode(out.stderr).trim().slice(-2000)}`);
    }
    const kib = Number((await Deno.readTextFile(timeFile)).trim().split("\n").at(-1));
    return { seconds, rssMB: (kib * 1024) / 1e6, stdout: dec.decode(out.stdout) };
  } finally {
    await Deno.remove(timeFile).catch(() => {});
  }
}

interface Result {
  sizeMiB: number;
  prepare: { seconds: number; rssMB: number };
  curl: number;
  skopeo: number | null;
  load: { seconds: number; rssMB: number };
  podmanLoad: number;
  openssl: number;
}

async function measure(mib: number, withBaselines: boolean): Promise<Result> {
  await using dir = makeTempDir(`bench-archive-${mib}`);
  await using sr = await startSignedRegistry("plain");
  console.log(`building a ${mib} MiB single-layer image, pushing and signing it ...`);
  const img = await buildLargeImage(join(dir.path, "layout"), { sizeMiB: mib });
  await sr.push(img, "bench/large", "v1");
  await sr.sign(img.digest, { repository: "bench/large", logIndex: 1 });
  await Deno.remove(join(dir.path, "layout"), { recursive: true });
  const image = `${sr.reg.host}/bench/large:v1`;
  const layer = img.layerDigests[0] ?? "";
  const archive = join(dir.path, "dz.tar");
  const cli = () => ["run", "-A", "--quiet", MAIN];
  await run("sync", []);
  const prepare = await run(Deno.execPath(), [
    ...cli(),
    "prepare-archive",
    "--arch",
    "amd64",
    "--output",
    archive,
    ...sr.cliArgs(image, join(dir.path, "data-p")),
  ], sr.env);
  let curl = NaN;
  let skopeo: number | null = null;
  if (withBaselines) {
    await run("sync", []);
    curl = (await run("curl", [
      "-sf",
      "-o",
      join(dir.path, "curl.blob"),
      `${sr.reg.url}/v2/bench/large/blobs/${layer}`,
    ]))
      .seconds;
    await Deno.remove(join(dir.path, "curl.blob"));
    await run("sync", []);
    skopeo = (await run("skopeo", [
      "copy",
      "--src-tls-verify=false",
      `docker://${image}`,
      `oci-archive:${join(dir.path, "skopeo.tar")}`,
    ])).seconds;
    await Deno.remove(join(dir.path, "skopeo.tar"));
  }
  await run("sync", []);
  const openssl = (await run("openssl", ["dgst", "-sha256", archive])).seconds;
  let podmanLoad = NaN;
  {
    await using pm = await startPodman();
    podmanLoad = (await run("podman", ["load", "-q", "-i", archive], pm.env)).seconds;
  }
  await using pm = await startPodman();
  await run("sync", []);
  const load = await run(Deno.execPath(), [
    ...cli(),
    "load-archive",
    archive,
    ...sr.cliArgs(image, join(dir.path, "data-l")),
  ], { ...sr.env, ...pm.env });
  return {
    sizeMiB: mib,
    prepare: { seconds: prepare.seconds, rssMB: prepare.rssMB },
    curl,
    skopeo,
    load: { seconds: load.seconds, rssMB: load.rssMB },
    podmanLoad,
    openssl,
  };
}

const f = (x: number) => x.toFixed(2);
const results: Result[] = [await measure(sizeMiB, true)];
if (bigMiB > 0) results.push(await measure(bigMiB, false));
let ok = true;
for (const r of results) {
  console.log(`\n== ${r.sizeMiB} MiB`);
  console.log(
    `prepare-archive ${f(r.prepare.seconds)} s (peak RSS ${f(r.prepare.rssMB)} MB)` +
      (Number.isNaN(r.curl)
        ? ""
        : `; curl ${f(r.curl)} s (ratio ${f(r.prepare.seconds / r.curl)}, target <= 1.5)`) +
      (r.skopeo === null ? "" : `; skopeo copy ${f(r.skopeo)} s`),
  );
  const diff = r.load.seconds - r.podmanLoad;
  console.log(
    `load-archive ${f(r.load.seconds)} s (peak RSS ${f(r.load.rssMB)} MB); podman load ${
      f(r.podmanLoad)
    } s; ` +
      `difference ${f(diff)} s = ${f(diff / r.openssl)}x openssl dgst -sha256 (${
        f(r.openssl)
      } s; target <= 1.5)`,
  );
  if (r.prepare.rssMB > 120 || r.load.rssMB > 120) ok = false;
  if (!Number.isNaN(r.curl) && r.prepare.seconds > 1.5 * r.curl) ok = false;
  if (diff > 1.5 * r.openssl) ok = false;
}
console.log(JSON.stringify(results));
if (!ok) {
  console.log("a target was missed");
  Deno.exit(1);
}
