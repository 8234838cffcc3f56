/**
 * The registry client against the real CNCF distribution registry (2.8) in its four modes: plain HTTP,
 * TLS with a test CA, htpasswd basic auth and token auth. Images are pushed with skopeo preserving
 * digests, so every digest the client computes is compared with one a different tool produced.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { parseDigest } from "../../src/oci/digest.ts";
import { parseManifest } from "../../src/oci/manifest.ts";
import { parsePlatform, selectPlatform } from "../../src/oci/platform.ts";
import { parseReference } from "../../src/oci/reference.ts";
import {
  createCredentialResolver,
  RegistryClient,
  type RegistryClientOptions,
  Transport,
} from "../../src/registry/mod.ts";
import {
  buildBusyboxImage,
  buildMultiArchImage,
  type BuiltImage,
  type BuiltIndex,
  pushImage,
  tagManifest,
} from "../_helpers/images.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { type RegistryMode, type RunningRegistry, startRegistry } from "../_helpers/registry.ts";
import { pumpBytes } from "../_helpers/tcp_pump.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<DangerzoneError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DangerzoneError, `expected DangerzoneError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes a containers auth.json naming the registry with the given password. */
async function writeAuthFile(path: string, host: string, username: string, password: string): Promise<void> {
  await Deno.writeTextFile(
    path,
    JSON.stringify({ auths: { [host]: { auth: btoa(`${username}:${password}`) } } }),
  );
}

interface Fixture {
  reg: RunningRegistry;
  img: BuiltImage;
  idx: BuiltIndex;
  /** Client options that reach this registry as a logged-in user would. */
  options: RegistryClientOptions;
  dir: string;
}

async function withFixture(
  mode: RegistryMode,
  body: (fx: Fixture) => Promise<void>,
): Promise<void> {
  await using dir = makeTempDir(`client-${mode}`);
  await using reg = await startRegistry({ mode });
  const [img, idx] = await Promise.all([
    buildBusyboxImage(join(dir.path, "bb"), { text: `image for ${mode}` }),
    buildMultiArchImage(join(dir.path, "multi")),
  ]);
  await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
  await pushImage(idx, reg, { repository: "sandbox/multi", tag: "1.0" });
  const options: RegistryClientOptions = { retry: { attempts: 1 } };
  if (reg.caCertPem !== undefined) options.caCerts = [reg.caCertPem];
  if (reg.username !== undefined && reg.password !== undefined) {
    const authFile = join(dir.path, "auth.json");
    await writeAuthFile(authFile, reg.host, reg.username, reg.password);
    options.credentials = createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } });
  }
  await body({ reg, img, idx, options, dir: dir.path });
}

/**
 * Distribution 2.8 ignores `n` and `last` on tags/list. This shim forwards every request to the real
 * registry (auth headers and challenges pass through untouched) and paginates tags/list answers the way
 * the distribution spec (and distribution 3) does: lexical order, `n` per page, a `Link: <…>; rel="next"`.
 */
