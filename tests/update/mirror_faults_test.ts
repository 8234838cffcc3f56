/**
 * `mirrorImage()` when the destination misbehaves: push faults in front of a real registry (a raw TCP
 * proxy that drops the connection in the middle of an upload; the fault server for 413, 500 and a
 * registry with the OCI referrers API, which distribution 2.8 lacks), wrong credentials, a destination
 * that holds a newer verified image (rollback), a fallback tag that is not a referrers index. After
 * every failure the destination tag has not moved.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isDangerzoneError } from "../../src/errors.ts";
import { type Digest, digestHex, parseDigest } from "../../src/oci/digest.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { addToReferrersTag } from "../../src/registry/referrers_tag.ts";
import { mirrorImage } from "../../src/update/mirror.ts";
import { buildLargeImage, buildMultiArchImage } from "../_helpers/images.ts";
import {
  blobResponse,
  errorResponse,
  type FaultHandler,
  forwardHandler,
  startFaultServer,
} from "../_helpers/fault_server.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";
import { closeQuietly } from "../_helpers/tcp_pump.ts";
import { type SignedRegistry, startSignedRegistry } from "./_fixture.ts";
import { destinationCredentials, tagDigest } from "./_mirror_fixture.ts";

/** A signed single-platform image with a 3 MiB layer, pushed as `pub/big:latest`. */
async function bigSignedImage(sr: SignedRegistry, logIndex: number): Promise<Digest> {
  const img = await buildLargeImage(join(sr.dir, `big-${logIndex}`), { sizeMiB: 3 });
  const digest = await sr.push(img, "pub/big", "latest");
  await sr.sign(digest, { repository: "pub/big", logIndex });
  return digest;
}

interface DroppingProxy extends AsyncDisposable {
  host: string;
  /** Connections dropped so far. */
  dropped(): number;
}

/**
 * A TCP proxy to `upstreamPort` that closes a connection (both sides, mid-request) once the client has
 * sent more than `afterBytes` on it, for the first `drops` such connections: a dropped upload.
 */
function startDroppingProxy(upstreamPort: number, afterBytes: number, drops: number): DroppingProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let dropped = 0;
  const open = new Set<Deno.Conn>();
  const serve = async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: upstreamPort });
      open.add(client).add(upstream);
      const close = () => closeQuietly([client, upstream], open);
      (async () => {
        let sent = 0;
        const buf = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const n = await client.read(buf);
            if (n === null) break;
            sent += n;
            if (sent > afterBytes && dropped < drops) {
              dropped++;
              break;
            }
            await upstream.write(buf.subarray(0, n));
          }
        } catch {
          // closed
        }
        close();
      })();
      (async () => {
        try {
          await upstream.readable.pipeTo(client.writable, { preventClose: true });
        } catch {
          // closed
        }
        close();
      })();
    }
  };
  const loop = serve().catch(() => {});
  return {
    host: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    dropped: () => dropped,
    async [Symbol.asyncDispose]() {
      listener.close();
      closeQuietly(open);
      await loop;
    },
  };
}

Deno.test("mirrorImage() restarts an upload whose connection dropped; a persistent drop fails with the tag unmoved", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "plain" });
  await using data = makeTempDir("mirror-drop");
  const v1 = await bigSignedImage(sr, 10);
  using ctx = await sr.context(`${sr.reg.host}/pub/big:latest`, data.path);
  {
    await using proxy = startDroppingProxy(dest.port, 1024 * 1024, 1);
    const r = await mirrorImage(ctx, { to: parseReference(`${proxy.host}/dz/big`) });
    assert.equal(proxy.dropped(), 1);
    assert.equal(r.stats.restarts, 1);
    assert.equal(r.digest, v1);
  }
  assert.equal(await tagDigest(`${dest.host}/dz/big:latest`), v1);

  const v2 = await bigSignedImage(sr, 11);
  assert.notEqual(v2, v1);
  await using always = startDroppingProxy(dest.port, 1024 * 1024, 1000);
  await assert.rejects(
    mirrorImage(ctx, { to: parseReference(`${always.host}/dz/big`) }),
    (e) => isDangerzoneError(e, "REGISTRY_UNREACHABLE"),
  );
  assert.equal(always.dropped(), 3); // the first try and two restarts
  assert.equal(await tagDigest(`${dest.host}/dz/big:latest`), v1);
});

/** Forwards to the real registry at `upstream`, with upload `Location`s pointing back at the front. */
function viaFront(upstream: string): FaultHandler {
  const forward = forwardHandler((path, init) => fetch(`${upstream}${path}`, init));
  return async (req, ctx) => {
    const res = await forward(req, ctx);
    const location = res.headers.get("location");
    if (location === null || !location.startsWith(upstream)) return res;
    const headers = new Headers(res.headers);
    headers.set("location", ctx.origin + location.slice(upstream.length));
    return new Response(res.body, { status: res.status, headers });
  };
}

