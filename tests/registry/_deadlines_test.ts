/**
 * Deadlines (issue 14 item 1): no registry can hang a request. A server that accepts and never
 * answers, one that sends headers and then trickles, a trickling manifest and token server, and
 * a blob trickling under the idle timeout all end in one `REGISTRY_TIMEOUT` line naming the host,
 * within the (short, configured) deadlines; a slow but moving blob is not cut.
 */
import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { type Digest, sha256Digest } from "../../src/oci/digest.ts";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RateWindow } from "../../src/registry/_deadlines.ts";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { Transport } from "../../src/registry/transport.ts";
import {
  type BlobFault,
  blobResponse,
  type FaultServer,
  startFaultServer,
  startSilentServer,
} from "../_helpers/fault_server.ts";

const BLOB = Uint8Array.from({ length: 64 * 1024 }, (_, i) => i % 251);
const BLOB_DESC: Descriptor = {
  mediaType: "application/vnd.oci.image.layer.v1.tar",
  digest: await sha256Digest(BLOB) as Digest,
  size: BLOB.length,
};
/** Headers at once, then one byte every 5 s (the trickle). */
const TRICKLE: BlobFault = { kind: "slow", chunk: 1, delayMs: 5000 };

function client(extra: RegistryClientOptions): RegistryClient {
  return new RegistryClient({ env: {}, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 }, ...extra });
}

/** Awaits `work`, which must fail with `REGISTRY_TIMEOUT` naming `host` within `withinMs`. */
async function timesOut(work: Promise<unknown>, host: string, withinMs: number): Promise<DangerzoneError> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), withinMs)));
  let caught: unknown;
  const outcome = await Promise.race([work.then(() => "resolved", (e) => (caught = e, "rejected")), hang]);
  clearTimeout(timer);
  assert.equal(outcome, "rejected", `still running (or succeeded) after ${withinMs} ms`);
  assert.ok(caught instanceof DangerzoneError, `expected REGISTRY_TIMEOUT, got ${String(caught)}`);
  assert.equal(caught.code, "REGISTRY_TIMEOUT", caught.message);
  assert.ok(caught.message.includes(host), caught.message);
  assert.ok(!/\n/.test(caught.message));
  assert.ok(Date.now() - started < withinMs);
  return caught;
}

