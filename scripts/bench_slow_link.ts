// deno-lint-ignore-file no-console -- a benchmark prints its numbers
/**
 * Benchmark for issue 11: a slow link where each TCP connection is capped (a CDN's per-connection cap,
 * one Tor circuit), simulated by `tests/_helpers/throttle_proxy.ts` (a relay on loopback capping each
 * connection at `--rate-mib` MiB/s, default 8) in front of a local CNCF distribution registry holding a
 * signed single-layer image of `--size-mib` MiB (default 128). Every client goes through the relay:
 *
 * - `curl` of the layer blob (one connection: the single-stream time);
 * - `prepare-archive` (target: at most 0.35x the curl), also once with `--connections 1` for reference;
 * - `skopeo copy docker://… containers-storage:…` into a fresh podman storage, the end state of `upgrade`;
 * - `upgrade` into another fresh podman storage (target: faster than skopeo).
 *
 * Peak RSS (`/usr/bin/time -f %M`) of each dangerzone-image process: target <= 120 MB. With `--runs N`
 * (default 3) everything is measured N times, interleaved, and medians are reported. Exit 1 when a target
 * is missed.
 *
 * Usage: `scripts/bench-slow-link [--size-mib 128] [--rate-mib 8] [--runs 3] [--connections 4]`
 *
 * @module
 */
