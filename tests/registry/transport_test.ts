// Transport policy: challenges, redaction, Retry-After, proxies (env, explicit, SOCKS5, Tails),
// plain-HTTP policy, custom CAs and https -> http redirects. Everything runs on 127.0.0.1.
import assert from "node:assert/strict";
import {
  apiHost,
  isLoopback,
  parseRetryAfter,
  readLimited,
  Transport,
} from "../../src/registry/transport.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { parseChallenges } from "../../src/registry/_challenge.ts";
import { redactText, redactUrl } from "../../src/registry/_redact.ts";
import {
  isTailsOsRelease,
  noProxyMatches,
  parseProxyUrl,
  proxyFromEnv,
  torProxy,
} from "../../src/registry/_proxy.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { MediaType } from "../../src/oci/media_types.ts";
import { isDangerzoneError } from "../../src/errors.ts";
import { manifestResponse, redirectResponse, startFaultServer } from "../_helpers/fault_server.ts";
import { startSocks5Server } from "../_helpers/socks5_server.ts";

const MANIFEST = new TextEncoder().encode(
  JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }),
);
const manifestRoute = {
  path: /\/manifests\//,
  handler: () => manifestResponse(MANIFEST, MediaType.OCI_INDEX),
};
const fast = { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 };

// ---- units ---------------------------------------------------------------------------------

Deno.test("parseChallenges() reads Bearer and Basic challenges with quoted params", () => {
  const c = parseChallenges(
    'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push", Basic realm="x"',
  );
  assert.equal(c.length, 2);
  assert.equal(c[0]?.scheme, "bearer");
  assert.deepEqual(c[0]?.params, {
    realm: "https://auth.example/token",
    service: "registry.example",
    scope: "repository:a/b:pull,push",
  });
  assert.equal(c[1]?.scheme, "basic");
  assert.equal(parseChallenges('Basic realm="a \\"q\\" b"')[0]?.params.realm, 'a "q" b');
  assert.equal(parseChallenges("Bearer realm=https://x/t,service=s")[0]?.params.service, "s");
});

Deno.test("redactUrl() keeps allow-listed query params and drops user info and the rest", () => {
  assert.equal(
    redactUrl("https://user:pw@cdn.example/blob?X-Amz-Signature=abc&n=10&last=x&token=t#frag"),
    "https://cdn.example/blob?X-Amz-Signature=REDACTED&n=10&last=x&token=REDACTED",
  );
  assert.equal(redactUrl("https://r.example/v2/"), "https://r.example/v2/");
  const text = redactText("error sending request for url (https://cdn.example/x?sig=SECRET): Bearer abc.def");
  assert.doesNotMatch(text, /SECRET|abc\.def/);
});

Deno.test("parseRetryAfter() reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2025-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Wed, 01 Jan 2025 00:00:10 GMT", now), 10_000);
});

Deno.test("isLoopback() and apiHost() know loopback hosts and Docker Hub's API host", () => {
  for (const h of ["localhost", "localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000"]) {
    assert.ok(isLoopback(h), h);
  }
  for (const h of ["ghcr.io", "127.0.0.1.evil.com", "10.0.0.1", "localhost.example"]) {
    assert.ok(!isLoopback(h), h);
  }
  assert.equal(apiHost("docker.io"), "registry-1.docker.io");
  assert.equal(apiHost("ghcr.io"), "ghcr.io");
});

Deno.test("proxyFromEnv() honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY", () => {
  const env = {
    HTTPS_PROXY: "http://u:p@proxy:3128",
    HTTP_PROXY: "socks5h://tor:9050",
    NO_PROXY: "internal.example,.corp,10.0.0.1:5000",
  };
  assert.equal(proxyFromEnv(env, new URL("https://ghcr.io/v2/"))?.url, "http://proxy:3128");
  assert.deepEqual(proxyFromEnv(env, new URL("https://ghcr.io/v2/"))?.basicAuth, {
    username: "u",
    password: "p",
  });
  assert.equal(proxyFromEnv(env, new URL("http://ghcr.io/v2/"))?.url, "socks5h://tor:9050");
  assert.equal(proxyFromEnv(env, new URL("https://internal.example/v2/")), undefined);
  assert.equal(proxyFromEnv(env, new URL("https://a.b.corp/v2/")), undefined);
  assert.equal(proxyFromEnv(env, new URL("http://10.0.0.1:5000/v2/")), undefined);
  assert.notEqual(proxyFromEnv(env, new URL("http://10.0.0.1:5001/v2/")), undefined);
  assert.notEqual(proxyFromEnv(env, new URL("https://notinternal.example/v2/")), undefined);
  assert.equal(proxyFromEnv({}, new URL("https://ghcr.io/v2/")), undefined);
  assert.ok(noProxyMatches("*", "anything", "443"));
  assert.throws(() => parseProxyUrl("ftp://x"), (e: unknown) => isDangerzoneError(e, "USAGE"));
  assert.equal(parseProxyUrl("socks5://a:b@127.0.0.1:1080").display, "socks5://127.0.0.1:1080");
});