function trickleServer(fault: BlobFault): FaultServer {
  return startFaultServer([
    { path: /\/(manifests|blobs)\//, handler: (req) => blobResponse(req, BLOB, fault) },
  ]);
}

Deno.test("a server that accepts and never answers: REGISTRY_TIMEOUT after the headers deadline, retried", async () => {
  await using silent = startSilentServer();
  using c = client({ headersTimeoutMs: 300 });
  const err = await timesOut(c.getManifest(parseReference(`${silent.host}/a/b:1`)), silent.host, 5000);
  assert.match(err.message, /no response within 0\.3 s \(connect and response headers\), tried 2 times/);
  assert.equal(silent.connections, 2, "the timeout is retried like a dropped connection");
});

Deno.test("a manifest trickling 1 byte every 5 s: REGISTRY_TIMEOUT at the document deadline", async () => {
  await using server = trickleServer(TRICKLE);
  using c = client({ headersTimeoutMs: 300, documentTimeoutMs: 800 });
  const err = await timesOut(c.getManifest(parseReference(`${server.host}/a/b:1`)), server.host, 3000);
  assert.match(err.message, /manifest .* not complete within 0\.8 s \(document deadline\)/);
});

Deno.test("a token server that never answers: REGISTRY_TIMEOUT naming the token server", async () => {
  await using silent = startSilentServer();
  await using server = startFaultServer([{
    path: /.*/,
    handler: () =>
      new Response(null, {
        status: 401,
        headers: { "WWW-Authenticate": `Bearer realm="http://${silent.host}/token",service="s"` },
      }),
  }]);
  using c = client({ headersTimeoutMs: 300 });
  await timesOut(c.getManifest(parseReference(`${server.host}/a/b:1`)), silent.host, 5000);
});

Deno.test("a blob trickling 1 byte every 5 s: the idle timeout resumes it, then REGISTRY_TIMEOUT", async () => {
  await using server = trickleServer(TRICKLE);
  using c = client({ idleTimeoutMs: 400 });
  const err = await timesOut(
    (async () =>
      await new Response(await c.getBlob(parseReference(`${server.host}/a/b:1`), BLOB_DESC)).arrayBuffer())(),
    server.host,
    5000,
  );
  assert.match(err.message, /sent no data for 0\.4 s \(2 times in a row\)/);
  assert.equal(server.requests.length, 2, "the first stall is resumed on a new connection");
  assert.equal(server.requests[1]?.headers.range, "bytes=1-", "the resume starts after the byte received");
});

Deno.test("a blob trickling under the idle timeout is a stall by the minimum rate", async () => {
  // 1 byte every 100 ms never trips a 5 s idle timeout; 10 B/s is under 1 KiB/s over 0.5 s
  await using server = trickleServer({ kind: "slow", chunk: 1, delayMs: 100 });
  using c = client({ idleTimeoutMs: 5000, minBlobBytesPerSecond: 1024, blobRateWindowMs: 500 });
  const err = await timesOut(
    (async () =>
      await new Response(await c.getBlob(parseReference(`${server.host}/a/b:1`), BLOB_DESC)).arrayBuffer())(),
    server.host,
    4000,
  );
  assert.match(err.message, /under 1024 B\/s over 0\.5 s/);
  assert.equal(server.requests.length, 2);
  assert.match(server.requests[1]?.headers.range ?? "", /^bytes=[1-9]\d*-$/);
});

Deno.test("a slow but moving blob is not cut by the headers, idle or rate deadlines", async () => {
  // 8 KiB every 100 ms: ~80 KiB/s, longer in total (0.8 s) than the headers deadline
  await using server = trickleServer({ kind: "slow", chunk: 8192, delayMs: 100 });
  using c = client({
    headersTimeoutMs: 300,
    idleTimeoutMs: 300,
    minBlobBytesPerSecond: 16 * 1024,
    blobRateWindowMs: 200,
  });
  const bytes = await new Response(await c.getBlob(parseReference(`${server.host}/a/b:1`), BLOB_DESC))
    .arrayBuffer();
  assert.deepEqual(new Uint8Array(bytes), BLOB);
  assert.equal(server.requests.length, 1, "never resumed");
});

Deno.test("an upload gets the time its body takes at the minimum rate before the headers deadline", async () => {
  // the server answers 0.6 s after the body: past the 0.3 s headers deadline, within 0.3 s + 1 KiB at 1 KiB/s
  await using server = startFaultServer([{
    method: "PUT",
    path: /\/blobs\/uploads\//,
    handler: async (req) => {
      await req.arrayBuffer();
      await new Promise((r) => setTimeout(r, 600));
      return new Response(null, { status: 201 });
    },
  }]);
  using t = new Transport({
    env: {},
    retry: { attempts: 1 },
    headersTimeoutMs: 300,
    minBlobBytesPerSecond: 1024,
  });
  const { response } = await t.request({
    registry: server.host,
    path: "/v2/a/b/blobs/uploads/x?digest=sha256:00",
    method: "PUT",
    body: new Uint8Array(1024),
  });
  assert.equal(response.status, 201);
  await response.body?.cancel();
  // without a body the same wait is a timeout
  await timesOut(
    t.request({ registry: server.host, path: "/v2/a/b/blobs/uploads/y", method: "PUT" }),
    server.host,
    3000,
  );
});

Deno.test("RateWindow: a full window under the rate is a stall, at or over it is healthy", () => {
  const w = new RateWindow(1000, 1000);
  assert.equal(w.add(600, 100), "open");
  assert.equal(w.add(500, 100), "stall"); // 200 B in 1.1 s
  assert.equal(w.add(1000, 1000), "healthy");
  assert.equal(w.add(999, 0), "open", "a new window started");
  assert.equal(new RateWindow(0, 1000).add(2000, 0), "healthy", "rate 0 turns the rule off");
  assert.equal(w.describe(), "under 1000 B/s over 1 s");
});
