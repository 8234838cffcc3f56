/**
 * Starting on one connection and adding connections only when it is slow: the probe's verdict, and
 * both engines against the real registry (fast loopback: one stream, no ranges; through a relay that caps
 * each connection: the rest over parallel ranges, from where the single stream stopped).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseReference } from "../../src/oci/reference.ts";
import {
  DEFAULT_PARALLEL_BELOW,
  PROBE_BYTES,
  PROBE_MS,
  SpeedProbe,
} from "../../src/registry/_speed_probe.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";
import { startThrottleProxy } from "../_helpers/throttle_proxy.ts";
import {
  closedRanges,
  fileSha256,
  pushBigLayer,
  rangeClient,
  rangeFaultServer,
  streamSha256,
} from "./_ranges_fixture.ts";

const REPO = "ranges/probe";

Deno.test("SpeedProbe judges once, after PROBE_BYTES or PROBE_MS, against the rate", () => {
  let t = 5000; // the time to the first byte does not count
  const slow = new SpeedProbe(1000, () => t);
  assert.equal(slow.add(10_000_000), undefined, "the first read starts the clock, its bytes do not count");
  t += PROBE_MS - 1;
  assert.equal(slow.add(100), undefined, "too early and too few bytes");
  t += 1;
  assert.equal(slow.add(100), "slow", "200 B in 500 ms is below 1000 B/s");
  assert.equal(slow.add(10_000_000), undefined, "judged once");

  t = 0;
  const fast = new SpeedProbe(1000, () => t);
  fast.add(1);
  t = 10;
  assert.equal(fast.add(PROBE_BYTES), "fast", "2 MiB in 10 ms");
  t = 0;
  const edge = new SpeedProbe(PROBE_BYTES * 2, () => t);
  edge.add(1);
  t = 1000;
  assert.equal(edge.add(PROBE_BYTES), "slow", "half the rate asked for");
});

Deno.test("one connection first: fast stays single, capped continues over ranges (real registry)", async (t) => {
  await using reg = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("ranges-probe");
  const layer = await pushBigLayer(reg, tmp.path, REPO);
  const client = () => rangeClient({ parallelBelowRate: DEFAULT_PARALLEL_BELOW, rangeChunkSize: 512 * 1024 });

  await t.step("a fast loopback registry: one stream, no ranges (downloadBlob and getBlob)", async () => {
    const log: string[] = [];
    using c = rangeClient({
      parallelBelowRate: 1024 * 1024,
      rangeChunkSize: 512 * 1024,
      onLog: (l) => log.push(l),
    });
    const ref = parseReference(`${reg.host}/${REPO}:v1`);
    const path = join(tmp.path, "fast");
    await c.downloadBlob(ref, layer, path);
    assert.equal(await fileSha256(path), layer.digest);
    assert.equal(await streamSha256(await c.getBlob(ref, layer)), layer.digest);
    assert.deepEqual(log.filter((l) => /-> 206|parallel ranges|range requests/.test(l)), []);
    assert.ok(log.some((l) => l.includes("/blobs/")), "the log shows the blob requests");
  });

  for (const engine of ["downloadBlob", "getBlob"] as const) {
    await t.step(`${engine}: a capped connection hands over to ranges where it stopped`, async () => {
      await using fault = rangeFaultServer(reg);
      await using relay = startThrottleProxy({ target: fault.host, bytesPerSecond: 2 * 1024 * 1024 });
      using c = client();
      const ref = parseReference(`${relay.host}/${REPO}:v1`);
      const path = join(tmp.path, `slow-${engine}`);
      if (engine === "downloadBlob") {
        await c.downloadBlob(ref, layer, path);
        assert.equal(await fileSha256(path), layer.digest);
      } else {
        assert.equal(await streamSha256(await c.getBlob(ref, layer)), layer.digest);
      }
      const blobRequests = fault.requests.filter((q) => q.url.includes("/blobs/"));
      assert.equal(blobRequests[0]?.headers["range"], undefined, "it starts as one stream");
      const ranges = closedRanges(blobRequests).sort((a, b) => a[0] - b[0]);
      assert.ok(ranges.length >= 4, `then ranges: ${ranges.length}`);
      const from = ranges[0]?.[0] ?? 0;
      assert.ok(from > 0 && from < layer.size / 2, `the ranges start where the stream stopped (${from})`);
      assert.equal(ranges.reduce((n, [a, b]) => n + b - a + 1, 0), layer.size - from, "each byte once");
      assert.ok(relay.connections() >= 5, "one stream, then four connections");
    });
  }
});
