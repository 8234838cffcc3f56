/**
 * One cold blob download with dangerzone-image's {@linkcode RegistryClient}, run as its own process by
 * `scripts/bench_pull.ts` so that its peak RSS can be measured. Prints one JSON line on stdout:
 * `{"bytes", "seconds", "peakRssKiB"}` (seconds cover `downloadBlob` only; peak RSS is VmHWM).
 *
 * Usage: `deno run -A scripts/bench_pull_client.ts HOST/REPO@sha256:LAYER SIZE DEST`
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { parseDigest } from "../src/oci/digest.ts";
import { parseReference } from "../src/oci/reference.ts";
import { RegistryClient } from "../src/registry/client.ts";

const [refText, sizeText, dest] = Deno.args;
if (refText === undefined || sizeText === undefined || dest === undefined) {
  console.error("usage: bench_pull_client.ts HOST/REPO@sha256:LAYER SIZE DEST");
  Deno.exit(2);
}
const ref = parseReference(refText);
const digest = parseDigest(ref.digest ?? "");
const size = Number(sizeText);
using client = new RegistryClient({ env: {}, osReleasePath: "/nonexistent" });
const t0 = performance.now();
await client.downloadBlob(ref, { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size }, dest);
const seconds = (performance.now() - t0) / 1000;
const status = await Deno.readTextFile("/proc/self/status");
const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
console.log(JSON.stringify({ bytes: (await Deno.stat(dest)).size, seconds, peakRssKiB: Number(hwm ?? NaN) }));
