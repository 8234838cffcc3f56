/**
 * Parallel Range downloads against the REAL registry (CNCF distribution 2.8): through a relay that caps
 * each TCP connection's rate (more connections, more speed), through the fault server in front of the
 * registry (ranges ignored, a wrong Content-Range, 200 instead of 206, a drop mid-range, a CDN redirect
 * that expires), an aborted run resumed from its record, records that lie, SIGKILL of a child process
 * mid-download, and one SOCKS5 username (Tor circuit) per connection.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { parseReference, type Reference } from "../../src/oci/reference.ts";
import type { RegistryClient, RegistryClientOptions } from "../../src/registry/client.ts";
import { rangeRecordPath } from "../../src/registry/parallel_download.ts";
import {
  forwardRange,
  type RangeFault,
  redirectResponse,
  startFaultServer,
} from "../_helpers/fault_server.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";
import { startSocks5Server } from "../_helpers/socks5_server.ts";
import { startThrottleProxy } from "../_helpers/throttle_proxy.ts";
import { closedRanges, fileSha256, pushBigLayer, rangeClient, rangeFaultServer } from "./_ranges_fixture.ts";

const REPO = "ranges/big";
const CHUNK = 512 * 1024;

function client(extra: RegistryClientOptions = {}): RegistryClient {
  return rangeClient({ rangeChunkSize: CHUNK, ...extra });
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof DangerzoneError, `expected ${code}, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
}

function refOn(host: string): Reference {
  return parseReference(`${host}/${REPO}:v1`);
}

Deno.test("parallel Range downloads against the real registry", async (t) => {
  await using reg = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("ranges");
  const fx = { layer: await pushBigLayer(reg, tmp.path, REPO) };
  const size = fx.layer.size;
  let n = 0;
  const dest = () => join(tmp.path, `out-${++n}`);

  await t.step(
    "four connections, each its own TCP connection, are faster than one under a per-connection cap",
    async () => {
      await using relay = startThrottleProxy({ target: reg.host, bytesPerSecond: 3 * 1024 * 1024 });
      const timed = async (connections: number) => {
        using c = client({ connections, insecureRegistries: [relay.host] });
        const path = dest();
        const progress: number[] = [];
        const started = performance.now();
        await c.downloadBlob(refOn(relay.host), fx.layer, path, {
          onProgress: (done) => progress.push(done),
        });
        const ms = performance.now() - started;
        assert.equal(await fileSha256(path), fx.layer.digest);
        assert.equal(progress.at(-1), size, "progress ends at the bytes of all connections together");
        return ms;
      };
      const before = relay.connections();
      const one = await timed(1);
      assert.equal(relay.connections() - before, 1);
      const four = await timed(4);
      assert.equal(relay.connections() - before - 1, 4, "one TCP connection per worker, no more");
      assert.ok(four < one * 0.6, `4 connections took ${four.toFixed(0)} ms, 1 took ${one.toFixed(0)} ms`);
    },
  );

  await t.step("every byte is asked for once, as closed ranges", async () => {
    await using fault = rangeFaultServer(reg, () => ({ kind: "none" }));
    using c = client();
    const path = dest();
    await c.downloadBlob(refOn(fault.host), fx.layer, path);
    assert.equal(await fileSha256(path), fx.layer.digest);
    const ranges = closedRanges(fault.requests).sort((a, b) => a[0] - b[0]);
    assert.equal(ranges.length, Math.ceil(size / CHUNK));
    let next = 0;
    for (const [a, b] of ranges) {
      assert.equal(a, next);
      next = b + 1;
    }
    assert.equal(next, size);
  });

  const fallbacks: [string, RangeFault][] = [
    ["ranges ignored (200 with the whole blob)", { kind: "rangesIgnored" }],
    ["a Content-Range that is not the range asked for", { kind: "wrongContentRange" }],
    ["200 instead of 206", { kind: "okInsteadOfPartial" }],
  ];
  for (const [name, rangeFault] of fallbacks) {
    await t.step(`${name}: falls back to one stream and still verifies`, async () => {
      await using fault = rangeFaultServer(reg, () => rangeFault);
      using c = client();
      const path = dest();
      await c.downloadBlob(refOn(fault.host), fx.layer, path);
      assert.equal(await fileSha256(path), fx.layer.digest);
      assert.equal(
        closedRanges(fault.requests).length,
        1,
        "only the first connection asked before the check",
      );
      const plain = fault.requests.filter((q) => q.headers["range"] === undefined);
      assert.equal(plain.length, 1, "then one stream from byte 0");
    });
  }

  await t.step("a range dropped mid-way is asked again from where it stopped", async () => {
    const chunk = 2 * 1024 * 1024;
    await using fault = rangeFaultServer(
      reg,
      (_req, count) => count === 1 ? { kind: "dropMidRange", after: 1536 * 1024 } : { kind: "none" },
    );
    using c = client({ rangeChunkSize: chunk });
    const path = dest();
    await c.downloadBlob(refOn(fault.host), fx.layer, path);
    assert.equal(await fileSha256(path), fx.layer.digest);
    const ranges = closedRanges(fault.requests);
    assert.deepEqual(ranges[0], [0, chunk - 1]);
    assert.ok(
      ranges.some(([a, b]) => a === 1024 * 1024 && b === chunk - 1),
      `resumed at the 1 MiB written before the drop: ${JSON.stringify(ranges)}`,
    );
  });

  await t.step("a CDN redirect is followed once, reused, and asked again after an expired 403", async () => {
    let issued = 0;
    const uses = new Map<string, number>();
    await using fault = startFaultServer([
      {
        path: /^\/v2\/.*\/blobs\//,
        handler: (_req, ctx) => redirectResponse(`${ctx.origin}/cdn${ctx.url.pathname}?sig=${++issued}`),
      },
      {
        path: /^\/cdn\//,
        handler: (req, ctx) => {
          const sig = ctx.url.searchParams.get("sig") ?? "";
          const used = (uses.get(sig) ?? 0) + 1;
          uses.set(sig, used);
          if (used > 3) return new Response("expired", { status: 403 });
          const upstream = (_path: string, init?: RequestInit) => reg.fetch(ctx.url.pathname.slice(4), init);
          return forwardRange(req, upstream, { kind: "none" });
        },
      },
    ]);
    using c = client();
    const path = dest();
    await c.downloadBlob(refOn(fault.host), fx.layer, path);
    assert.equal(await fileSha256(path), fx.layer.digest);
    const chunks = Math.ceil(size / CHUNK);
    const registryHits = fault.requests.filter((q) => new URL(q.url).pathname.startsWith("/v2/")).length;
    assert.ok(issued >= 2, "an expired URL was resolved again through the registry");
    assert.ok(
      registryHits < chunks,
      `the CDN URL was reused (${registryHits} registry requests for ${chunks} chunks)`,
    );
  });

  await t.step("an aborted run resumes from its record and asks only for what is missing", async () => {
    await using fault = rangeFaultServer(reg, () => ({ kind: "none" }));
    await using relay = startThrottleProxy({ target: fault.host, bytesPerSecond: 1024 * 1024 });
    const path = dest();
    const partial = `${path}.partial`;
    const ac = new AbortController();
    {
      using c = client({ rangeChunkSize: 256 * 1024 });
      const run = c.downloadBlob(refOn(relay.host), fx.layer, path, {
        partialFile: "resumable",
        signal: ac.signal,
        onProgress: (done) => done > size / 2 && ac.abort(new Error("stop")),
      });
      await assert.rejects(run);
    }
    await new Promise((r) => setTimeout(r, 50)); // the record write after the abort settles
    const record: unknown = JSON.parse(await Deno.readTextFile(rangeRecordPath(partial)));
    assert.ok(typeof record === "object" && record !== null && "received" in record);
    const kept = (record.received as number[]).reduce((a, b) => a + b, 0);
    assert.ok(kept > size / 4, `the record kept ${kept} bytes`);
    const asked = fault.requests.length;
    using c = client({ rangeChunkSize: 256 * 1024 });
    await c.downloadBlob(refOn(fault.host), fx.layer, path, { partialFile: "resumable" });
    assert.equal(await fileSha256(path), fx.layer.digest);
    const again = closedRanges(fault.requests.slice(asked)).reduce((a, [s, e]) => a + e - s + 1, 0);
    assert.ok(again <= size - kept, `asked again for ${again} bytes, ${size - kept} were missing`);
    await assert.rejects(Deno.stat(rangeRecordPath(partial)), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(partial), Deno.errors.NotFound);
  });

  await t.step(
    "a record that lies is caught by the digest: the download starts over and verifies",
    async () => {
      const path = dest();
      const partial = `${path}.partial`;
      await Deno.writeFile(partial, new Uint8Array(size)); // zeros
      const chunks = Math.ceil(size / CHUNK);
      const received = Array.from({ length: chunks }, (_, i) => Math.min(CHUNK, size - i * CHUNK));
      await Deno.writeTextFile(
        rangeRecordPath(partial),
        JSON.stringify({ version: 1, digest: fx.layer.digest, size, chunkSize: CHUNK, received }),
      );
      using c = client();
      await c.downloadBlob(refOn(reg.host), fx.layer, path, { partialFile: "resumable" });
      assert.equal(await fileSha256(path), fx.layer.digest);
    },
  );

  await t.step("a record that does not fit is discarded with its file", async () => {
    await using fault = rangeFaultServer(reg, () => ({ kind: "none" }));
    const path = dest();
    const partial = `${path}.partial`;
    await Deno.writeFile(partial, new Uint8Array(CHUNK)); // zeros that a record claims for another blob
    await Deno.writeTextFile(
      rangeRecordPath(partial),
      JSON.stringify({
        version: 1,
        digest: `sha256:${"0".repeat(64)}`,
        size,
        chunkSize: CHUNK,
        received: [CHUNK],
      }),
    );
    using c = client();
    await c.downloadBlob(refOn(fault.host), fx.layer, path, { partialFile: "resumable" });
    assert.equal(await fileSha256(path), fx.layer.digest);
    assert.equal(closedRanges(fault.requests)[0]?.[0], 0, "nothing of the refused record was kept");
    assert.equal(closedRanges(fault.requests).length, Math.ceil(size / CHUNK), "one download, no restart");
  });

  await t.step("a wrong blob still fails DIGEST_MISMATCH and leaves nothing", async () => {
    using c = client();
    const path = dest();
    const wrong = { ...fx.layer, digest: `sha256:${"1".repeat(64)}` as Descriptor["digest"] };
    const served = (p: string, init?: RequestInit) =>
      reg.fetch(p.replace(wrong.digest, fx.layer.digest), init);
    await using fault = rangeFaultServer(reg, undefined, served);
    await rejectsWithCode(c.downloadBlob(refOn(fault.host), wrong, path), "DIGEST_MISMATCH");
    const left = (await Array.fromAsync(Deno.readDir(tmp.path))).filter((e) =>
      e.name.startsWith(path.split("/").at(-1) ?? "?")
    );
    assert.deepEqual(left, []);
  });

  await t.step("SIGKILL mid-download, then the next run resumes from the record", async () => {
    await using fault = rangeFaultServer(reg, () => ({ kind: "none" }));
    await using relay = startThrottleProxy({ target: fault.host, bytesPerSecond: 512 * 1024 });
    const path = dest();
    const partial = `${path}.partial`;
    const script = join(tmp.path, "download.ts");
    const clientUrl = new URL("../../src/registry/client.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { RegistryClient } from ${JSON.stringify(clientUrl)};
import { parseReference } from ${JSON.stringify(new URL("../../src/oci/reference.ts", import.meta.url).href)};
const c = new RegistryClient({ env: {}, osReleasePath: "/nonexistent", connections: 4, rangeThreshold: 0, rangeChunkSize: ${CHUNK} });
await c.downloadBlob(parseReference(${JSON.stringify(`${relay.host}/${REPO}:v1`)}), ${
        JSON.stringify(fx.layer)
      }, ${JSON.stringify(path)}, { partialFile: "resumable" });
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-prompt", script],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const keptBytes = async () => {
      try {
        const r: unknown = JSON.parse(await Deno.readTextFile(rangeRecordPath(partial)));
        if (typeof r !== "object" || r === null || !("received" in r) || !Array.isArray(r.received)) return 0;
        return r.received.reduce((a: number, b: unknown) => a + (typeof b === "number" ? b : 0), 0);
      } catch {
        return 0;
      }
    };
    const deadline = Date.now() + 60_000;
    while ((await keptBytes()) < size / 3) {
      assert.ok(Date.now() < deadline, "the child never got a third of the blob");
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGKILL");
    assert.equal((await child.status).signal, "SIGKILL");
    const kept = await keptBytes();
    const asked = fault.requests.length;
    using c = client();
    await c.downloadBlob(refOn(fault.host), fx.layer, path, { partialFile: "resumable" });
    assert.equal(await fileSha256(path), fx.layer.digest);
    const again = closedRanges(fault.requests.slice(asked)).reduce((a, [s, e]) => a + e - s + 1, 0);
    assert.ok(again <= size - kept, `asked again for ${again} bytes, ${size - kept} were missing`);
  });
});

Deno.test("parallel ranges through SOCKS5: one username (circuit) per connection, new each run", async () => {
  await using reg = await startRegistry({ mode: "plain" });
  await using tmp = makeTempDir("ranges-socks");
  const fx = { layer: await pushBigLayer(reg, tmp.path, REPO) };
  const socks = startSocks5Server({ requireAuth: true });
  try {
    const viaSocks = `socks5://user:secret@127.0.0.1:${socks.port}`;
    const run = async (extra: RegistryClientOptions, proxy: string | null = viaSocks) => {
      const from = socks.usernames.length;
      using c = client({ ...(proxy === null ? {} : { proxy }), insecureRegistries: [reg.host], ...extra });
      const path = join(tmp.path, `socks-${crypto.randomUUID()}`);
      await c.downloadBlob(refOn(reg.host), fx.layer, path);
      assert.equal(await fileSha256(path), fx.layer.digest);
      return socks.usernames.slice(from);
    };
    const first = await run({ torIsolation: true });
    assert.equal(new Set(first).size, 4, "a distinct username per connection");
    assert.ok(!first.includes("user"), "random names, not the proxy's own");
    const second = await run({ torIsolation: true });
    assert.equal(new Set([...first, ...second]).size, 8, "new names for each run");
    const shared = await run({ torIsolation: false });
    assert.deepEqual(new Set(shared), new Set(["user"]), "without isolation the proxy's own credentials");

    // on Tails the isolation is on by default (the Tor SOCKS port is the test server's)
    const osRelease = join(tmp.path, "os-release");
    await Deno.writeTextFile(osRelease, 'NAME="Tails"\n');
    const tails = await run({ osReleasePath: osRelease, torSocksPort: socks.port }, null);
    assert.equal(
      new Set(tails).size,
      4,
      `Tails: a distinct username per connection by default: ${tails.join(" ")}`,
    );
  } finally {
    await socks.close();
  }
});
