/**
 * Benchmark for issue 2: download one 1 GiB single-layer blob from a local CNCF distribution registry
 * (plain HTTP on loopback) with dangerzone-image's registry client, with `curl -o` and with
 * `skopeo copy`, in the same run, each cold on a fresh destination; median of N runs each.
 * Prints MB/s (10^6 bytes per second) for each, the client/curl ratio and the client's peak RSS, and
 * exits 1 when a target of the issue is missed (client >= 0.9x curl, peak RSS <= 120 MB).
 *
 * The page cache cannot be dropped without privileges: the registry's copy of the blob stays cached
 * (the same for all three tools); the destination files are deleted and `sync` runs between runs.
 *
 * Usage: `scripts/bench-pull [--size-mib 1024] [--runs 3]`
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { join } from "node:path";
import { buildLargeImage, pushImage } from "../tests/_helpers/images.ts";
import { makeTempDir } from "../tests/_helpers/process.ts";
import { startRegistry } from "../tests/_helpers/registry.ts";
import { median, timedRun } from "./_timed_run.ts";

interface Sample {
  seconds: number;
  processSeconds: number;
  peakRssKiB: number | undefined;
}

const TOOLS = ["dangerzone-image", "curl", "skopeo"] as const;
type Tool = typeof TOOLS[number];

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`);
  return v;
}

const sizeMiB = flag("--size-mib", 1024);
const runs = flag("--runs", 3);
const clientScript = new URL("./bench_pull_client.ts", import.meta.url).pathname;

await using dir = makeTempDir("bench-pull");
await using reg = await startRegistry({ mode: "plain" });
const stopOnSignal = () => {
  void Promise.allSettled([reg.stop(), dir.remove()]).then(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", stopOnSignal);
Deno.addSignalListener("SIGTERM", stopOnSignal);
try {
  console.log(`building a ${sizeMiB} MiB single-layer image and pushing it to ${reg.url} ...`);
  const layout = join(dir.path, "layout");
  const img = await buildLargeImage(layout, { sizeMiB });
  await pushImage(img, reg, { repository: "bench/large", tag: "v1" });
  const layer = img.layerDigests[0];
  if (layer === undefined) throw new Error("the image has no layer");
  const size = (await Deno.stat(join(layout, "blobs", "sha256", layer.slice("sha256:".length)))).size;
  await Deno.remove(layout, { recursive: true });
  const blobUrl = `${reg.url}/v2/bench/large/blobs/${layer}`;
  console.log(`blob ${layer.slice(0, 19)}… ${size} bytes; ${runs} runs per tool`);

  const samples: Record<Tool, Sample[]> = { "dangerzone-image": [], curl: [], skopeo: [] };
  for (let r = 0; r < runs; r++) {
    // rotate the order so that no tool always runs first
    const order = TOOLS.map((_, i) => TOOLS[(i + r) % TOOLS.length]).filter((t): t is Tool =>
      t !== undefined
    );
    for (const tool of order) {
      const dest = join(dir.path, `dest-${tool}`);
      await Deno.remove(dest, { recursive: true }).catch(() => {});
      await timedRun("sync", []);
      let sample: Sample;
      if (tool === "dangerzone-image") {
        const res = await timedRun(Deno.execPath(), [
          "run",
          "-A",
          "--quiet",
          clientScript,
          `${reg.host}/bench/large@${layer}`,
          String(size),
          dest,
        ]);
        const untrusted: unknown = JSON.parse(res.stdout.trim().split("\n").at(-1) ?? "");
        if (
          typeof untrusted !== "object" || untrusted === null || !("seconds" in untrusted) ||
          !("bytes" in untrusted) || !("peakRssKiB" in untrusted)
        ) {
          throw new Error(`unexpected client output: ${res.stdout}`);
        }
        if (untrusted.bytes !== size) throw new Error(`client wrote ${String(untrusted.bytes)} bytes`);
        sample = {
          seconds: Number(untrusted.seconds),
          processSeconds: res.seconds,
          peakRssKiB: Number(untrusted.peakRssKiB),
        };
      } else if (tool === "curl") {
        const res = await timedRun("curl", [
          "-sS",
          "-f",
          "-L",
          "-o",
          dest,
          "-w",
          "%{time_total} %{size_download}",
          blobUrl,
        ]);
        const [t, n] = res.stdout.trim().split(" ");
        if (Number(n) !== size) throw new Error(`curl downloaded ${n} bytes`);
        sample = { seconds: Number(t), processSeconds: res.seconds, peakRssKiB: res.rssKiB };
      } else {
        const res = await timedRun("skopeo", [
          "copy",
          "-q",
          "--src-tls-verify=false",
          `docker://${reg.host}/bench/large:v1`,
          `oci:${dest}:v1`,
        ]);
        sample = { seconds: res.seconds, processSeconds: res.seconds, peakRssKiB: res.rssKiB };
      }
      samples[tool].push(sample);
      console.log(
        `  run ${r + 1} ${tool.padEnd(16)} ${(size / 1e6 / sample.seconds).toFixed(0).padStart(5)} MB/s` +
          `  (${sample.seconds.toFixed(2)} s${
            sample.peakRssKiB === undefined ? "" : `, peak RSS ${(sample.peakRssKiB / 1024).toFixed(0)} MiB`
          })`,
      );
      await Deno.remove(dest, { recursive: true }).catch(() => {});
    }
  }

  const mbps = (tool: Tool) => size / 1e6 / median(samples[tool].map((s) => s.seconds));
  const rss = (tool: Tool) => median(samples[tool].map((s) => s.peakRssKiB ?? NaN)) / 1024;
  const ours = mbps("dangerzone-image");
  const curl = mbps("curl");
  const ratio = ours / curl;
  const ourRssMB = Math.max(...samples["dangerzone-image"].map((s) => s.peakRssKiB ?? Infinity)) * 1024 / 1e6;
  console.log(
    `\nmedian of ${runs} runs, ${
      (size / 2 ** 20).toFixed(0)
    } MiB blob over loopback (plain HTTP), page cache not dropped:`,
  );
  for (const tool of TOOLS) {
    console.log(
      `  ${tool.padEnd(16)} ${mbps(tool).toFixed(0).padStart(5)} MB/s   ${
        (mbps(tool) / curl).toFixed(2)
      }x curl   peak RSS ${rss(tool).toFixed(0)} MiB`,
    );
  }
  const okSpeed = ratio >= 0.9;
  const okRss = ourRssMB <= 120;
  console.log(
    `dangerzone-image: ${ratio.toFixed(2)}x curl (target >= 0.90: ${okSpeed ? "met" : "MISSED"}), ` +
      `peak RSS ${ourRssMB.toFixed(0)} MB (worst run; target <= 120 MB: ${okRss ? "met" : "MISSED"})`,
  );
  if (!okSpeed || !okRss) Deno.exitCode = 1;
} finally {
  Deno.removeSignalListener("SIGINT", stopOnSignal);
  Deno.removeSignalListener("SIGTERM", stopOnSignal);
}
