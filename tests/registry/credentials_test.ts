import assert from "node:assert/strict";
import {
  createCredentialResolver,
  credentialFiles,
  credentialKeyHost,
  type HelperRunner,
} from "../../src/registry/credentials.ts";
import { isDangerzoneError } from "../../src/errors.ts";

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "dz-creds-" });
  try {
    await Deno.mkdir(`${home}/.docker`, { recursive: true });
    await Deno.mkdir(`${home}/.config/containers`, { recursive: true });
    await Deno.mkdir(`${home}/run/containers`, { recursive: true });
    await fn(home);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

const b64 = (s: string) => btoa(s);

Deno.test("credentialKeyHost() strips schemes and paths and folds Docker Hub aliases", () => {
  assert.equal(credentialKeyHost("https://index.docker.io/v1/"), "docker.io");
  assert.equal(credentialKeyHost("registry-1.docker.io"), "docker.io");
  assert.equal(credentialKeyHost("https://ghcr.io"), "ghcr.io");
  assert.equal(credentialKeyHost("localhost:5000/v2"), "localhost:5000");
});

Deno.test("credentialFiles() orders REGISTRY_AUTH_FILE, containers auth.json, docker config", () => {
  assert.deepEqual(credentialFiles({ HOME: "/h", XDG_RUNTIME_DIR: "/run/u" }), [
    "/run/u/containers/auth.json",
    "/h/.config/containers/auth.json",
    "/h/.docker/config.json",
  ]);
  assert.equal(
    credentialFiles({ HOME: "/h", REGISTRY_AUTH_FILE: "/a.json", XDG_RUNTIME_DIR: "/r" })[0],
    "/a.json",
  );
  assert.equal(credentialFiles({ HOME: "/h", DOCKER_CONFIG: "/d" }).at(-1), "/d/config.json");
});

Deno.test("lookup() reads auths (base64 and username/password) and matches hosts exactly", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(
      `${home}/.docker/config.json`,
      JSON.stringify({
        auths: {
          "https://index.docker.io/v1/": { auth: b64("hub:hubpw") },
          "ghcr.io": { auth: b64("gh:ghpw:with:colons") },
          "registry.example:5000": { username: "ex", password: "expw" },
          "evil-ghcr.io": { auth: b64("evil:evil") },
        },
      }),
    );
    const r = createCredentialResolver({ env: { HOME: home } });
    assert.deepEqual(await r.lookup("docker.io"), { kind: "basic", username: "hub", password: "hubpw" });
    assert.deepEqual(await r.lookup("index.docker.io"), {
      kind: "basic",
      username: "hub",
      password: "hubpw",
    });
    assert.deepEqual(await r.lookup("ghcr.io"), {
      kind: "basic",
      username: "gh",
      password: "ghpw:with:colons",
    });
    assert.deepEqual(await r.lookup("registry.example:5000"), {
      kind: "basic",
      username: "ex",
      password: "expw",
    });
    assert.equal(await r.lookup("registry.example"), undefined);
    assert.equal(await r.lookup("io"), undefined);
    assert.equal(await r.lookup("ghcr.io.evil.com"), undefined);
    assert.equal(await r.lookup("cr.io"), undefined);
  });
});

Deno.test("lookup() prefers REGISTRY_AUTH_FILE, then containers auth.json, then docker config", async () => {
  await withHome(async (home) => {
    const entry = (u: string) => JSON.stringify({ auths: { "ghcr.io": { auth: b64(`${u}:pw`) } } });
    await Deno.writeTextFile(`${home}/.docker/config.json`, entry("docker"));
    await Deno.writeTextFile(`${home}/.config/containers/auth.json`, entry("containers"));
    await Deno.writeTextFile(`${home}/run/containers/auth.json`, entry("runtime"));
    await Deno.writeTextFile(`${home}/explicit.json`, entry("explicit"));
    const user = async (env: Record<string, string>) => {
      const c = await createCredentialResolver({ env }).lookup("ghcr.io");
      return c?.kind === "basic" ? c.username : undefined;
    };
    assert.equal(await user({ HOME: home, REGISTRY_AUTH_FILE: `${home}/explicit.json` }), "explicit");
    assert.equal(await user({ HOME: home, XDG_RUNTIME_DIR: `${home}/run` }), "runtime");
    assert.equal(await user({ HOME: home }), "containers");
    await Deno.remove(`${home}/.config/containers/auth.json`);
    assert.equal(await user({ HOME: home }), "docker");
  });
});

