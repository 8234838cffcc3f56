/**
 * Credential scope (issue 14 item 2): the registry's credentials go only to the registry's own
 * origin and to the token realm its own challenge names. A real htpasswd registry sits behind a
 * fault server that redirects blob or manifest GETs to a "CDN" answering 401 with its own Bearer
 * challenge; the CDN records every request it gets.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError } from "../../src/errors.ts";
import { parseManifest } from "../../src/oci/manifest.ts";
import { parseReference } from "../../src/oci/reference.ts";
import { createCredentialResolver, RegistryClient } from "../../src/registry/mod.ts";
import {
  type FaultServer,
  forwardHandler,
  redirectResponse,
  startChallengingCdn,
  startFaultServer,
} from "../_helpers/fault_server.ts";
import { buildBusyboxImage, pushImage } from "../_helpers/images.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startRegistry } from "../_helpers/registry.ts";

const USER = "alice";
const PASSWORD = "correct-horse-battery";

/** Fails unless no request to `cdn` carried any credential of the registry. */
function assertNothingLeaked(cdn: FaultServer): void {
  assert.ok(cdn.requests.length > 0, "the CDN was never contacted: the test proves nothing");
  const secrets = [PASSWORD, btoa(`${USER}:${PASSWORD}`)];
  for (const r of cdn.requests) {
    assert.equal(r.headers.authorization, undefined, `${r.method} ${r.url} carried Authorization`);
    const seen = `${r.url} ${JSON.stringify(r.headers)}`;
    for (const s of secrets) assert.ok(!seen.includes(s), `${r.url} carried a credential`);
  }
}

async function rejectsUnauthorizedNaming(promise: Promise<unknown>, host: string): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DangerzoneError, `expected REGISTRY_UNAUTHORIZED, got ${String(caught)}`);
  assert.equal(caught.code, "REGISTRY_UNAUTHORIZED", caught.message);
  assert.ok(caught.message.includes(host), caught.message);
  assert.ok(!caught.message.includes("\n"));
}

Deno.test("credentials never reach a host a redirect led to, nor the realm of its challenge", async (t) => {
  await using dir = makeTempDir("cred-scope");
  await using reg = await startRegistry({ mode: "htpasswd", username: USER, password: PASSWORD });
  const img = await buildBusyboxImage(join(dir.path, "bb"));
  await pushImage(img, reg, { repository: "sandbox/app", tag: "v1" });
  const forward = forwardHandler((path, init) => reg.fetch(path, init));

  const clientFor = async (frontHost: string) => {
    const authFile = join(dir.path, `auth-${frontHost.replace(/\W/g, "_")}.json`);
    await Deno.writeTextFile(
      authFile,
      JSON.stringify({ auths: { [frontHost]: { auth: btoa(`${USER}:${PASSWORD}`) } } }),
    );
    return new RegistryClient({
      credentials: createCredentialResolver({ env: { REGISTRY_AUTH_FILE: authFile } }),
      retry: { attempts: 1 },
    });
  };

  await t.step("blob GET: the registry authenticates, then redirects to the CDN", async () => {
    await using cdn = startChallengingCdn();
    await using front = startFaultServer([
      {
        method: "GET",
        path: /\/blobs\//,
        handler: (req, ctx) =>
          req.headers.has("authorization")
            ? redirectResponse(`${cdn.origin}${ctx.url.pathname}`)
            : forward(req, ctx),
      },
      { path: /.*/, handler: forward },
    ]);
    using client = await clientFor(front.host);
    const ref = parseReference(`${front.host}/sandbox/app:v1`);
    const manifest = await client.getManifest(ref); // forwarded: the registry's own Basic challenge
    const parsed = parseManifest(manifest.raw, manifest.descriptor.mediaType);
    assert.ok(parsed.kind === "manifest");
    const layer = parsed.layers[0];
    assert.ok(layer !== undefined);
    await rejectsUnauthorizedNaming(
      (async () => {
        const stream = await client.getBlob(ref, layer);
        await stream.cancel();
      })(),
      cdn.host,
    );
    assertNothingLeaked(cdn);
    // the registry itself did get the credentials (the rule is scope, not silence)
    assert.ok(front.requests.some((r) => r.headers.authorization?.startsWith("Basic ")));
  });

  await t.step("manifest GET redirected before any challenge", async () => {
    await using cdn = startChallengingCdn();
    await using front = startFaultServer([
      {
        method: "GET",
        path: /\/manifests\//,
        handler: (_req, ctx) => redirectResponse(`${cdn.origin}${ctx.url.pathname}`),
      },
      { path: /.*/, handler: forward },
    ]);
    using client = await clientFor(front.host);
    await rejectsUnauthorizedNaming(
      client.getManifest(parseReference(`${front.host}/sandbox/app:v1`)),
      cdn.host,
    );
    assertNothingLeaked(cdn);
  });
});