Deno.test("isTailsOsRelease() and torProxy() detect Tails and isolate streams", () => {
  assert.ok(isTailsOsRelease('NAME="Tails"\nID="tails"\n'));
  assert.ok(!isTailsOsRelease('NAME="Debian GNU/Linux"\nID=debian\n'));
  const a = torProxy(9050);
  const b = torProxy(9050);
  assert.equal(a.url, "socks5h://127.0.0.1:9050");
  assert.match(a.basicAuth?.username ?? "", /^[0-9a-f]{32}$/);
  assert.notEqual(a.basicAuth?.username, b.basicAuth?.username);
});

Deno.test("readLimited() caps declared and streamed sizes with SIZE_LIMIT_EXCEEDED", async () => {
  await assert.rejects(
    readLimited(new Response("x".repeat(100), { headers: { "content-length": "100" } }), 10, "x"),
    (e: unknown) => isDangerzoneError(e, "SIZE_LIMIT_EXCEEDED"),
  );
  await assert.rejects(
    readLimited(new Response("x".repeat(100)), 10, "x"),
    (e: unknown) => isDangerzoneError(e, "SIZE_LIMIT_EXCEEDED"),
  );
  assert.equal((await readLimited(new Response("abc"), 10, "x")).length, 3);
});

// ---- proxies end to end ----------------------------------------------------------------------

Deno.test("proxy option socks5:// sends traffic through SOCKS5 with username/password", async () => {
  await using server = startFaultServer([manifestRoute]);
  const socks = startSocks5Server({ requireAuth: true });
  try {
    using c = new RegistryClient({
      env: {},
      osReleasePath: "/nonexistent",
      proxy: `socks5://alice:pw@127.0.0.1:${socks.port}`,
    });
    const m = await c.getManifest(parseReference(`${server.host}/a/b:latest`));
    assert.equal(m.descriptor.size, MANIFEST.length);
    assert.deepEqual(socks.usernames.filter((u) => u === "alice").length > 0, true);
    assert.ok(socks.targets.every((t) => t === server.host), socks.targets.join());
    assert.match(await c.describeRoute(server.host), /^socks5:\/\/127\.0\.0\.1:\d+$/);
  } finally {
    await socks.close();
  }
});

Deno.test("HTTP_PROXY from the env option is used, and NO_PROXY bypasses it", async () => {
  await using server = startFaultServer([manifestRoute]);
  const socks = startSocks5Server();
  try {
    const ref = parseReference(`${server.host}/a/b:latest`);
    {
      using c = new RegistryClient({
        env: { HTTP_PROXY: `socks5://127.0.0.1:${socks.port}` },
        osReleasePath: "/nonexistent",
        insecureRegistries: [server.host],
      });
      await c.getManifest(ref);
    }
    const viaProxy = socks.connections();
    assert.ok(viaProxy > 0);
    {
      using c = new RegistryClient({
        env: { HTTP_PROXY: `socks5://127.0.0.1:${socks.port}`, NO_PROXY: "127.0.0.1" },
        osReleasePath: "/nonexistent",
        insecureRegistries: [server.host],
      });
      await c.getManifest(ref);
      assert.equal(await c.describeRoute(server.host), "direct");
    }
    assert.equal(socks.connections(), viaProxy);
  } finally {
    await socks.close();
  }
});

Deno.test("Tails: all traffic goes through Tor's SOCKS port with a new random username per run", async () => {
  await using server = startFaultServer([manifestRoute]);
  const socks = startSocks5Server({ requireAuth: true });
  const osRelease = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(osRelease, 'NAME="Tails"\nID="tails"\nVERSION="6.0"\n');
    const ref = parseReference(`${server.host}/a/b:latest`);
    for (let run = 0; run < 2; run++) {
      using c = new RegistryClient({ env: {}, osReleasePath: osRelease, torSocksPort: socks.port });
      await c.getManifest(ref);
      assert.match(await c.describeRoute(server.host), /Tor/);
    }
    const distinct = new Set(socks.usernames);
    assert.equal(distinct.size, 2, socks.usernames.join());
    for (const u of distinct) assert.match(u, /^[0-9a-f]{32}$/);
  } finally {
    await socks.close();
    await Deno.remove(osRelease);
  }
});

// ---- plain HTTP policy ---------------------------------------------------------------------

