// Fault-server tests of RegistryClient: manifests, blobs, retries, auth, redirects, Range resume,
// tags, referrers and uploads. Everything runs on 127.0.0.1.
import assert from "node:assert/strict";
import { RegistryClient, type RegistryClientOptions } from "../../src/registry/client.ts";
import { parseReference, type Reference } from "../../src/oci/reference.ts";
import { type Digest, digestHex, sha256Digest } from "../../src/oci/digest.ts";
import type { Descriptor } from "../../src/oci/descriptor.ts";
import { MediaType } from "../../src/oci/media_types.ts";
import { isDangerzoneError } from "../../src/errors.ts";
import { isSelfVerifying } from "../../src/oci/verify_stream.ts";
import {
  type BlobFault,
  blobResponse,
  errorResponse,
  type FaultRoute,
  type FaultServer,
  manifestResponse,
  redirectResponse,
  startFaultServer,
} from "../_helpers/fault_server.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const BLOB = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 8)) % 256);
const BLOB_DIGEST = await sha256Digest(BLOB);
const BLOB_DESC: Descriptor = {
  mediaType: MediaType.OCI_LAYER_TAR_GZIP,
  digest: BLOB_DIGEST,
  size: BLOB.length,
};
const MANIFEST = enc(JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaType.OCI_MANIFEST,
  config: BLOB_DESC,
  layers: [BLOB_DESC],
}));
const MANIFEST_DIGEST = await sha256Digest(MANIFEST);
const LYING_DIGEST = `sha256:${"0".repeat(64)}`;

function client(extra: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({
    env: {},
    osReleasePath: "/nonexistent/os-release",
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, retryAfterCapMs: 5_000 },
    ...extra,
  });
}

function ref(server: FaultServer, tail = "test/app:latest"): Reference {
  return parseReference(`${server.host}/${tail}`);
}

const manifestRoute: FaultRoute = {
  path: /^\/v2\/test\/app\/manifests\//,
  handler: () =>
    manifestResponse(MANIFEST, MediaType.OCI_MANIFEST, { "Docker-Content-Digest": LYING_DIGEST }),
};

function blobRoute(faults: BlobFault[] | ((count: number) => BlobFault)): FaultRoute {
  return {
    path: `/v2/test/app/blobs/${BLOB_DIGEST}`,
    handler: (req, { count }) => {
      const fault = typeof faults === "function" ? faults(count) : faults[count - 1] ?? { kind: "none" };
      return blobResponse(req, BLOB, fault);
    },
  };
}

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "dz-client-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

// ---- manifests -----------------------------------------------------------------------------

Deno.test("getManifest() sends the full Accept list and computes the digest from the bytes", async () => {
  await using server = startFaultServer([manifestRoute]);
  using c = client();
  const m = await c.getManifest(ref(server));
  assert.equal(m.descriptor.digest, MANIFEST_DIGEST);
  assert.notEqual(m.descriptor.digest, LYING_DIGEST);
  assert.equal(m.descriptor.size, MANIFEST.length);
  assert.equal(m.descriptor.mediaType, MediaType.OCI_MANIFEST);
  assert.deepEqual(m.raw, MANIFEST);
  const accept = server.requests[0]?.headers.accept ?? "";
  for (
    const t of [
      MediaType.OCI_INDEX,
      MediaType.OCI_MANIFEST,
      MediaType.DOCKER_MANIFEST,
      MediaType.DOCKER_MANIFEST_LIST,
    ]
  ) {
    assert.ok(accept.includes(t), t);
  }
  assert.equal((await c.resolve(ref(server))).digest, MANIFEST_DIGEST);
});

