/**
 * Parallel ranges delivered as one in-order stream (`getBlob`, used by `prepare-archive`), against the
 * REAL registry: exact bytes over separate connections, memory bounded by N chunks when the first
 * chunk is slow, fallbacks (first range not served: one stream; a later one: continue on one
 * connection), a drop mid-range, and a wrong digest that errors the stream.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DangerzoneError } from "../../src/errors.ts";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { isSelfVerifying } from "../../src/oci/verify_stream.ts";
import { openRangeStream } from "../../src/registry/parallel_stream.ts";
import { type BlobReader, Transport } from "../../src/registry/transport.ts";
import type { FaultServer } from "../_helpers/fault_server.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";
import { startThrottleProxy } from "../_helpers/throttle_proxy.ts";
import {
  closedRanges,
  pushBigLayer,
  rangeClient,
  rangeFaultServer,
  streamSha256,
} from "./_ranges_fixture.ts";

const REPO = "ranges/stream";
const CHUNK = 256 * 1024;

async function readerSha256(reader: BlobReader): Promise<string> {
  const hash = createHash("sha256");
  let buffer = new ArrayBuffer(300_000); // not a multiple of the pieces: reads split them
  for (;;) {
    const { bytes, done } = await reader.read(new Uint8Array(buffer));
    if (done) break;
    hash.update(bytes);
    buffer = bytes.buffer;
  }
  return `sha256:${hash.digest("hex")}`;
}

Deno.test("parallel ranges as one in-order stream against the real registry", async (t) => {
  await using reg = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("ranges-stream");
  const layer = await pushBigLayer(reg, tmp.path, REPO);
  const { digest, size } = layer;
  /** The range stream of the layer through `fault`, over 4 connections of CHUNK bytes. */
  const openThrough = async (fault: FaultServer, transport: Transport) => {
    const request = { registry: fault.host, path: `/v2/${REPO}/blobs/${digest}` };
    const ranged = await openRangeStream(transport, { request, descriptor: layer }, {
      connections: 4,
      chunkSize: CHUNK,
    });
    assert.ok(ranged !== undefined);
    assert.equal(await readerSha256(ranged.reader), digest);
    return ranged.stats;
  };
  const transport = () => new Transport({ env: {}, osReleasePath: "/nonexistent/os-release" });

  await t.step(
    "getBlob() reads the exact bytes over four TCP connections, marked self-verifying",
    async () => {
      await using relay = startThrottleProxy({ target: reg.host, bytesPerSecond: 64 * 1024 * 1024 });
      using c = rangeClient({ insecureRegistries: [relay.host], rangeChunkSize: CHUNK });
      const stream = await c.getBlob(parseReference(`${relay.host}/${REPO}:v1`), layer);
      assert.ok(isSelfVerifying(stream, layer));
      assert.equal(await streamSha256(stream), digest);
      // four connections, each its own; at 64 MiB/s a request can race the pool's reuse of the one
      // before it (hyper then opens a fresh connection for that client), so allow a few more
      const n = relay.connections();
      assert.ok(n >= 4 && n <= 8, `${n} TCP connections`);
    },
  );

  await t.step(
    "a slow first chunk: memory stays within N + 2 chunks, every byte asked for once",
    async () => {
      // the first chunk's headers come at once (so every connection starts), its body 700 ms later
      const slowFirst = async (path: string, init?: RequestInit) => {
        const res = await reg.fetch(path, init);
        const range = new Headers(init?.headers).get("range") ?? "";
        if (!range.startsWith("bytes=0-") || res.body === null) return res;
        const late = new TransformStream<Uint8Array, Uint8Array>({
          start: () => new Promise((r) => setTimeout(r, 700)),
        });
        return new Response(res.body.pipeThrough(late), { status: res.status, headers: res.headers });
      };
      await using fault = rangeFaultServer(reg, undefined, slowFirst);
      using tr = transport();
      const stats = await openThrough(fault, tr);
      assert.ok(
        stats.peakBufferedBytes <= (4 + 2) * CHUNK,
        `held ${stats.peakBufferedBytes} bytes, at most ${(4 + 2) * CHUNK}`,
      );
      const ranges = closedRanges(fault.requests).sort((a, b) => a[0] - b[0]);
      assert.equal(ranges.length, Math.ceil(size / CHUNK));
      assert.equal(ranges.reduce((n, [a, b]) => n + b - a + 1, 0), size);
    },
  );

  await t.step("the first range not served exactly: one stream, as before", async () => {
    await using fault = rangeFaultServer(reg, () => ({ kind: "okInsteadOfPartial" }));
    using c = rangeClient();
    assert.equal(
      await streamSha256(await c.getBlob(parseReference(`${fault.host}/${REPO}:v1`), layer)),
      digest,
    );
    assert.equal(closedRanges(fault.requests).length, 1);
    assert.equal(fault.requests.filter((q) => q.headers["range"] === undefined).length, 1);
  });

  await t.step("a later range not served exactly: the stream continues on one connection", async () => {
    // closed ranges from the third on get a wrong Content-Range; the open range of one stream does not
    await using fault = rangeFaultServer(
      reg,
      (req, count) =>
        count >= 3 && /-\d+$/.test(req.headers.get("range") ?? "")
          ? { kind: "wrongContentRange" }
          : { kind: "none" },
    );
    using tr = transport();
    const stats = await openThrough(fault, tr);
    assert.match(stats.fallback ?? "", /Content-Range/);
    assert.ok(
      fault.requests.some((q) => /^bytes=\d+-$/.test(q.headers["range"] ?? "")),
      "an open range follows",
    );
  });

  await t.step("a range dropped mid-way is asked again; the bytes are right", async () => {
    await using fault = rangeFaultServer(
      reg,
      (_req, count) => count === 2 ? { kind: "dropMidRange", after: 100_000 } : { kind: "none" },
    );
    using c = rangeClient({ rangeChunkSize: CHUNK });
    assert.equal(
      await streamSha256(await c.getBlob(parseReference(`${fault.host}/${REPO}:v1`), layer)),
      digest,
    );
    assert.ok(
      closedRanges(fault.requests).length > Math.ceil(size / CHUNK),
      "the dropped range was asked again",
    );
  });

  await t.step("a wrong digest errors the stream with DIGEST_MISMATCH", async () => {
    using c = rangeClient();
    const wrong = { ...layer, digest: `sha256:${"2".repeat(64)}` as Descriptor["digest"] };
    const served = (p: string, init?: RequestInit) => reg.fetch(p.replace(wrong.digest, digest), init);
    await using fault = rangeFaultServer(reg, undefined, served);
    const err = await streamSha256(await c.getBlob(parseReference(`${fault.host}/${REPO}:v1`), wrong)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof DangerzoneError && err.code === "DIGEST_MISMATCH", String(err));
  });
});
