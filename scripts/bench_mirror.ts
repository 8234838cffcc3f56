/**
 * Benchmark for issue 10: `dangerzone-image mirror` of a single-layer image (256 MiB and 1 GiB) from one
 * local CNCF distribution registry to another (plain HTTP on loopback), against
 * `skopeo copy docker://... docker://...` between the same two registries in the same run, and a bare
 * `curl | curl -T -` of the layer blob (the floor the registries' own hashing and writing set). Every
 * measurement pushes into a freshly started destination registry, so no tool finds a blob there. Then a
 * second `mirror` into the same destination (nothing to copy) is timed.
 *
 * Prints seconds for each (median of N runs), mirror/skopeo and curl/skopeo ratios, the mirror's peak
 * RSS, and exits 1 when a target is missed (mirror <= 0.75x skopeo's time, peak RSS <= 120 MB, second
 * run < 1 s).
 *
 * Usage: `scripts/bench-mirror [--sizes 256,1024] [--runs 1]`
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { join } from "node:path";
import { buildLargeImage, pushImage } from "../tests/_helpers/images.ts";
import { makeTempDir } from "../tests/_helpers/process.ts";
import { type RunningRegistry, startRegistry } from "../tests/_helpers/registry.ts";
import { median, timedRun } from "./_timed_run.ts";
import { startSignedRegistry } from "../tests/update/_fixture.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TOOLS = ["mirror", "skopeo", "curl"] as const;
type Tool = typeof TOOLS[number];

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] ?? fallback : fallback;
}

const sizes = flag("--sizes", "256,1024").split(",").map(Number);
const runs = Number(flag("--runs", "1"));
if (sizes.some((s) => !Number.isInteger(s) || s <= 0) || !Number.isInteger(runs) || runs <= 0) {
  throw new Error("--sizes needs positive integers (MiB), --runs a positive integer");
}

/** `curl | curl -T -`: the blob streamed from the source into one upload session of the destination. */
function curlPipe(srcUrl: string, dst: RunningRegistry, digest: string): string[] {
  const script = `set -euo pipefail
loc=$(curl -sS -f -X POST -o /dev/null -D - "${dst.url}/v2/bench/curl/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
case "$loc" in http*) ;; *) loc="${dst.url}$loc" ;; esac
sep='?'; case "$loc" in *\\?*) sep='&' ;; esac
curl -sS -f "${srcUrl}" | curl -sS -f -X PUT -H 'Content-Type: application/octet-stream' -T - "$loc\${sep}digest=${digest}" -o /dev/null`;
  return ["-c", script];
}

await using dir = makeTempDir("bench-mirror");
await using sr = await startSignedRegistry("plain");
const results: Record<number, Record<Tool, number[]> & { rssKiB: number[]; second: number[] }> = {};
let failed = false;
for (const sizeMiB of sizes) {
  const repo = `bench/large-${sizeMiB}`;
  console.log(`building a ${sizeMiB} MiB single-layer image, pushing and signing it in ${sr.reg.url} ...`);
  const layout = join(dir.path, `layout-${sizeMiB}`);
  const img = await buildLargeImage(layout, { sizeMiB });
  await pushImage(img, sr.reg, { repository: repo, tag: "v1" });
  await sr.sign(img.digest, { repository: repo, logIndex: sizeMiB });
  await Deno.remove(layout, { recursive: true });
  const layer = img.layerDigests[0];
  if (layer === undefined) throw new Error("the image has no layer");
  const r = { mirror: [], skopeo: [], curl: [], rssKiB: [], second: [] } as Record<Tool, number[]> & {
    rssKiB: number[];
    second: number[];
  };
  results[sizeMiB] = r;
  for (let n = 0; n < runs; n++) {
    const order = TOOLS.map((_, i) => TOOLS[(i + n) % TOOLS.length]).filter((t): t is Tool =>
      t !== undefined
    );
    for (const tool of order) {
      await using dst = await startRegistry({ mode: "plain" });
      await timedRun("sync", []);
      if (tool === "mirror") {
        const args = [
          "run",
          "-A",
          "--quiet",
          MAIN,
          "mirror",
          ...sr.cliArgs(`${sr.reg.host}/${repo}:v1`, join(dir.path, `data-${sizeMiB}-${n}`)),
          "--to",
          `${dst.host}/mirror/dz`,
        ];
        const first = await timedRun(Deno.execPath(), args);
        r.mirror.push(first.seconds);
        if (first.rssKiB !== undefined) r.rssKiB.push(first.rssKiB);
        const second = await timedRun(Deno.execPath(), args);
        if (!/ 0 bytes copied/.test(second.stdout)) throw new Error(`second run copied: ${second.stdout}`);
        r.second.push(second.seconds);
        console.log(
          `  ${sizeMiB} MiB run ${n + 1} mirror  ${first.seconds.toFixed(2)} s, peak RSS ${
            ((first.rssKiB ?? NaN) / 1024).toFixed(0)
          } MiB; second run ${second.seconds.toFixed(2)} s`,
        );
      } else if (tool === "skopeo") {
        const res = await timedRun("skopeo", [
          "copy",
          "-q",
          "--src-tls-verify=false",
          "--dest-tls-verify=false",
          `docker://${sr.reg.host}/${repo}:v1`,
          `docker://${dst.host}/skopeo/dz:v1`,
        ]);
        r.skopeo.push(res.seconds);
        console.log(`  ${sizeMiB} MiB run ${n + 1} skopeo  ${res.seconds.toFixed(2)} s`);
      } else {
        const res = await timedRun("bash", curlPipe(`${sr.reg.url}/v2/${repo}/blobs/${layer}`, dst, layer));
        r.curl.push(res.seconds);
        console.log(`  ${sizeMiB} MiB run ${n + 1} curl    ${res.seconds.toFixed(2)} s`);
      }
    }
  }
}

console.log(`\nmedian of ${runs} run(s), registry to registry over loopback (plain HTTP), 2 shared cores:`);
console.log("  size      mirror   skopeo   curl|curl  mirror/skopeo  curl/skopeo  peak RSS  second run");
for (const sizeMiB of sizes) {
  const r = results[sizeMiB];
  if (r === undefined) continue;
  const m = median(r.mirror);
  const s = median(r.skopeo);
  const c = median(r.curl);
  const rssMB = Math.max(...r.rssKiB) * 1024 / 1e6;
  const second = Math.max(...r.second);
  console.log(
    `  ${String(sizeMiB).padStart(4)} MiB ${m.toFixed(2).padStart(7)} s ${s.toFixed(2).padStart(6)} s ${
      c.toFixed(2).padStart(8)
    } s ${(m / s).toFixed(2).padStart(10)}x ${(c / s).toFixed(2).padStart(11)}x ${
      rssMB.toFixed(0).padStart(6)
    } MB ${second.toFixed(2).padStart(8)} s`,
  );
  if (m / s > 0.75 || rssMB > 120 || second >= 1) failed = true;
}
console.log(
  `targets: mirror <= 0.75x skopeo's time, peak RSS <= 120 MB, second run < 1 s: ${
    failed ? "MISSED" : "met"
  }`,
);
if (failed) Deno.exitCode = 1;