function startPaginatingShim(reg: RunningRegistry): AsyncDisposable & { host: string; pages: string[] } {
  const pages: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const headers = new Headers(req.headers);
    headers.delete("host");
    const upstream = await reg.fetch(`${url.pathname}${url.search}`, {
      method: req.method,
      headers,
      ...(req.body === null ? {} : { body: await req.arrayBuffer() }),
    });
    const listMatch = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    if (listMatch === null || upstream.status !== 200) {
      return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
    }
    pages.push(url.search.slice(1));
    const full: unknown = await upstream.json();
    assert.ok(typeof full === "object" && full !== null && "tags" in full && Array.isArray(full.tags));
    const sorted = full.tags.filter((x): x is string => typeof x === "string").sort();
    const n = Number(url.searchParams.get("n") ?? sorted.length);
    const last = url.searchParams.get("last");
    const rest = last === null ? sorted : sorted.filter((x) => x > last);
    const page = rest.slice(0, n);
    const out = new Headers({ "content-type": "application/json" });
    const final = page.at(-1);
    if (rest.length > n && final !== undefined) {
      out.set("link", `</v2/${listMatch[1]}/tags/list?n=${n}&last=${final}>; rel="next"`);
    }
    return new Response(JSON.stringify({ name: listMatch[1], tags: page }), { status: 200, headers: out });
  });
  return {
    host: `127.0.0.1:${server.addr.port}`,
    pages,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const MODES = ["plain", "tls", "htpasswd", "token"] as const satisfies RegistryMode[];

for (const mode of MODES) {
  Deno.test(`RegistryClient against the real ${mode} registry`, async (t) => {
    await withFixture(mode, async ({ reg, img, idx, options, dir }) => {
      const app = (suffix: string) => parseReference(`${reg.host}/sandbox/app${suffix}`);
      const multi = (suffix: string) => parseReference(`${reg.host}/sandbox/multi${suffix}`);

      await t.step("`resolve()` returns the digest skopeo pushed", async () => {
        using client = new RegistryClient(options);
        const desc = await client.resolve(app(":v1"));
        assert.equal(desc.digest, img.digest);
        assert.equal(desc.size, img.size);
        assert.equal(desc.mediaType, OCI_MANIFEST);
      });

      await t.step("`getManifest()` by tag and by digest returns the same exact bytes", async () => {
        using client = new RegistryClient(options);
        const byTag = await client.getManifest(app(":v1"));
        const byDigest = await client.getManifest(app(`@${img.digest}`));
        assert.equal(`sha256:${sha256Hex(byTag.raw)}`, img.digest);
        assert.deepEqual(byDigest.raw, byTag.raw);
        assert.deepEqual(byDigest.descriptor, byTag.descriptor);
        const both = await client.getManifest(app(`:v1@${img.digest}`));
        assert.equal(both.descriptor.digest, img.digest);
        const parsed = parseManifest(byTag.raw, byTag.descriptor.mediaType);
        assert.equal(parsed.kind, "manifest");
        if (parsed.kind === "manifest") {
          assert.equal(parsed.config.digest, img.configDigest);
          assert.deepEqual(parsed.layers.map((l) => l.digest), img.layerDigests);
        }
      });

      await t.step(
        "`getManifest()` of an index, then platform selection, fetches each platform",
        async () => {
          using client = new RegistryClient(options);
          const index = await client.getManifest(multi(":1.0"));
          assert.equal(index.descriptor.digest, idx.digest);
          assert.equal(index.descriptor.mediaType, OCI_INDEX);
          const parsed = parseManifest(index.raw, index.descriptor.mediaType);
          assert.equal(parsed.kind, "index");
          if (parsed.kind !== "index") return;
          for (const p of idx.platforms) {
            const entry = selectPlatform(parsed, parsePlatform(p.platform));
            assert.equal(entry.digest, p.digest);
            const m = await client.getManifest(multi(`@${entry.digest}`));
            assert.equal(m.descriptor.digest, p.digest);
            assert.equal(m.descriptor.size, p.size);
          }
          const err = await rejectsWithCode(
            Promise.resolve().then(() => selectPlatform(parsed, parsePlatform("linux/s390x"))),
            "PLATFORM_NOT_FOUND",
          );
          assert.match(err.message, /linux\/amd64, linux\/arm64/);
        },
      );

      await t.step(
        "`downloadBlob()` writes verified config and layer blobs and leaves no temp files",
        async () => {
          using client = new RegistryClient(options);
          const { raw, descriptor } = await client.getManifest(app(":v1"));
          const parsed = parseManifest(raw, descriptor.mediaType);
          assert.equal(parsed.kind, "manifest");
          if (parsed.kind !== "manifest") return;
          const out = join(dir, `dl-${crypto.randomUUID()}`);
          await Deno.mkdir(out);
          for (const d of [parsed.config, ...parsed.layers]) {
            const dest = join(out, d.digest.slice(7));
            await client.downloadBlob(app(":v1"), d, dest);
            const bytes = await Deno.readFile(dest);
            assert.equal(bytes.length, d.size);
            assert.equal(sha256Hex(bytes), d.digest.slice(7));
          }
          const names = [];
          for await (const e of Deno.readDir(out)) names.push(e.name);
          assert.deepEqual(
            names.sort(),
            [parsed.config, ...parsed.layers].map((d) => d.digest.slice(7)).sort(),
          );
        },
      );

      await t.step(
        "`downloadBlob()` with a wrong size fails SIZE_MISMATCH and leaves nothing behind",
        async () => {
          using client = new RegistryClient(options);
          const layer = img.layerDigests[0];
          assert.ok(layer !== undefined);
          const size = (await Deno.stat(join(img.layoutDir, "blobs", "sha256", layer.slice(7)))).size;
          const out = join(dir, `dl-${crypto.randomUUID()}`);
          await Deno.mkdir(out);
          const dest = join(out, "layer");
          // the registry sends more bytes than the descriptor allows
          await rejectsWithCode(
            client.downloadBlob(app(":v1"), {
              mediaType: "application/octet-stream",
              digest: layer,
              size: size - 1,
            }, dest),
            "SIZE_MISMATCH",
          );
          const left = [];
          for await (const e of Deno.readDir(out)) left.push(e.name);
          assert.deepEqual(left, []);
        },
      );

      await t.step("`getBlob()` streams verified bytes; `hasBlob()` tells present from absent", async () => {
        using client = new RegistryClient(options);
        const cfg = {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: img.configDigest,
          size: 0,
        };
        cfg.size = (await Deno.stat(join(img.layoutDir, "blobs", "sha256", img.configDigest.slice(7)))).size;
        const stream = await client.getBlob(app(":v1"), cfg);
        const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
        assert.equal(`sha256:${sha256Hex(bytes)}`, img.configDigest);
        assert.equal(await client.hasBlob(app(":v1"), cfg), true);
        const absent = { ...cfg, digest: idx.digest }; // a manifest digest is not a blob of sandbox/app
        assert.equal(await client.hasBlob(app(":v1"), absent), false);
      });

      await t.step(
        "`getManifest()` of a missing tag, digest or repository fails REGISTRY_NOT_FOUND",
        async () => {
          using client = new RegistryClient(options);
          await rejectsWithCode(client.getManifest(app(":no-such-tag")), "REGISTRY_NOT_FOUND");
          await rejectsWithCode(client.getManifest(app(`@sha256:${"0".repeat(64)}`)), "REGISTRY_NOT_FOUND");
          await rejectsWithCode(
            client.getManifest(parseReference(`${reg.host}/sandbox/nothing-here:v1`)),
            "REGISTRY_NOT_FOUND",
          );
        },
      );

      await t.step("`listTags()` gets every tag from distribution 2.8, which ignores `n`", async () => {
        const repo = `sandbox/tags-${crypto.randomUUID().slice(0, 8)}`;
        await pushImage(img, reg, { repository: repo, tag: "v1" });
        const extra = Array.from({ length: 6 }, (_, i) => `t${i}`);
        await tagManifest(reg, { repository: repo, from: "v1", tags: extra });
        using client = new RegistryClient(options);
        const tags = await client.listTags(parseReference(`${reg.host}/${repo}`), { pageSize: 2 });
        assert.deepEqual([...tags].sort(), [...extra, "v1"].sort());
      });

      await t.step(
        "`listTags()` follows Link pagination (spec pagination in front of the real registry)",
        async () => {
          const repo = `sandbox/tags-${crypto.randomUUID().slice(0, 8)}`;
          await pushImage(img, reg, { repository: repo, tag: "v1" });
          const extra = Array.from({ length: 6 }, (_, i) => `t${i}`);
          await tagManifest(reg, { repository: repo, from: "v1", tags: extra });
          await using shim = startPaginatingShim(reg);
          const shimOptions: RegistryClientOptions = { ...options };
          if (reg.username !== undefined && reg.password !== undefined) {
            const authFile = join(dir, `auth-${shim.host.replace(":", "_")}.json`);
            await writeAuthFile(authFile, shim.host, reg.username, reg.password);
            shimOptions.credentials = createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } });
          }
          const lines: string[] = [];
          using client = new RegistryClient({ ...shimOptions, onLog: (l) => lines.push(l) });
          const tags = await client.listTags(parseReference(`${shim.host}/${repo}`), { pageSize: 2 });
          assert.deepEqual(tags, [...extra, "v1"].sort(), "in page order, each once");
          assert.deepEqual(shim.pages, ["n=2", "n=2&last=t1", "n=2&last=t3", "n=2&last=t5"]);
          assert.equal(lines.filter((l) => /tags\/list.* -> 200/.test(l)).length, 4, lines.join("\n"));
        },
      );

      await t.step(
        "`referrers()` falls back to the tag schema on distribution 2.8 (no referrers API)",
        async () => {
          using client = new RegistryClient(options);
          assert.deepEqual(await client.referrers(app(""), img.digest), []);
          // a referrers-tag index sha256-<hex> listing one artifact
          const entry = {
            mediaType: OCI_MANIFEST,
            digest: img.digest,
            size: img.size,
            artifactType: "application/x.test",
          };
          const index = new TextEncoder().encode(
            JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [entry] }),
          );
          const subject = `sha256-${"ab".repeat(32)}`;
          const auth = await reg.authHeaders("sandbox/app", ["pull", "push"]);
          const put = await reg.fetch(`/v2/sandbox/app/manifests/${subject}`, {
            method: "PUT",
            headers: { ...auth, "content-type": OCI_INDEX },
            body: index,
          });
          await put.body?.cancel();
          assert.equal(put.status, 201);
          const found = await client.referrers(app(""), parseDigest(`sha256:${"ab".repeat(32)}`));
          assert.deepEqual(found.map((d) => [d.digest, d.artifactType]), [[
            img.digest,
            "application/x.test",
          ]]);
        },
      );
    });
  });
}