Deno.test("lookup() runs credHelpers and credsStore through docker-credential-<name> get", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(
      `${home}/.docker/config.json`,
      JSON.stringify({ credHelpers: { "ghcr.io": "gh", "docker.io": "hub" }, credsStore: "store" }),
    );
    const calls: string[] = [];
    const runHelper: HelperRunner = (helper, serverUrl) => {
      calls.push(`${helper} ${serverUrl}`);
      if (helper === "store" && serverUrl !== "quay.io") {
        return Promise.resolve({ code: 1, stdout: "credentials not found in native keychain", stderr: "" });
      }
      const secret = helper === "hub"
        ? { Username: "<token>", Secret: "idtok" }
        : { Username: helper, Secret: "s" };
      return Promise.resolve({
        code: 0,
        stdout: JSON.stringify({ ServerURL: serverUrl, ...secret }),
        stderr: "",
      });
    };
    const r = createCredentialResolver({ env: { HOME: home }, runHelper });
    assert.deepEqual(await r.lookup("ghcr.io"), { kind: "basic", username: "gh", password: "s" });
    assert.deepEqual(await r.lookup("docker.io"), { kind: "identityToken", token: "idtok" });
    assert.deepEqual(await r.lookup("quay.io"), { kind: "basic", username: "store", password: "s" });
    assert.equal(await r.lookup("other.example"), undefined);
    assert.deepEqual(calls, [
      "gh ghcr.io",
      "hub https://index.docker.io/v1/",
      "store quay.io",
      "store other.example",
    ]);
  });
});

Deno.test("lookup() reports malformed files and helper failures as CREDENTIALS_INVALID", async () => {
  await withHome(async (home) => {
    const path = `${home}/.docker/config.json`;
    const r = createCredentialResolver({
      env: { HOME: home },
      runHelper: () => Promise.resolve({ code: 2, stdout: "", stderr: "boom" }),
    });
    for (
      const text of [
        "{not json",
        JSON.stringify([]),
        JSON.stringify({ auths: [] }),
        JSON.stringify({ auths: { "ghcr.io": { auth: "!!!notbase64" } } }),
        JSON.stringify({ auths: { "ghcr.io": { auth: b64("nocolon") } } }),
        JSON.stringify({ credHelpers: { "ghcr.io": "../../bin/sh" } }),
        JSON.stringify({ credHelpers: { "ghcr.io": "gh" } }),
      ]
    ) {
      await Deno.writeTextFile(path, text);
      await assert.rejects(
        r.lookup("ghcr.io"),
        (e: unknown) => isDangerzoneError(e, "CREDENTIALS_INVALID"),
        text,
      );
    }
  });
});

Deno.test("lookup() returns undefined when no file exists", async () => {
  await withHome(async (home) => {
    assert.equal(await createCredentialResolver({ env: { HOME: home } }).lookup("ghcr.io"), undefined);
  });
});

/** Runs `code` (a module) in a child `deno run --no-prompt` with `flags`; returns its stdout and exit code. */
async function runNarrow(
  code: string,
  flags: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "dz-narrow-" });
  try {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(script, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-config", ...flags, script],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("createCredentialResolver() reads REGISTRY_AUTH_FILE under a narrow --allow-env", async () => {
  await withHome(async (home) => {
    const file = `${home}/auth.json`;
    await Deno.writeTextFile(file, JSON.stringify({ auths: { "r.example": { auth: b64("u:p") } } }));
    const module = new URL("../../src/registry/credentials.ts", import.meta.url).href;
    const probe = `import { createCredentialResolver } from ${JSON.stringify(module)};\n` +
      `console.log(JSON.stringify(await createCredentialResolver().lookup("r.example") ?? null));\n`;
    // HOME is set but not allowed: it is skipped silently, REGISTRY_AUTH_FILE still counts
    const r = await runNarrow(probe, ["--allow-env=REGISTRY_AUTH_FILE", `--allow-read=${file}`], {
      REGISTRY_AUTH_FILE: file,
      HOME: home,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { kind: "basic", username: "u", password: "p" });
  });
});