import { join } from "node:path";
import { buildLargeImage } from "../tests/_helpers/images.ts";
import { startPodman } from "../tests/_helpers/podman.ts";
import { makeTempDir } from "../tests/_helpers/process.ts";
import { startThrottleProxy } from "../tests/_helpers/throttle_proxy.ts";
import { startSignedRegistry } from "../tests/update/_fixture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const REPO = "bench/slow";
const MIB = 1024 * 1024;

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`);
  return v;
}
const sizeMiB = flag("--size-mib", 128);
const rateMiB = flag("--rate-mib", 8);
const runs = flag("--runs", 3);
const connections = flag("--connections", 4);

/** Runs a command under `/usr/bin/time`: wall seconds and peak RSS in MB. */
async function timed(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; rssMB: number }> {
  const timeFile = await Deno.makeTempFile({ prefix: "dz-bench-time-" });
  try {
    const t0 = performance.now();
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%M", "-o", timeFile, cmd, ...args],
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    if (!out.success) {
      throw new Error(
        `${cmd} ${args.slice(0, 5).join(" ")} failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
      );
    }
    const kib = Number((await Deno.readTextFile(timeFile)).trim().split("\n").at(-1));
    return { seconds, rssMB: (kib * 1024) / 1e6 };
  } finally {
    await Deno.remove(timeFile).catch(() => {});
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

console.log(`load before: ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
await using sr = await startSignedRegistry("plain");
await using tmp = makeTempDir("bench-slow-link");
await using relay = startThrottleProxy({ target: sr.reg.host, bytesPerSecond: rateMiB * MIB });
const image = `${relay.host}/${REPO}:latest`;
console.log(
  `building a ${sizeMiB} MiB single-layer image; relay ${relay.host} caps each connection at ${rateMiB} MiB/s`,
);
const big = await buildLargeImage(join(tmp.path, "layout"), { sizeMiB });
await sr.push(big, REPO, "latest");
await sr.sign(big.digest, { repository: REPO, reference: `${relay.host}/${REPO}`, logIndex: 1 });
await Deno.remove(big.layoutDir, { recursive: true });
const layer = big.layerDigests[0];
if (layer === undefined) throw new Error("no layer");
const cli = (command: string, dataDir: string, extra: string[] = []) => [
  "run",
  "-A",
  "--quiet",
  MAIN,
  command,
  ...extra,
  ...sr.cliArgs(image, dataDir),
  "--connections",
  String(connections),
];

interface Run {
  curl: number;
  prepare: number;
  prepareRss: number;
  skopeo: number;
  upgrade: number;
  upgradeRss: number;
}
const results: Run[] = [];
let prepareOne = { seconds: NaN, rssMB: NaN };
for (let run = 1; run <= runs; run++) {
  const curlOut = join(tmp.path, "layer.bin");
  const curl = await timed("curl", ["-sSf", "-o", curlOut, `http://${relay.host}/v2/${REPO}/blobs/${layer}`]);
  await Deno.remove(curlOut);
  const archive = join(tmp.path, "dz.tar");
  const prepare = await timed(
    Deno.execPath(),
    cli("prepare-archive", join(tmp.path, `data-p${run}`), ["--arch", "amd64", "--output", archive]),
    sr.env,
  );
  await Deno.remove(archive);
  await Deno.remove(join(tmp.path, `data-p${run}`), { recursive: true }).catch(() => {});
  let skopeo: { seconds: number };
  {
    await using pm = await startPodman();
    skopeo = await timed("skopeo", [
      "copy",
      "-q",
      "--src-tls-verify=false",
      `docker://${image}`,
      `containers-storage:localhost/bench/slow:latest`,
    ], pm.env);
  }
  let upgrade: { seconds: number; rssMB: number };
  {
    await using pm = await startPodman();
    upgrade = await timed(Deno.execPath(), [
      ...cli("upgrade", join(tmp.path, `data-u${run}`)),
      "--runtime",
      "podman",
    ], {
      ...sr.env,
      ...pm.env,
    });
    await Deno.remove(join(tmp.path, `data-u${run}`), { recursive: true }).catch(() => {});
  }
  if (run === 1) {
    const one = await timed(
      Deno.execPath(),
      [
        ...cli("prepare-archive", join(tmp.path, "data-one"), ["--arch", "amd64", "--output", archive]),
        "--connections",
        "1",
      ],
      sr.env,
    );
    prepareOne = one;
    await Deno.remove(archive);
    await Deno.remove(join(tmp.path, "data-one"), { recursive: true }).catch(() => {});
  }
  const r: Run = {
    curl: curl.seconds,
    prepare: prepare.seconds,
    prepareRss: prepare.rssMB,
    skopeo: skopeo.seconds,
    upgrade: upgrade.seconds,
    upgradeRss: upgrade.rssMB,
  };
  results.push(r);
  console.log(
    `  run ${run}: curl ${r.curl.toFixed(2)} s; prepare-archive ${r.prepare.toFixed(2)} s (${
      (r.prepare / r.curl).toFixed(2)
    }x, ${r.prepareRss.toFixed(1)} MB); skopeo copy ${r.skopeo.toFixed(2)} s; upgrade ${
      r.upgrade.toFixed(2)
    } s (${r.upgradeRss.toFixed(1)} MB)`,
  );
}
const curl = median(results.map((r) => r.curl));
const prepare = median(results.map((r) => r.prepare));
const skopeo = median(results.map((r) => r.skopeo));
const upgrade = median(results.map((r) => r.upgrade));
const peak = Math.max(...results.flatMap((r) => [r.prepareRss, r.upgradeRss]));
console.log(
  `\nimage ${sizeMiB} MiB, one layer; each connection capped at ${rateMiB} MiB/s; ${connections} connections; medians of ${runs}`,
);
console.log(`curl of the layer blob (one connection):   ${curl.toFixed(2)} s`);
console.log(
  `prepare-archive:                           ${prepare.toFixed(2)} s = ${
    (prepare / curl).toFixed(2)
  }x curl (target <= 0.35x)`,
);
console.log(
  `prepare-archive --connections 1 (run 1):   ${prepareOne.seconds.toFixed(2)} s (peak RSS ${
    prepareOne.rssMB.toFixed(1)
  } MB)`,
);
console.log(`skopeo copy into podman storage:           ${skopeo.toFixed(2)} s`);
console.log(
  `upgrade into podman:                       ${upgrade.toFixed(2)} s = ${
    (upgrade / skopeo).toFixed(2)
  }x skopeo (target < 1)`,
);
console.log(`peak RSS of dangerzone-image:              ${peak.toFixed(1)} MB (target <= 120 MB)`);
console.log(`load after: ${(await Deno.readTextFile("/proc/loadavg")).trim()}`);
const ok = prepare <= 0.35 * curl && upgrade < skopeo && peak <= 120;
console.log(ok ? "targets met" : "TARGET MISSED");
if (!ok) Deno.exitCode = 1;