Deno.test("RegistryClient with htpasswd auth: exact-host credentials from auth files; none or wrong -> REGISTRY_UNAUTHORIZED", async (t) => {
  await using dir = makeTempDir("client-htpasswd");
  await using reg = await startRegistry({ mode: "htpasswd", username: "alice", password: "correct-horse" });
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
  const ref = parseReference(`${reg.host}/sandbox/app:v1`);

  await t.step("REGISTRY_AUTH_FILE credentials work", async () => {
    const authFile = join(dir.path, "auth-ok.json");
    await writeAuthFile(authFile, reg.host, "alice", "correct-horse");
    using client = new RegistryClient({
      credentials: createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } }),
    });
    assert.equal((await client.resolve(ref)).digest, img.digest);
  });

  await t.step("docker config.json (DOCKER_CONFIG) credentials work", async () => {
    const dockerConfig = join(dir.path, "docker");
    await Deno.mkdir(dockerConfig, { recursive: true });
    await writeAuthFile(join(dockerConfig, "config.json"), reg.host, "alice", "correct-horse");
    using client = new RegistryClient({
      credentials: createCredentialResolver({
        env: { DOCKER_CONFIG: dockerConfig, HOME: join(dir.path, "nohome") },
      }),
    });
    assert.equal((await client.resolve(ref)).digest, img.digest);
  });

  await t.step("no credentials: REGISTRY_UNAUTHORIZED", async () => {
    using client = new RegistryClient({ credentials: createCredentialResolver({ env: {} }) });
    await rejectsWithCode(client.resolve(ref), "REGISTRY_UNAUTHORIZED");
  });

  await t.step("wrong password: REGISTRY_UNAUTHORIZED, and the password is in no message", async () => {
    const authFile = join(dir.path, "auth-bad.json");
    await writeAuthFile(authFile, reg.host, "alice", "wrong-battery");
    using client = new RegistryClient({
      credentials: createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } }),
    });
    const err = await rejectsWithCode(client.resolve(ref), "REGISTRY_UNAUTHORIZED");
    assert.ok(!`${err.message} ${err.hint ?? ""}`.includes("wrong-battery"));
    assert.ok(!err.message.includes(btoa("alice:wrong-battery")));
  });

  await t.step("credentials for another host are not used (no prefix or substring match)", async () => {
    const authFile = join(dir.path, "auth-other.json");
    await Deno.writeTextFile(
      authFile,
      JSON.stringify({
        auths: {
          "127.0.0.1": { auth: btoa("alice:correct-horse") },
          [`${reg.host}0`]: { auth: btoa("alice:correct-horse") },
        },
      }),
    );
    using client = new RegistryClient({
      credentials: createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } }),
    });
    await rejectsWithCode(client.resolve(ref), "REGISTRY_UNAUTHORIZED");
  });
});