/** A fault server in front of `dest` that answers blob-upload PUTs with `status` the first `times` times. */
function faultyUploads(destUrl: string, status: number, times: number) {
  const forward = viaFront(destUrl);
  return startFaultServer([{
    method: "PUT",
    path: /\/blobs\/uploads\//,
    handler: async (req, ctx) => {
      if (ctx.count > times) return await forward(req, ctx);
      await req.body?.cancel();
      return errorResponse(status, status === 413 ? "SIZE_INVALID" : "UNKNOWN");
    },
  }, { path: /.*/, handler: forward }]);
}

Deno.test("mirrorImage() restarts an upload after a 500; a 413 fails at once (exit 12) with the tag unmoved", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "plain" });
  await using data = makeTempDir("mirror-5xx");
  const v1 = await bigSignedImage(sr, 20);
  using ctx = await sr.context(`${sr.reg.host}/pub/big:latest`, data.path);
  {
    await using fs = faultyUploads(dest.url, 500, 1);
    const r = await mirrorImage(ctx, { to: parseReference(`${fs.host}/dz/big`) });
    assert.equal(r.stats.restarts, 1);
  }
  await bigSignedImage(sr, 21);
  await using tooLarge = faultyUploads(dest.url, 413, 1000);
  await assert.rejects(
    mirrorImage(ctx, { to: parseReference(`${tooLarge.host}/dz/big`) }),
    (e) => isDangerzoneError(e, "REGISTRY_HTTP") && /413/.test(e.message),
  );
  // the image and its signature upload side by side: each blob was tried once, none again
  const puts = tooLarge.requests.filter((r) => r.method === "PUT" && r.url.includes("/blobs/uploads/"))
    .map((r) => new URL(r.url).searchParams.get("digest"));
  assert.ok(puts.length >= 1);
  assert.equal(new Set(puts).size, puts.length, `a 413 is not retried: ${puts.join(" ")}`);
  assert.equal(await tagDigest(`${dest.host}/dz/big:latest`), v1);
});

Deno.test("mirrorImage() with refused credentials fails REGISTRY_UNAUTHORIZED and pushes nothing", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "htpasswd" });
  await using data = makeTempDir("mirror-401");
  const img = await sr.pushBusybox("pub/small", "latest", "401");
  await sr.sign(img.digest, { repository: "pub/small", logIndex: 1 });
  const registry = (await destinationCredentials(data.path, dest, "tester:wrong")).client();
  using ctx = await sr.context(`${sr.reg.host}/pub/small:latest`, data.path, { registry });
  await assert.rejects(
    mirrorImage(ctx, { to: parseReference(`${dest.host}/dz/small`) }),
    (e) => isDangerzoneError(e, "REGISTRY_UNAUTHORIZED"),
  );
  registry.close();
  const catalog = await dest.fetch("/v2/dz/small/tags/list", { headers: await dest.authHeaders("dz/small") });
  assert.equal(catalog.status, 404);
  await catalog.body?.cancel();
});

Deno.test("mirrorImage() refuses an older image than the destination holds (ROLLBACK) unless force", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("mirror-rollback");
  const newer = await sr.pushBusybox("pub/r", "new", "newer");
  await sr.sign(newer.digest, { repository: "pub/r", logIndex: 50 });
  const older = await sr.pushBusybox("pub/r", "old", "older");
  await sr.sign(older.digest, { repository: "pub/r", logIndex: 30 });
  const to = parseReference(`${sr.reg.host}/dz/r:stable`);
  {
    using ctx = await sr.context(`${sr.reg.host}/pub/r:new`, join(data.path, "a"));
    await mirrorImage(ctx, { to });
  }
  // another mirror machine (fresh state) offers the older image: the destination refuses it
  using ctx = await sr.context(`${sr.reg.host}/pub/r:old`, join(data.path, "b"));
  await assert.rejects(mirrorImage(ctx, { to }), (e) => isDangerzoneError(e, "ROLLBACK"));
  assert.equal(await tagDigest(`${sr.reg.host}/dz/r:stable`), newer.digest);
  const forced = await mirrorImage(ctx, { to, force: true });
  assert.equal(forced.previousDigest, newer.digest);
  assert.equal(await tagDigest(`${sr.reg.host}/dz/r:stable`), older.digest);

  // the mirror's own state refuses it too, and --force does not bypass that
  using first = await sr.context(`${sr.reg.host}/pub/r:old`, join(data.path, "a"));
  await assert.rejects(
    mirrorImage(first, { to: parseReference(`${sr.reg.host}/dz/r:other`), force: true }),
    (e) => isDangerzoneError(e, "ROLLBACK"),
  );
});