Deno.test("plain HTTP is used for a non-loopback registry only when it is named insecure", async () => {
  // registry.test resolves (at the SOCKS server) to the fault server on 127.0.0.1
  await using server = startFaultServer([manifestRoute]);
  const socks = startSocks5Server({ loopbackNames: ["registry.test"] });
  try {
    const ref = parseReference(`registry.test:${server.port}/a/b:latest`);
    const base = {
      env: {},
      osReleasePath: "/nonexistent",
      proxy: `socks5h://127.0.0.1:${socks.port}`,
      retry: fast,
    };
    {
      using strict = new RegistryClient(base);
      await assert.rejects(
        strict.getManifest(ref),
        (e: unknown) => isDangerzoneError(e, "REGISTRY_UNREACHABLE"),
      );
    }
    assert.equal(server.requests.length, 0, "no plain HTTP request may reach a non-loopback registry");
    {
      using insecure = new RegistryClient({ ...base, insecureRegistries: [`registry.test:${server.port}`] });
      assert.equal((await insecure.getManifest(ref)).descriptor.size, MANIFEST.length);
    }
    assert.equal(server.requests.length, 1);
    assert.ok(socks.targets.includes(`registry.test:${server.port}`));
  } finally {
    await socks.close();
  }
});

// ---- TLS -----------------------------------------------------------------------------------

async function makeCa(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  };
  await run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
  await run([
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-subj",
    "/CN=dz test CA",
    "-days",
    "2",
    "-out",
    "ca.pem",
  ]);
  await run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
  await run(["req", "-new", "-key", "leaf.key", "-subj", "/CN=127.0.0.1", "-out", "leaf.csr"]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await run([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
    "-out",
    "leaf.pem",
  ]); // deno-fmt-ignore
  const pkcs8 = await new Deno.Command("openssl", {
    args: ["pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key"],
    cwd: dir,
    stdout: "piped",
  }).output();
  return {
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    cert: await Deno.readTextFile(`${dir}/leaf.pem`),
    key: new TextDecoder().decode(pkcs8.stdout),
  };
}

Deno.test("TLS: custom CA certificates are trusted, https -> http redirects are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dz-tls-" });
  try {
    const { ca, cert, key } = await makeCa(dir);
    await using plain = startFaultServer([manifestRoute]);
    const tls = Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      if (path.endsWith("/manifests/down")) {
        return redirectResponse(`${plain.origin}/v2/a/b/manifests/x?sig=SECRET`);
      }
      return manifestResponse(MANIFEST, MediaType.OCI_INDEX);
    });
    try {
      const host = `127.0.0.1:${tls.addr.port}`;
      {
        using c = new RegistryClient({ env: {}, osReleasePath: "/nonexistent", caCerts: [ca], retry: fast });
        assert.equal(
          (await c.getManifest(parseReference(`${host}/a/b:latest`))).descriptor.size,
          MANIFEST.length,
        );
        await assert.rejects(c.getManifest(parseReference(`${host}/a/b:down`)), (e: unknown) => {
          assert.ok(isDangerzoneError(e, "REGISTRY_REDIRECT"));
          assert.doesNotMatch(e.message, /SECRET/);
          return true;
        });
      }
      assert.equal(plain.requests.length, 0);
      {
        using c = new RegistryClient({ env: {}, osReleasePath: "/nonexistent", retry: fast });
        await assert.rejects(
          c.getManifest(parseReference(`${host}/a/b:latest`)),
          (e: unknown) => isDangerzoneError(e, "REGISTRY_UNREACHABLE"),
        );
      }
    } finally {
      await tls.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Transport rejects an invalid proxy URL at construction with USAGE", () => {
  assert.throws(() => new Transport({ proxy: "gopher://x" }), (e: unknown) => isDangerzoneError(e, "USAGE"));
});

Deno.test("Transport reads HTTPS_PROXY and NO_PROXY under a narrow --allow-env", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dz-narrow-" });
  try {
    const module = new URL("../../src/registry/client.ts", import.meta.url).href;
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { RegistryClient } from ${JSON.stringify(module)};\n` +
        `using c = new RegistryClient({ osReleasePath: "/nonexistent" });\n` +
        `console.log(await c.describeRoute("r.example"), await c.describeRoute("internal.example"));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--no-config",
        "--allow-env=HTTPS_PROXY,NO_PROXY",
        "--allow-read=/nonexistent",
        script,
      ],
      // HTTP_PROXY is set but not allowed: skipped silently, never a prompt or a failure
      env: { HTTPS_PROXY: "http://127.0.0.1:3128", NO_PROXY: "internal.example", HTTP_PROXY: "http://x:1" },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "http://127.0.0.1:3128 direct");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