Deno.test("RegistryClient with token auth: scoped tokens, cached per scope; refusals -> REGISTRY_UNAUTHORIZED", async (t) => {
  await using dir = makeTempDir("client-token");
  await using reg = await startRegistry({
    mode: "token",
    username: "bob",
    password: "token-pass",
    // everything but sandbox/private
    grant: (account, requested) =>
      account === "bob" && !requested.name.startsWith("sandbox/private") ? requested.actions : [],
  });
  const ts = reg.tokenServer;
  assert.ok(ts !== undefined);
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
  const ref = parseReference(`${reg.host}/sandbox/app:v1`);
  const authFile = join(dir.path, "auth.json");
  await writeAuthFile(authFile, reg.host, "bob", "token-pass");
  const goodCreds = createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } });

  await t.step("a pull-scoped token is fetched once and reused", async () => {
    using client = new RegistryClient({ credentials: goodCreds });
    const before = ts.requests.length;
    const { raw, descriptor } = await client.getManifest(ref);
    assert.equal(descriptor.digest, img.digest);
    const parsed = parseManifest(raw, descriptor.mediaType);
    assert.equal(parsed.kind, "manifest");
    if (parsed.kind !== "manifest") return;
    const stream = await client.getBlob(ref, parsed.config);
    await new Response(stream).arrayBuffer();
    assert.equal((await client.resolve(ref)).digest, img.digest);
    const mine = ts.requests.slice(before);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    assert.deepEqual(mine[0]?.scopes, ["repository:sandbox/app:pull"]);
    assert.equal(mine[0]?.account, "bob");
    assert.equal(mine[0]?.status, 200);
  });

  await t.step("a repository outside the granted scope: REGISTRY_UNAUTHORIZED", async () => {
    using client = new RegistryClient({ credentials: goodCreds });
    await rejectsWithCode(
      client.resolve(parseReference(`${reg.host}/sandbox/private:v1`)),
      "REGISTRY_UNAUTHORIZED",
    );
    assert.deepEqual(ts.requests.at(-1)?.granted, []);
  });

  await t.step("wrong password: REGISTRY_UNAUTHORIZED from the token server", async () => {
    const bad = join(dir.path, "auth-bad.json");
    await writeAuthFile(bad, reg.host, "bob", "nope-nope");
    using client = new RegistryClient({
      credentials: createCredentialResolver({ env: { REGISTRY_AUTH_FILE: bad } }),
    });
    const err = await rejectsWithCode(client.resolve(ref), "REGISTRY_UNAUTHORIZED");
    assert.ok(!err.message.includes("nope-nope"));
    assert.equal(ts.requests.at(-1)?.status, 401);
  });

  await t.step("no credentials and no anonymous access: REGISTRY_UNAUTHORIZED", async () => {
    using client = new RegistryClient({ credentials: createCredentialResolver({ env: {} }) });
    await rejectsWithCode(client.resolve(ref), "REGISTRY_UNAUTHORIZED");
    assert.equal(ts.requests.at(-1)?.account, undefined);
  });
});