Deno.test("mirrorImage() lists referrers through the destination's referrers API when it has one", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "plain" });
  await using data = makeTempDir("mirror-api");
  const img = await sr.pushBusybox("pub/api", "latest", "api");
  await sr.sign(img.digest, { repository: "pub/api", logIndex: 5 });
  // an OCI 1.1 simple-signing referrer in the source (cosign's OCI 1.1 mode), listed by the tag schema
  const referrer = await pushSimpleReferrer(sr, "pub/api", img);
  const forward = viaFront(dest.url);
  const indexed: Record<string, unknown>[] = [];
  await using api = startFaultServer([
    {
      method: "GET",
      path: /^\/v2\/dz\/api\/referrers\//,
      handler: () =>
        Response.json({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: indexed,
        }, {
          headers: { "Content-Type": "application/vnd.oci.image.index.v1+json" },
        }),
    },
    {
      method: "PUT",
      path: /^\/v2\/dz\/api\/manifests\//,
      handler: async (req, ctx) => {
        const body = new Uint8Array(await req.clone().arrayBuffer());
        const res = await forward(req, ctx);
        const m = JSON.parse(new TextDecoder().decode(body));
        if (m.subject === undefined || res.status !== 201) return res;
        indexed.push({
          mediaType: m.mediaType,
          digest: res.headers.get("docker-content-digest"),
          size: body.length,
        });
        const headers = new Headers(res.headers);
        headers.set("OCI-Subject", m.subject.digest);
        return new Response(res.body, { status: res.status, headers });
      },
    },
    { path: /.*/, handler: forward },
  ]);
  using ctx = await sr.context(`${sr.reg.host}/pub/api:latest`, data.path);
  const r = await mirrorImage(ctx, { to: parseReference(`${api.host}/dz/api`) });
  assert.deepEqual(r.signatures.referrersListedVia, ["api"]);
  assert.deepEqual(indexed.map((d) => d.digest), [referrer]);
  // no fallback tag was written
  assert.equal(await tagDigest(`${dest.host}/dz/api:sha256-${digestHex(img.digest)}`), null);
});

/** Pushes a cosign OCI 1.1 style referrer (simple-signing manifest with a subject) and lists it by tag. */
async function pushSimpleReferrer(
  sr: SignedRegistry,
  repository: string,
  img: { digest: Digest; mediaType: string; size: number },
): Promise<Digest> {
  using client = new RegistryClient(sr.clientOptions);
  const ref = parseReference(`${sr.reg.host}/${repository}`);
  const config = new TextEncoder().encode("{}");
  const configDigest = parseDigest(`sha256:${await hexOf(config)}`);
  await client.putBlob(
    ref,
    { mediaType: "application/vnd.oci.empty.v1+json", digest: configDigest, size: 2 },
    config,
  );
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: configDigest, size: 2 },
    layers: [{ mediaType: "application/vnd.oci.empty.v1+json", digest: configDigest, size: 2 }],
    subject: { mediaType: img.mediaType, digest: img.digest, size: img.size },
  }));
  const d = await client.putManifest(ref, manifest);
  await addToReferrersTag(client, ref, img.digest, [{
    ...d,
    artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
  }]);
  return d.digest;
}

async function hexOf(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("addToReferrersTag() merges without duplicates and refuses a fallback tag that holds the image", async () => {
  await using sr = await startSignedRegistry("plain");
  const img = await sr.pushBusybox("pub/tagschema", "latest", "tag schema");
  const first = await pushSimpleReferrer(sr, "pub/tagschema", img);
  using client = new RegistryClient(sr.clientOptions);
  const ref = parseReference(`${sr.reg.host}/pub/tagschema`);
  const other = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: img.digest,
    size: img.size,
  };
  // the same referrer again: nothing to do
  const listed = await client.referrers(ref, img.digest);
  assert.equal(await addToReferrersTag(client, ref, img.digest, listed), "present");
  assert.equal((await client.referrers(ref, img.digest)).length, 1);
  // another one: merged after the first, the first kept as it was
  const second = await sr.pushBusybox("pub/tagschema", "other", "another manifest");
  assert.equal(
    await addToReferrersTag(client, ref, img.digest, [{
      ...other,
      digest: second.digest,
      size: second.size,
    }]),
    "merged",
  );
  assert.deepEqual((await client.referrers(ref, img.digest)).map((d) => d.digest), [first, second.digest]);

  // a registry that answers the fallback tag with the image itself: refused, not overwritten
  const hostile = await sr.pushBusybox("pub/hostile", "latest", "hostile");
  await sr.push(
    { ...hostile, name: hostile.name },
    "pub/hostile",
    `sha256-${digestHex(hostile.digest)}`,
  );
  const hostileRef = parseReference(`${sr.reg.host}/pub/hostile`);
  await assert.rejects(
    addToReferrersTag(client, hostileRef, hostile.digest, [{ ...other, digest: first }]),
    (e) => isDangerzoneError(e, "REGISTRY_PROTOCOL"),
  );
  assert.equal(
    await tagDigest(`${sr.reg.host}/pub/hostile:sha256-${digestHex(hostile.digest)}`),
    hostile.digest,
  );
});