Deno.test("getManifest() by digest fails with DIGEST_MISMATCH when the bytes differ", async () => {
  await using server = startFaultServer([manifestRoute]);
  using c = client();
  const wrong = `sha256:${"1".repeat(64)}`;
  await assert.rejects(
    c.getManifest(ref(server, `test/app@${wrong}`)),
    (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"),
  );
  const ok = await c.getManifest(ref(server, `test/app@${MANIFEST_DIGEST}`));
  assert.equal(ok.descriptor.digest, MANIFEST_DIGEST);
});

Deno.test("getManifest() caps oversized and endless manifests with SIZE_LIMIT_EXCEEDED", async () => {
  await using server = startFaultServer([
    {
      path: "/v2/test/big/manifests/latest",
      handler: () => manifestResponse(new Uint8Array(2048).fill(32), MediaType.OCI_MANIFEST),
    },
    {
      path: "/v2/test/endless/manifests/latest",
      handler: () =>
        new Response(
          new ReadableStream({ pull: (ctl) => ctl.enqueue(new Uint8Array(4096).fill(32)) }),
          { headers: { "Content-Type": MediaType.OCI_MANIFEST } },
        ),
    },
  ]);
  using c = client({ manifestLimit: 1024 });
  for (const name of ["test/big:latest", "test/endless:latest"]) {
    await assert.rejects(
      c.getManifest(ref(server, name)),
      (e: unknown) => isDangerzoneError(e, "SIZE_LIMIT_EXCEEDED"),
    );
  }
});

Deno.test("getManifest() reports 404 as REGISTRY_NOT_FOUND without retrying", async () => {
  await using server = startFaultServer([]);
  using c = client();
  await assert.rejects(c.getManifest(ref(server, "test/missing:v1")), (e: unknown) => {
    assert.ok(isDangerzoneError(e, "REGISTRY_NOT_FOUND"));
    return true;
  });
  assert.equal(server.requests.length, 1);
});

Deno.test("getManifest() fails other 4xx with REGISTRY_HTTP and 403 with REGISTRY_DENIED, no retry", async () => {
  await using server = startFaultServer([
    { path: "/v2/test/bad/manifests/latest", handler: () => errorResponse(400, "MANIFEST_INVALID") },
    { path: "/v2/test/denied/manifests/latest", handler: () => errorResponse(403, "DENIED") },
  ]);
  using c = client();
  await assert.rejects(
    c.getManifest(ref(server, "test/bad")),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_HTTP"),
  );
  await assert.rejects(c.getManifest(ref(server, "test/denied")), (e: unknown) => {
    assert.ok(isDangerzoneError(e, "REGISTRY_DENIED"));
    assert.match(e.message, /\(DENIED\)/);
    return true;
  });
  assert.equal(server.requests.length, 2);
});

// ---- retries -------------------------------------------------------------------------------

Deno.test("request retries 5xx with backoff and then succeeds", async () => {
  await using server = startFaultServer([{
    path: "/v2/test/app/manifests/latest",
    handler: (_req, { count }) =>
      count < 3
        ? errorResponse(count === 1 ? 503 : 500, "UNAVAILABLE")
        : manifestResponse(MANIFEST, MediaType.OCI_MANIFEST),
  }]);
  using c = client();
  assert.equal((await c.getManifest(ref(server))).descriptor.digest, MANIFEST_DIGEST);
  assert.equal(server.requests.length, 3);
});

Deno.test("request gives up on persistent 5xx with REGISTRY_RETRY_EXHAUSTED after the attempts", async () => {
  await using server = startFaultServer([{
    path: /manifests/,
    handler: () => errorResponse(502, "BAD_GATEWAY"),
  }]);
  using c = client();
  await assert.rejects(
    c.getManifest(ref(server)),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_RETRY_EXHAUSTED"),
  );
  assert.equal(server.requests.length, 3);
});

Deno.test("request honours Retry-After on 429, and fails fast when it exceeds the cap", async () => {
  await using server = startFaultServer([
    {
      path: "/v2/test/app/manifests/latest",
      handler: (_req, { count }) =>
        count === 1
          ? errorResponse(429, "TOOMANYREQUESTS", { "Retry-After": "1" })
          : manifestResponse(MANIFEST, MediaType.OCI_MANIFEST),
    },
    {
      path: "/v2/test/app/manifests/slow",
      handler: () => errorResponse(429, "TOOMANYREQUESTS", { "Retry-After": "3600" }),
    },
    { path: "/v2/test/app/manifests/always", handler: () => errorResponse(429, "TOOMANYREQUESTS") },
  ]);
  using c = client();
  const t0 = performance.now();
  await c.getManifest(ref(server));
  const waited = performance.now() - t0;
  assert.ok(waited >= 900, `waited only ${waited} ms`);
  await assert.rejects(c.getManifest(ref(server, "test/app:slow")), (e: unknown) => {
    assert.ok(isDangerzoneError(e, "REGISTRY_RATE_LIMITED"));
    assert.match(e.message, /3600 s/);
    return true;
  });
  await assert.rejects(
    c.getManifest(ref(server, "test/app:always")),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_RATE_LIMITED"),
  );
});

// ---- auth ----------------------------------------------------------------------------------

function tokenServerRoutes(opts: { basicUser?: string; alwaysReject?: boolean }): FaultRoute[] {
  return [
    {
      path: "/token",
      handler: (req, { url }) => {
        if (opts.basicUser !== undefined) {
          const want = `Basic ${btoa(`${opts.basicUser}:secret-pw`)}`;
          if (req.headers.get("authorization") !== want) return new Response("no", { status: 401 });
        }
        const scope = url.searchParams.get("scope") ?? "";
        return Response.json({ token: `tok:${scope}`, expires_in: 300 });
      },
    },
    {
      path: /^\/v2\/test\/app\//,
      handler: (req, ctx) => {
        const scope = "repository:test/app:pull";
        if (opts.alwaysReject || req.headers.get("authorization") !== `Bearer tok:${scope}`) {
          return new Response(null, {
            status: 401,
            headers: {
              "WWW-Authenticate":
                `Bearer realm="${ctx.origin}/token",service="fault-registry",scope="${scope}"`,
            },
          });
        }
        if (ctx.url.pathname.includes("/blobs/")) return blobResponse(req, BLOB);
        return manifestResponse(MANIFEST, MediaType.OCI_MANIFEST);
      },
    },
  ];
}

Deno.test("token auth: challenge, token with credentials, cached per scope", async () => {
  await using server = startFaultServer(tokenServerRoutes({ basicUser: "alice" }));
  const lookups: string[] = [];
  using c = client({
    credentials: {
      lookup: (registry) => {
        lookups.push(registry);
        return Promise.resolve({ kind: "basic", username: "alice", password: "secret-pw" });
      },
    },
  });
  await c.getManifest(ref(server));
  const body = await c.getBlob(ref(server), BLOB_DESC);
  assert.equal((await new Response(body).arrayBuffer()).byteLength, BLOB.length);
  await c.getManifest(ref(server));
  const tokenRequests = server.requests.filter((r) => new URL(r.url).pathname === "/token");
  assert.equal(tokenRequests.length, 1);
  assert.equal(new URL(tokenRequests[0]?.url ?? "").searchParams.get("service"), "fault-registry");
  assert.equal(new URL(tokenRequests[0]?.url ?? "").searchParams.get("scope"), "repository:test/app:pull");
  assert.ok(lookups.every((l) => l === server.host));
  // 1 challenged + 1 retried manifest, 1 blob, 1 manifest: all but the first carry the token
  assert.equal(server.requests.filter((r) => r.headers.authorization?.startsWith("Bearer ")).length, 3);
});

Deno.test("token auth: anonymous tokens work and a refused token is REGISTRY_UNAUTHORIZED after one refresh", async () => {
  await using server = startFaultServer(tokenServerRoutes({}));
  using c = client();
  await c.getManifest(ref(server));
  await using rejecting = startFaultServer(tokenServerRoutes({ alwaysReject: true }));
  await assert.rejects(
    c.getManifest(ref(rejecting)),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_UNAUTHORIZED"),
  );
  assert.equal(rejecting.requests.filter((r) => new URL(r.url).pathname === "/token").length, 1);
  await using needsLogin = startFaultServer(tokenServerRoutes({ basicUser: "bob" }));
  await assert.rejects(
    c.getManifest(ref(needsLogin)),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_UNAUTHORIZED"),
  );
});

Deno.test("basic auth challenge: credentials are sent, and missing ones are REGISTRY_UNAUTHORIZED", async () => {
  const want = `Basic ${btoa("carol:pw")}`;
  await using server = startFaultServer([{
    path: /^\/v2\/test\/app\//,
    handler: (req) =>
      req.headers.get("authorization") === want
        ? manifestResponse(MANIFEST, MediaType.OCI_MANIFEST)
        : new Response(null, { status: 401, headers: { "WWW-Authenticate": 'Basic realm="registry"' } }),
  }]);
  using withCreds = client({
    credentials: { lookup: () => Promise.resolve({ kind: "basic", username: "carol", password: "pw" }) },
  });
  assert.equal((await withCreds.getManifest(ref(server))).descriptor.digest, MANIFEST_DIGEST);
  using anonymous = client();
  await assert.rejects(
    anonymous.getManifest(ref(server)),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_UNAUTHORIZED"),
  );
});

// ---- redirects -----------------------------------------------------------------------------

const SECRET = "X-Amz-Signature=TOPSECRET123";

Deno.test("redirect to another origin drops Authorization and keeps signed query strings out of errors and logs", async () => {
  await using storage = startFaultServer([
    { path: "/ok", handler: (req) => blobResponse(req, BLOB) },
    { path: "/broken", handler: () => new Response("x", { status: 500 }) },
  ]);
  // "localhost" and "127.0.0.1" are different origins
  const storageOrigin = `http://localhost:${storage.port}`;
  await using server = startFaultServer([
    {
      path: `/v2/test/app/blobs/${BLOB_DIGEST}`,
      handler: (_req, { count }) =>
        redirectResponse(`${storageOrigin}/${count === 1 ? "ok" : "broken"}?${SECRET}`),
    },
    {
      path: /^\/v2\/test\/app\/manifests/,
      handler: () => redirectResponse(`/v2/test/app/manifests/x?${SECRET}`),
    },
  ]);
  const logs: string[] = [];
  using c = client({
    credentials: { lookup: () => Promise.resolve({ kind: "basic", username: "u", password: "p" }) },
    onLog: (l) => logs.push(l),
  });
  // force the basic scheme so an Authorization header is attached to registry requests
  await using auth = startFaultServer([{
    path: `/v2/test/app/blobs/${BLOB_DIGEST}`,
    handler: (req) =>
      req.headers.get("authorization") === null
        ? new Response(null, { status: 401, headers: { "WWW-Authenticate": 'Basic realm="r"' } })
        : redirectResponse(`${storageOrigin}/ok?${SECRET}`),
  }]);
  const got = await new Response(await c.getBlob(ref(auth), BLOB_DESC)).arrayBuffer();
  assert.equal(got.byteLength, BLOB.length);
  assert.ok(auth.requests.some((r) => r.headers.authorization !== undefined));
  assert.ok(storage.requests.length > 0);
  assert.ok(storage.requests.every((r) => r.headers.authorization === undefined), "Authorization leaked");

  await c.getBlob(ref(server), BLOB_DESC).then((s) => s.cancel());
  const err = await c.getBlob(ref(server), BLOB_DESC).then(() => undefined, (e: unknown) => e);
  assert.ok(isDangerzoneError(err, "REGISTRY_RETRY_EXHAUSTED"));
  const errText = `${err.message} ${err.hint ?? ""} ${String(err.cause)}`;
  assert.doesNotMatch(errText, /TOPSECRET/);
  assert.match(errText, /REDACTED/);
  const tooMany = await c.getManifest(ref(server)).then(() => undefined, (e: unknown) => e);
  assert.ok(isDangerzoneError(tooMany, "REGISTRY_REDIRECT"));
  assert.doesNotMatch(tooMany.message, /TOPSECRET/);
  assert.ok(logs.length > 0);
  for (const l of logs) assert.doesNotMatch(l, /TOPSECRET/);
});

Deno.test("redirect to plain HTTP on a non-loopback host is refused with REGISTRY_INSECURE", async () => {
  await using server = startFaultServer([{
    path: /manifests/,
    handler: () => redirectResponse(`http://registry.invalid/v2/x?${SECRET}`),
  }]);
  using c = client();
  await assert.rejects(c.getManifest(ref(server)), (e: unknown) => {
    assert.ok(isDangerzoneError(e, "REGISTRY_INSECURE"));
    assert.doesNotMatch(e.message, /TOPSECRET/);
    return true;
  });
});

// ---- blobs ---------------------------------------------------------------------------------

Deno.test("downloadBlob() writes a verified file via a temp file and reports progress", async () => {
  await using server = startFaultServer([blobRoute([])]);
  using c = client();
  await withTmp(async (dir) => {
    const dest = `${dir}/blob`;
    const progress: number[] = [];
    await c.downloadBlob(ref(server), BLOB_DESC, dest, { onProgress: (d) => progress.push(d) });
    assert.deepEqual(await Deno.readFile(dest), BLOB);
    assert.deepEqual(await listDir(dir), ["blob"]);
    assert.equal(progress.at(-1), BLOB.length);
  });
});

Deno.test("downloadBlob() resumes a dropped connection with Range from where it stopped", async () => {
  await using server = startFaultServer([
    blobRoute([{ kind: "drop", after: 100_000 }, { kind: "drop", after: 50_000 }]),
  ]);
  using c = client();
  await withTmp(async (dir) => {
    await c.downloadBlob(ref(server), BLOB_DESC, `${dir}/blob`);
    assert.deepEqual(await Deno.readFile(`${dir}/blob`), BLOB);
  });
  const ranges = server.requests.map((r) => r.headers.range);
  assert.deepEqual(ranges, [undefined, "bytes=100000-", "bytes=150000-"]);
});

Deno.test("getBlob() resumes after a 200 reply to Range by discarding the prefix, never repeating bytes", async () => {
  await using server = startFaultServer([
    blobRoute([{ kind: "drop", after: 70_000 }, { kind: "ignoreRange" }]),
  ]);
  using c = client();
  const got = new Uint8Array(await new Response(await c.getBlob(ref(server), BLOB_DESC)).arrayBuffer());
  assert.deepEqual(got, BLOB);
  assert.equal(server.requests[1]?.headers.range, "bytes=70000-");
});

Deno.test("getBlob() refuses a 200 reply to Range beyond the discard limit with REGISTRY_PROTOCOL", async () => {
  await using server = startFaultServer([
    blobRoute([{ kind: "drop", after: 70_000 }, { kind: "ignoreRange" }]),
  ]);
  using c = client({ maxRangeDiscard: 1000 });
  await assert.rejects(
    new Response(await c.getBlob(ref(server), BLOB_DESC)).arrayBuffer(),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_PROTOCOL"),
  );
});

Deno.test("getBlob() refuses a wrong Content-Range start with REGISTRY_PROTOCOL", async () => {
  await using server = startFaultServer([
    blobRoute([{ kind: "drop", after: 70_000 }, { kind: "wrongRangeStart", start: 60_000 }]),
  ]);
  using c = client();
  await assert.rejects(
    new Response(await c.getBlob(ref(server), BLOB_DESC)).arrayBuffer(),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_PROTOCOL"),
  );
});

/** Reads `stream` to its end; records whether it closed cleanly (it must not when the bytes are wrong). */
async function drain(
  stream: ReadableStream<Uint8Array>,
  mode: "byob" | "default",
): Promise<{ chunks: Uint8Array[]; closed: () => boolean }> {
  let closed = false;
  const chunks: Uint8Array[] = [];
  const result = { chunks, closed: () => closed };
  if (mode === "default") {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } else {
    const reader = stream.getReader({ mode: "byob" });
    let buffer = new ArrayBuffer(1024 * 1024);
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      chunks.push(value.slice());
      buffer = value.buffer;
    }
  }
  closed = true;
  return result;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

Deno.test("getBlob() is a self-verifying byte stream: BYOB reads into the reader's buffer, default readers may keep chunks", async () => {
  await using server = startFaultServer([bigRoute(() => ({ kind: "none" }))]);
  using c = client();
  const byob = await c.getBlob(ref(server), BIG_DESC);
  assert.ok(isSelfVerifying(byob, BIG_DESC));
  assert.ok(!isSelfVerifying(byob, { ...BIG_DESC, size: BIG_DESC.size + 1 }));
  assert.deepEqual(concat((await drain(byob, "byob")).chunks), BIG);
  // a default reader holds every chunk until the end: the reused buffer must not overwrite them
  const held = await drain(await c.getBlob(ref(server), BIG_DESC), "default");
  assert.ok(held.chunks.length >= 3, `${held.chunks.length} chunks`);
  assert.ok(held.chunks.every((ch) => ch.byteLength <= 1024 * 1024));
  assert.deepEqual(concat(held.chunks), BIG);
});

Deno.test("getBlob() fails wrong bytes with DIGEST_MISMATCH and never closes cleanly, for BYOB and default readers", async () => {
  await using server = startFaultServer([blobRoute(() => ({ kind: "wrongBytes" }))]);
  using c = client();
  for (const mode of ["byob", "default"] as const) {
    let closedCleanly = false;
    await assert.rejects(
      c.getBlob(ref(server), BLOB_DESC).then(async (s) => {
        closedCleanly = (await drain(s, mode)).closed();
      }),
      (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"),
    );
    assert.equal(closedCleanly, false, mode);
  }
});

Deno.test("getBlob() stops an endless body with SIZE_MISMATCH and releases the connection", async () => {
  await using server = startFaultServer([blobRoute(() => ({ kind: "endless" }))]);
  using c = client();
  for (const mode of ["byob", "default"] as const) {
    await assert.rejects(
      c.getBlob(ref(server), BLOB_DESC).then((s) => drain(s, mode)),
      (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"),
    );
  }
});

Deno.test("downloadBlob() rejects wrong bytes with DIGEST_MISMATCH and leaves no file behind", async () => {
  await using server = startFaultServer([blobRoute(() => ({ kind: "wrongBytes" }))]);
  using c = client();
  await withTmp(async (dir) => {
    await assert.rejects(
      c.downloadBlob(ref(server), BLOB_DESC, `${dir}/blob`),
      (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"),
    );
    await assert.rejects(
      c.downloadBlob(ref(server), BLOB_DESC, `${dir}/blob`, { partialFile: "resumable" }),
      (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"),
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("downloadBlob() stops an endless body with SIZE_MISMATCH", async () => {
  await using server = startFaultServer([blobRoute(() => ({ kind: "endless" }))]);
  using c = client();
  await withTmp(async (dir) => {
    await assert.rejects(
      c.downloadBlob(ref(server), BLOB_DESC, `${dir}/blob`),
      (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"),
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("getBlob() survives a slow body and resumes a stalled one after the idle timeout", async () => {
  await using server = startFaultServer([
    blobRoute([{ kind: "slow", chunk: 60_000, delayMs: 20 }, { kind: "stall", after: 40_000 }]),
  ]);
  using c = client({ idleTimeoutMs: 300 });
  const a = new Uint8Array(await new Response(await c.getBlob(ref(server), BLOB_DESC)).arrayBuffer());
  assert.deepEqual(a, BLOB);
  const b = new Uint8Array(await new Response(await c.getBlob(ref(server), BLOB_DESC)).arrayBuffer());
  assert.deepEqual(b, BLOB);
  assert.equal(server.requests[2]?.headers.range, "bytes=40000-");
});

Deno.test("downloadBlob() resumable: keeps .partial on a dropped run and resumes it after re-hashing", async () => {
  await using server = startFaultServer([
    blobRoute((
      count,
    ) => (count <= 3 ? { kind: "drop", after: count === 1 ? 120_000 : 0 } : { kind: "none" })),
  ]);
  using c = client({ retry: { attempts: 1, baseDelayMs: 1 } });
  await withTmp(async (dir) => {
    const dest = `${dir}/blob`;
    await assert.rejects(
      c.downloadBlob(ref(server), BLOB_DESC, dest, { partialFile: "resumable" }),
      (e: unknown) => isDangerzoneError(e, "SHORT_READ"),
    );
    assert.deepEqual(await listDir(dir), ["blob.partial"]);
    assert.equal((await Deno.stat(`${dest}.partial`)).size, 120_000);
    // second run: request 3 drops at once (one resume allowed), request 4 completes
    await c.downloadBlob(ref(server), BLOB_DESC, dest, { partialFile: "resumable" });
    assert.deepEqual(await Deno.readFile(dest), BLOB);
    assert.deepEqual(await listDir(dir), ["blob"]);
  });
  assert.equal(server.requests.at(-1)?.headers.range, "bytes=120000-");
});

Deno.test("downloadBlob() resumable: a corrupt .partial is discarded and the download restarts once", async () => {
  await using server = startFaultServer([blobRoute([])]);
  using c = client();
  await withTmp(async (dir) => {
    const dest = `${dir}/blob`;
    const bad = BLOB.slice(0, 50_000);
    bad[10] = (bad[10] ?? 0) ^ 0xff;
    await Deno.writeFile(`${dest}.partial`, bad);
    await c.downloadBlob(ref(server), BLOB_DESC, dest, { partialFile: "resumable" });
    assert.deepEqual(await Deno.readFile(dest), BLOB);
  });
  assert.deepEqual(server.requests.map((r) => r.headers.range), ["bytes=50000-", undefined]);
});

Deno.test("hasBlob() is true on 200 and false on 404", async () => {
  await using server = startFaultServer([blobRoute([])]);
  using c = client();
  assert.equal(await c.hasBlob(ref(server), BLOB_DESC), true);
  const other = { ...BLOB_DESC, digest: `sha256:${"9".repeat(64)}` as Digest };
  assert.equal(await c.hasBlob(ref(server), other), false);
});

// ---- tags and referrers ----------------------------------------------------------------------

Deno.test("listTags() follows Link pagination", async () => {
  await using server = startFaultServer([{
    path: "/v2/test/app/tags/list",
    handler: (_req, { url }) => {
      const last = url.searchParams.get("last");
      if (last === null) {
        return Response.json({ name: "test/app", tags: ["a", "b"] }, {
          headers: { Link: '</v2/test/app/tags/list?last=b&n=2>; rel="next"' },
        });
      }
      if (last === "b") {
        return Response.json({ name: "test/app", tags: ["c", "d"] }, {
          headers: { Link: '</v2/test/app/tags/list?last=d&n=2>; rel="next"' },
        });
      }
      return Response.json({ name: "test/app", tags: ["e"] });
    },
  }, {
    path: "/v2/test/evil/tags/list",
    handler: () =>
      Response.json({ tags: ["x"] }, { headers: { Link: '<http://elsewhere.invalid/x>; rel="next"' } }),
  }]);
  using c = client();
  assert.deepEqual(await c.listTags(ref(server), { pageSize: 2 }), ["a", "b", "c", "d", "e"]);
  assert.equal(new URL(server.requests[0]?.url ?? "").searchParams.get("n"), "2");
  await assert.rejects(
    c.listTags(ref(server, "test/evil")),
    (e: unknown) => isDangerzoneError(e, "REGISTRY_PROTOCOL"),
  );
});

function referrerIndex(types: string[]): Uint8Array<ArrayBuffer> {
  return enc(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: types.map((t, i) => ({
      mediaType: MediaType.OCI_MANIFEST,
      digest: `sha256:${String(i).repeat(64)}`,
      size: 100 + i,
      artifactType: t,
    })),
  }));
}

Deno.test("referrers() uses the OCI 1.1 API and filters by artifactType", async () => {
  await using server = startFaultServer([{
    path: `/v2/test/app/referrers/${MANIFEST_DIGEST}`,
    handler: () =>
      manifestResponse(
        referrerIndex([MediaType.SIGSTORE_BUNDLE, "application/spdx+json"]),
        MediaType.OCI_INDEX,
      ),
  }]);
  using c = client();
  assert.equal((await c.referrers(ref(server), MANIFEST_DIGEST)).length, 2);
  const only = await c.referrers(ref(server), MANIFEST_DIGEST, { artifactType: MediaType.SIGSTORE_BUNDLE });
  assert.equal(only.length, 1);
  assert.equal(only[0]?.artifactType, MediaType.SIGSTORE_BUNDLE);
  assert.equal(
    new URL(server.requests[1]?.url ?? "").searchParams.get("artifactType"),
    MediaType.SIGSTORE_BUNDLE,
  );
});

Deno.test("referrers() falls back to the sha256-<hex> tag schema when the API is missing", async () => {
  await using server = startFaultServer([{
    path: `/v2/test/app/manifests/sha256-${digestHex(MANIFEST_DIGEST)}`,
    handler: () => manifestResponse(referrerIndex([MediaType.SIGSTORE_BUNDLE]), MediaType.OCI_INDEX),
  }]);
  using c = client();
  const found = await c.referrers(ref(server), MANIFEST_DIGEST);
  assert.equal(found.length, 1);
  await using empty = startFaultServer([]);
  assert.deepEqual(await c.referrers(ref(empty), MANIFEST_DIGEST), []);
});

// ---- uploads -------------------------------------------------------------------------------

Deno.test("putBlob() uploads monolithically and in chunks; putManifest() pushes the exact bytes", async () => {
  const blobs = new Map<string, Uint8Array>();
  const sessions = new Map<string, Uint8Array[]>();
  let manifestBody: Uint8Array | undefined;
  let manifestType: string | null = null;
  await using server = startFaultServer([
    {
      method: "HEAD",
      path: /^\/v2\/test\/app\/blobs\/sha256:/,
      handler: (_req, { url }) =>
        new Response(null, { status: blobs.has(url.pathname.split("/").at(-1) ?? "") ? 200 : 404 }),
    },
    {
      method: "POST",
      path: "/v2/test/app/blobs/uploads/",
      handler: () => {
        const id = crypto.randomUUID();
        sessions.set(id, []);
        return new Response(null, {
          status: 202,
          headers: { Location: `/v2/test/app/blobs/uploads/${id}?_state=s1` },
        });
      },
    },
    {
      method: "PATCH",
      path: /^\/v2\/test\/app\/blobs\/uploads\//,
      handler: async (req, { url }) => {
        const id = url.pathname.split("/").at(-1) ?? "";
        sessions.get(id)?.push(new Uint8Array(await req.arrayBuffer()));
        return new Response(null, {
          status: 202,
          headers: { Location: `/v2/test/app/blobs/uploads/${id}?_state=s2` },
        });
      },
    },
    {
      method: "PUT",
      path: /^\/v2\/test\/app\/blobs\/uploads\//,
      handler: async (req, { url }) => {
        const id = url.pathname.split("/").at(-1) ?? "";
        const parts = sessions.get(id) ?? [];
        parts.push(new Uint8Array(await req.arrayBuffer()));
        const all = new Uint8Array(await new Blob(parts.map((p) => p.slice())).arrayBuffer());
        blobs.set(url.searchParams.get("digest") ?? "", all);
        return new Response(null, { status: 201 });
      },
    },
    {
      method: "PUT",
      path: /^\/v2\/test\/app\/manifests\//,
      handler: async (req) => {
        manifestBody = new Uint8Array(await req.arrayBuffer());
        manifestType = req.headers.get("content-type");
        return new Response(null, { status: 201 });
      },
    },
  ]);
  using c = client();
  await c.putBlob(ref(server), BLOB_DESC, BLOB, { chunkSize: 100_000 });
  assert.deepEqual(blobs.get(BLOB_DIGEST), BLOB);
  const small = enc("hello");
  const smallDesc: Descriptor = { mediaType: "x", digest: await sha256Digest(small), size: small.length };
  await c.putBlob(ref(server), smallDesc, small);
  assert.deepEqual(blobs.get(smallDesc.digest), small);
  const posts = server.requests.filter((r) => r.method === "POST").length;
  await c.putBlob(ref(server), smallDesc, small); // already there: no new upload
  assert.equal(server.requests.filter((r) => r.method === "POST").length, posts);
  await assert.rejects(
    c.putBlob(ref(server), smallDesc, enc("HELLO")),
    (e: unknown) => isDangerzoneError(e, "DIGEST_MISMATCH"),
  );
  const desc = await c.putManifest(ref(server), MANIFEST, { tag: "v1" });
  assert.equal(desc.digest, MANIFEST_DIGEST);
  assert.deepEqual(manifestBody, MANIFEST);
  assert.equal(manifestType, MediaType.OCI_MANIFEST);
});

Deno.test("store() exposes one repository as a ContentStore", async () => {
  await using server = startFaultServer([manifestRoute, blobRoute([])]);
  using c = client();
  const store = c.store(ref(server));
  const desc = await store.resolve(ref(server));
  assert.deepEqual(await store.getManifest(desc), MANIFEST);
  const blob = await new Response(await store.getBlob(BLOB_DESC)).arrayBuffer();
  assert.equal(blob.byteLength, BLOB.length);
  assert.equal(await store.hasBlob(BLOB_DESC), true);
});

// ---- buffering: the download path fills 1 MiB hand-off buffers written on a worker thread ----

/** Random bytes (getRandomValues fills at most 64 KiB per call). */
function randomBytes(length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let off = 0; off < length; off += 65_536) crypto.getRandomValues(out.subarray(off, off + 65_536));
  return out;
}

const BIG = randomBytes(5 * 1024 * 1024 + 12_345);
const BIG_DESC: Descriptor = {
  mediaType: "application/vnd.oci.image.layer.v1.tar",
  digest: await sha256Digest(BIG),
  size: BIG.length,
};

function bigRoute(faults: (count: number) => BlobFault): FaultRoute {
  return {
    path: `/v2/test/app/blobs/${BIG_DESC.digest}`,
    handler: (req, { count }) => blobResponse(req, BIG, faults(count)),
  };
}

Deno.test("downloadBlob() writes exactly the bytes across buffer boundaries, resuming drops at unaligned offsets", async () => {
  // drops inside the first buffer, just past a buffer boundary, and in the middle of the last one
  const drops = [700_001, 1024 * 1024 + 3, 5 * 1024 * 1024 + 5];
  await using server = startFaultServer([
    bigRoute((count) => {
      const after = drops[count - 1];
      if (after === undefined) return { kind: "none" };
      const start = count === 1 ? 0 : drops[count - 2] ?? 0;
      return { kind: "drop", after: after - start };
    }),
  ]);
  using c = client();
  await withTmp(async (dir) => {
    const progress: number[] = [];
    await c.downloadBlob(ref(server), BIG_DESC, `${dir}/blob`, { onProgress: (d) => progress.push(d) });
    const got = await Deno.readFile(`${dir}/blob`);
    assert.equal(got.length, BIG.length);
    assert.ok(got.every((b, i) => b === BIG[i]), "every byte is the byte the server sent at that offset");
    assert.deepEqual(await listDir(dir), ["blob"]);
    assert.equal(progress.at(-1), BIG.length);
    assert.ok(progress.every((d, i) => i === 0 || d >= (progress[i - 1] ?? 0)), "progress never goes back");
  });
  assert.deepEqual(
    server.requests.map((r) => r.headers.range),
    [undefined, ...drops.map((d) => `bytes=${d}-`)],
  );
});

Deno.test("downloadBlob() resumable: a multi-buffer .partial keeps every byte received and resumes after it", async () => {
  const cut = 2 * 1024 * 1024 + 777; // not on a buffer boundary: the half-filled buffer must reach the file
  await using server = startFaultServer([
    // run 1: a drop after `cut`, then a resume that drops at once (one resume allowed): SHORT_READ
    bigRoute((count) => (count <= 2 ? { kind: "drop", after: count === 1 ? cut : 0 } : { kind: "none" })),
  ]);
  using c = client({ retry: { attempts: 1, baseDelayMs: 1 } });
  await withTmp(async (dir) => {
    const dest = `${dir}/blob`;
    await assert.rejects(
      c.downloadBlob(ref(server), BIG_DESC, dest, { partialFile: "resumable" }),
      (e: unknown) => isDangerzoneError(e, "SHORT_READ"),
    );
    const partial = await Deno.readFile(`${dest}.partial`);
    assert.equal(partial.length, cut);
    assert.ok(partial.every((b, i) => b === BIG[i]));
    await c.downloadBlob(ref(server), BIG_DESC, dest, { partialFile: "resumable" });
    const got = await Deno.readFile(dest);
    assert.ok(got.length === BIG.length && got.every((b, i) => b === BIG[i]));
    assert.deepEqual(await listDir(dir), ["blob"]);
  });
  assert.equal(server.requests.at(-1)?.headers.range, `bytes=${cut}-`);
});

Deno.test("downloadBlob() with a lying descriptor size fails SIZE_MISMATCH under buffering and leaves no file", async () => {
  await using server = startFaultServer([bigRoute(() => ({ kind: "none" }))]);
  using c = client({ retry: { attempts: 1 } });
  await withTmp(async (dir) => {
    await assert.rejects(
      c.downloadBlob(ref(server), { ...BIG_DESC, size: BIG.length - 1 }, `${dir}/blob`),
      (e: unknown) => isDangerzoneError(e, "SIZE_MISMATCH"),
    );
    assert.deepEqual(await listDir(dir), []);
  });
});