Deno.test("RegistryClient pulls anonymously with an anonymous token", async () => {
  await using dir = makeTempDir("client-anon");
  await using reg = await startRegistry({ mode: "token", anonymousPull: true });
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
  using client = new RegistryClient({ credentials: createCredentialResolver({ env: {} }) });
  assert.equal((await client.resolve(parseReference(`${reg.host}/sandbox/app:v1`))).digest, img.digest);
  const last = reg.tokenServer?.requests.at(-1);
  assert.equal(last?.account, undefined);
  assert.deepEqual(last?.granted, [{ type: "repository", name: "sandbox/app", actions: ["pull"] }]);
});

Deno.test("RegistryClient over TLS trusts the test CA only when given", async (t) => {
  await using dir = makeTempDir("client-tls");
  await using reg = await startRegistry({ mode: "tls" });
  assert.ok(reg.caCertPem !== undefined);
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });

  await t.step("with caCerts, by IP and by localhost", async () => {
    using client = new RegistryClient({ caCerts: [reg.caCertPem ?? ""] });
    for (const host of [reg.host, `localhost:${reg.port}`]) {
      assert.equal((await client.resolve(parseReference(`${host}/sandbox/app:v1`))).digest, img.digest);
    }
  });

  await t.step("without the CA the registry is refused, naming TLS and --ca-cert", async () => {
    using client = new RegistryClient({ retry: { attempts: 1 } });
    const err = await rejectsWithCode(
      client.resolve(parseReference(`${reg.host}/sandbox/app:v1`)),
      TLS_REFUSAL_CODE,
    );
    assert.doesNotMatch(err.message, /BEGIN CERTIFICATE/);
    assert.match(err.message, /TLS certificate of 127\.0\.0\.1:\d+ is not trusted \(UnknownIssuer\)/);
    assert.doesNotMatch(err.message, /http:\/\//);
    assert.match(err.hint ?? "", /--ca-cert FILE/);
  });
});

/**
 * What a loopback TLS registry with an untrusted certificate yields: a certificate failure is never a
 * reason to fall back to plain HTTP; it fails at once, saying TLS failed.
 */
const TLS_REFUSAL_CODE = "REGISTRY_UNREACHABLE";

/**
 * A TCP forwarder on a loopback port that records the first byte of every connection before passing the
 * bytes through to `targetPort`: 0x16 is a TLS handshake record, anything else is plain HTTP.
 */