Deno.test("mirrorImage() from a source that serves a wrong layer fails DIGEST_MISMATCH; nothing is committed", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "plain" });
  await using data = makeTempDir("mirror-wrongbytes");
  const img = await buildLargeImage(join(sr.dir, "wrong"), { sizeMiB: 2 });
  const digest = await sr.push(img, "pub/big", "latest");
  await sr.sign(digest, { repository: "pub/big", logIndex: 1 });
  const layer = img.layerDigests[0];
  assert.ok(layer !== undefined);
  const bytes = await Deno.readFile(join(img.layoutDir, "blobs", "sha256", layer.slice(7)));
  await using front = startFaultServer([
    {
      method: "GET",
      path: `/v2/pub/big/blobs/${layer}`,
      handler: (req) => blobResponse(req, bytes, { kind: "wrongBytes" }),
    },
    { path: /.*/, handler: viaFront(sr.reg.url) },
  ]);
  using ctx = await sr.context(`${front.host}/pub/big:latest`, data.path, {
    identity: `${sr.reg.host}/pub/big`,
  });
  await assert.rejects(
    mirrorImage(ctx, { to: parseReference(`${dest.host}/dz/big`) }),
    (e) => isDangerzoneError(e, "DIGEST_MISMATCH"),
  );
  assert.equal(await tagDigest(`${dest.host}/dz/big:latest`), null);
  using client = new RegistryClient({});
  const committed = await client.hasBlob(parseReference(`${dest.host}/dz/big`), {
    mediaType: "application/octet-stream",
    digest: layer,
    size: bytes.length,
  });
  assert.equal(committed, false);
});

Deno.test("mirrorImage() reads a fallback tag that holds the image itself as no referrers (oras-go #1396)", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("mirror-fallback-image");
  const idx = await buildMultiArchImage(join(sr.dir, "multi"));
  const digest = await sr.push(idx, "pub/odd", "latest");
  await sr.push(idx, "pub/odd", `sha256-${digestHex(digest)}`); // the "referrers index" is the image
  await sr.sign(digest, { repository: "pub/odd", logIndex: 4 });
  using ctx = await sr.context(`${sr.reg.host}/pub/odd:latest`, data.path);
  const r = await mirrorImage(ctx, { to: parseReference(`${sr.reg.host}/dz/odd`) });
  assert.equal(r.digest, digest);
  assert.equal(r.signatures.referrers, 0);
  assert.equal(r.signatures.legacySignatures, 1);
  // and no referrers index was invented at the destination
  assert.equal(await tagDigest(`${sr.reg.host}/dz/odd:sha256-${digestHex(digest)}`), null);
});

Deno.test("mirrorImage() moves the tag only after the signatures are there: a failing signature upload, twice, leaves it", async () => {
  await using sr = await startSignedRegistry("plain");
  await using dest = await startRegistry({ mode: "plain" });
  await using data = makeTempDir("mirror-tag-last");
  const v1 = await sr.pushBusybox("pub/t", "latest", "v1");
  await sr.sign(v1.digest, { repository: "pub/t", logIndex: 1 });
  using ctx = await sr.context(`${sr.reg.host}/pub/t:latest`, data.path);
  {
    await using ok = startFaultServer([{ path: /.*/, handler: viaFront(dest.url) }]);
    await mirrorImage(ctx, { to: parseReference(`${ok.host}/dz/t`) });
  }
  const v2 = await sr.pushBusybox("pub/t", "latest", "v2");
  await sr.sign(v2.digest, { repository: "pub/t", logIndex: 2 });
  // the destination takes the image's blobs but refuses every other blob (the signature's)
  const imageBlobs = new Set<string>([v2.configDigest, ...v2.layerDigests]);
  const forward = viaFront(dest.url);
  await using front = startFaultServer([{
    method: "PUT",
    path: /\/blobs\/uploads\//,
    handler: async (req, ctx) => {
      if (imageBlobs.has(ctx.url.searchParams.get("digest") ?? "")) return await forward(req, ctx);
      await req.body?.cancel();
      return errorResponse(413, "SIZE_INVALID");
    },
  }, { path: /.*/, handler: forward }]);
  for (let run = 0; run < 2; run++) {
    // the second run finds the image complete by digest; the tag must still wait for the signature
    await assert.rejects(
      mirrorImage(ctx, { to: parseReference(`${front.host}/dz/t`) }),
      (e) => isDangerzoneError(e, "REGISTRY_HTTP"),
    );
    assert.equal(await tagDigest(`${dest.host}/dz/t:latest`), v1.digest);
  }
});
