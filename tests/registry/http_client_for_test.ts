/** `proxyForUrl()` / `httpClientFor()`: TUF traffic takes the registry's proxy route. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { httpClientFor, proxyForUrl } from "../../src/registry/http_client_for.ts";

const TUF = new URL("https://tuf-repo-cdn.sigstore.dev/");

Deno.test("proxyForUrl() prefers --proxy, then Tor on Tails (fresh isolation credentials), then the environment", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tails = join(dir, "os-release");
    await Deno.writeTextFile(tails, 'NAME="Tails"\nID="tails"\n');
    const plain = join(dir, "plain-os-release");
    await Deno.writeTextFile(plain, 'NAME="Debian GNU/Linux"\nID=debian\n');
    const env = { HTTPS_PROXY: "http://proxy.test:3128" };

    const explicit = await proxyForUrl(TUF, {
      proxy: "socks5h://user:pw@127.0.0.1:1080",
      osReleasePath: tails,
      env,
    });
    assert.equal(explicit?.url, "socks5h://127.0.0.1:1080");
    assert.deepEqual(explicit?.basicAuth, { username: "user", password: "pw" });

    const tor = await proxyForUrl(TUF, { osReleasePath: tails, env });
    assert.equal(tor?.url, "socks5h://127.0.0.1:9050");
    assert.match(tor?.basicAuth?.username ?? "", /^[0-9a-f]{32}$/);

    assert.equal((await proxyForUrl(TUF, { osReleasePath: plain, env }))?.url, "http://proxy.test:3128");
    const noProxy = { ...env, NO_PROXY: ".sigstore.dev" };
    assert.equal(await proxyForUrl(TUF, { osReleasePath: plain, env: noProxy }), undefined);
    assert.equal(await proxyForUrl(TUF, { osReleasePath: join(dir, "missing"), env: {} }), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("httpClientFor() reports its route without credentials", async () => {
  using http = await httpClientFor(TUF, { proxy: "socks5h://user:secret@127.0.0.1:1080" });
  assert.equal(http.route, "socks5h://127.0.0.1:1080");
});