function startSniffingForwarder(targetPort: number): AsyncDisposable & {
  host: string;
  tlsConnections: () => number;
  plainConnections: () => number;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const firstBytes: number[] = [];
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const close = (c: Deno.Conn) => {
    if (!open.delete(c)) return;
    try {
      c.close();
    } catch {
      // already closed by the peer side
    }
  };
  const handle = async (conn: Deno.Conn) => {
    open.add(conn);
    const first = new Uint8Array(1);
    const n = await conn.read(first).catch(() => null);
    if (n === null || first[0] === undefined) {
      close(conn);
      return;
    }
    firstBytes.push(first[0]);
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
    open.add(upstream);
    await upstream.write(first);
    // either direction ending closes both sockets, which ends the other direction
    await Promise.race([pumpBytes(conn, upstream), pumpBytes(upstream, conn)]);
    close(conn);
    close(upstream);
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      const task: Promise<void> = handle(conn).catch(() => close(conn)).finally(() => tasks.delete(task));
      tasks.add(task);
    }
  })().catch(() => {});
  return {
    host: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    tlsConnections: () => firstBytes.filter((b) => b === 0x16).length,
    plainConnections: () => firstBytes.filter((b) => b !== 0x16).length,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await accepting;
      for (const c of [...open]) close(c);
      await Promise.all([...tasks]);
    },
  };
}

Deno.test("RegistryClient never downgrades a loopback TLS registry with an untrusted certificate to plain HTTP", async (t) => {
  await using dir = makeTempDir("client-tls-downgrade");
  await using tlsReg = await startRegistry({ mode: "tls" });
  await using plainReg = await startRegistry({ mode: "plain" });
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  await pushImage(img, plainReg, { repository: "sandbox/app", tag: "v1" });

  await t.step(
    "control: a loopback registry that does not speak TLS is reached over plain HTTP",
    async () => {
      await using fwd = startSniffingForwarder(plainReg.port);
      {
        using client = new RegistryClient({ retry: { attempts: 1 } });
        const d = await client.resolve(parseReference(`${fwd.host}/sandbox/app:v1`));
        assert.equal(d.digest, img.digest);
      }
      assert.equal(fwd.tlsConnections(), 1, "https is tried first");
      assert.ok(fwd.plainConnections() >= 1, "then plain HTTP");
    },
  );

  await t.step("an untrusted certificate fails without a single plain-HTTP connection", async () => {
    await using fwd = startSniffingForwarder(tlsReg.port);
    {
      using client = new RegistryClient({ retry: { attempts: 3, baseDelayMs: 1 } });
      const err = await rejectsWithCode(
        client.resolve(parseReference(`${fwd.host}/sandbox/app:v1`)),
        "REGISTRY_UNREACHABLE",
      );
      assert.match(err.message, /^TLS certificate of 127\.0\.0\.1:\d+ is not trusted/);
      assert.match(err.hint ?? "", /--ca-cert FILE/);
    }
    assert.equal(fwd.plainConnections(), 0, "no plain HTTP may reach a TLS registry");
    assert.equal(fwd.tlsConnections(), 1, "a certificate failure is not retried");
  });
});

Deno.test("Transport refuses plain HTTP to a non-loopback host without contacting it", async () => {
  using transport = new Transport({ retry: { attempts: 1 } });
  await rejectsWithCode(
    transport.request({ registry: "registry.invalid", path: "http://registry.invalid/v2/" }),
    "REGISTRY_INSECURE",
  );
  await rejectsWithCode(
    transport.request({
      registry: "registry.invalid:5000",
      path: "http://registry.invalid:5000/v2/x/blobs/uploads/1",
    }),
    "REGISTRY_INSECURE",
  );
});

Deno.test("RegistryClient refuses a plain-HTTP token realm on a non-loopback host", async () => {
  await using dir = makeTempDir("client-realm");
  await using reg = await startRegistry({ mode: "token", realm: "http://token.invalid/token" });
  const authFile = join(dir.path, "auth.json");
  await writeAuthFile(authFile, reg.host, reg.username ?? "", reg.password ?? "");
  using client = new RegistryClient({
    credentials: createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } }),
  });
  await rejectsWithCode(client.resolve(parseReference(`${reg.host}/sandbox/app:v1`)), "REGISTRY_INSECURE");
  assert.equal(reg.tokenServer?.requests.length, 0);
});
