/**
 * `trust-root update|show|export-rekor-key` through the real command, against a TUF repository the
 * tests generate and serve on loopback (tests/tuf/_tuf_repo.ts). Every TUF attack must be refused
 * with one line and exit 10, leaving the stored trusted root and the TUF cache exactly as they were.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { ContractValidator } from "../schemas/_schemas.ts";
import { freePort } from "../_helpers/ports.ts";
import { startSocks5Server } from "../_helpers/socks5_server.ts";
import { createTestCertificates } from "../_helpers/tls.ts";
import { inDays, TestTufRepo, tufKey } from "../tuf/_tuf_repo.ts";

const TESTDATA = new URL("../testdata/vectors/", import.meta.url);
const testdata = (p: string) => new URL(p, TESTDATA).pathname;
/** Version A of the served target: Sigstore's production trusted root. */
const ROOT_A = await Deno.readFile(testdata("sigstore-root-signing/targets/trusted_root.json"));
/** Version B: the sigstore-conformance custom trust root (a different Rekor key). */
const ROOT_B_PATH = testdata(
  "sigstore-conformance/test/assets/bundle-verify/intoto-with-custom-trust-root/trusted_root.json",
);
const ROOT_B = await Deno.readFile(ROOT_B_PATH);
const contract = new ContractValidator();

function oneErrorLine(stderr: string, rule: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0] ?? "", /^error: /);
  assert.match(lines[0] ?? "", rule);
}

/** Every file under `dir` with its bytes, to prove a failed update changed nothing. */
async function snapshotDir(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(d: string): Promise<void> {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && !e.name.endsWith(".lock")) {
        out.set(p, new TextDecoder().decode(await Deno.readFile(p)));
      }
    }
  }
  await walk(dir);
  return out;
}

/** A repository serving A (metadata version 2), a data dir that already stored A through it. */
async function updatedOnce() {
  const repo = new TestTufRepo();
  repo.publish(ROOT_A, { version: 2 });
  const server = repo.serve();
  const dataDir = await Deno.makeTempDir();
  const rootFile = join(dataDir, "..", `${crypto.randomUUID()}.root.json`);
  await Deno.writeFile(rootFile, repo.rootBytes);
  const update = (...extra: string[]) =>
    runCli(["trust-root", "update", "--tuf-url", server.url, "--data-dir", dataDir, ...extra]);
  const first = await update("--tuf-root", rootFile);
  assert.equal(first.code, 0, first.stderr);
  return {
    repo,
    server,
    dataDir,
    rootFile,
    update,
    stored: () => Deno.readFile(join(dataDir, "tuf", "trusted_root.json")),
    async [Symbol.asyncDispose]() {
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
      await Deno.remove(rootFile);
    },
  };
}

Deno.test("trust-root update stores the TUF-verified trusted root; show and update --json match their schemas", async () => {
  await using env = await updatedOnce();
  assert.deepEqual(await env.stored(), ROOT_A);
  env.repo.publish(ROOT_B);
  const r = await env.update("--json");
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  contract.assertValid("trust-root-update.schema.json", doc, "trust-root-update.schema.json");
  assert.equal(doc.startedFrom, "data-dir");
  assert.equal(doc.trustedRoot.changed, true);
  assert.deepEqual(await env.stored(), ROOT_B);

  const again = await env.update("--json");
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).trustedRoot.changed, false);
  // the stored root served as the target cache: the target was not downloaded a second time
  assert.equal(env.repo.requested.filter((p) => p.startsWith("/targets/")).length, 2);

  const show = await runCli(["trust-root", "show", "--json", "--data-dir", env.dataDir]);
  assert.equal(show.code, 0, show.stderr);
  const status = JSON.parse(show.stdout);
  contract.assertValid("trust-root-show.schema.json", status, "trust-root-show.schema.json");
  assert.equal(status.trustedRoot.source, "data-dir");
  assert.equal(status.trustedRoot.origin.tufUrl, env.server.url);
  assert.equal(status.tufRoot.source, "data-dir");
  assert.equal(status.tufRoot.version, 1);
  assert.equal(status.tlogs[0].baseUrl, "http://localhost:8000");
});

Deno.test("trust-root update follows a root rotation that changes keys and threshold, and refuses one below threshold", async () => {
  await using env = await updatedOnce();
  const next = [tufKey(), tufKey(), tufKey()];
  // v2: three new root keys, threshold 2, signed by the old key and 2 of the new ones
  env.repo.publishRoot({
    next: { root: next, rootThreshold: 2, timestamp: tufKey() },
    nextSigners: next.slice(0, 2),
  });
  env.repo.publish(ROOT_B);
  const ok = await env.update("--json");
  assert.equal(ok.code, 0, ok.stderr);
  const doc = JSON.parse(ok.stdout);
  assert.equal(doc.previousTufRootVersion, 1);
  assert.equal(doc.tufRoot.version, 2);
  assert.deepEqual(await env.stored(), ROOT_B);

  // v3 signed by only 1 of v2's keys (threshold 2): refused, v2 stays the trusted root
  env.repo.publishRoot({ previousSigners: next.slice(0, 1), nextSigners: next.slice(0, 1) });
  env.repo.publish(ROOT_A);
  const before = await snapshotDir(env.dataDir);
  const bad = await env.update();
  assert.equal(bad.code, 10, bad.stderr);
  oneErrorLine(bad.stderr, /TUF verification .* failed \(signatures below threshold\)/);
  assert.deepEqual(await snapshotDir(env.dataDir), before);
});

/** Each attack: how the repository lies, and the words the one error line must contain. */
const ATTACKS: [string, (repo: TestTufRepo) => void, RegExp][] = [
  ["timestamp rollback", (repo) => repo.publish(ROOT_B, { version: 1 }), /rollback|version/],
  [
    "snapshot rollback",
    (repo) => repo.publish(ROOT_B, { version: 3, snapshotVersion: 1 }),
    /snapshot version 1 is less than current version 2/,
  ],
  [
    "targets rollback",
    (repo) => repo.publish(ROOT_B, { version: 3, targetsVersion: 1 }),
    /version 1 of targets.json is less than current version 2/,
  ],
  [
    "mix-and-match of snapshot and targets",
    (repo) => {
      const old = repo.files.get("/2.targets.json");
      repo.publish(ROOT_B, { version: 3 });
      if (old !== undefined) repo.files.set("/3.targets.json", old);
    },
    /Version 2 of targets does not match snapshot version 3/,
  ],
  [
    "freeze (expired timestamp)",
    (repo) => repo.publish(ROOT_B, { version: 3, expires: { timestamp: inDays(-1) } }),
    /freeze attack.*timestamp.json is expired/,
  ],
  [
    "freeze (expired targets)",
    (repo) => repo.publish(ROOT_B, { version: 3, expires: { targets: inDays(-1) } }),
    /freeze attack.*targets.json is expired/,
  ],
  [
    "arbitrary target (hash mismatch, same length)",
    (repo) => {
      const tampered = ROOT_B.slice();
      tampered[tampered.length - 2] = (tampered[tampered.length - 2] ?? 0) ^ 0x01;
      repo.publish(tampered, { version: 3, declaredTarget: ROOT_B });
    },
    /hash or length.*Expected hash/,
  ],
  [
    "arbitrary target (shorter than declared)",
    (repo) => repo.publish(ROOT_B.slice(0, 100), { version: 3, declaredTarget: ROOT_B }),
    /Expected length/,
  ],
  [
    "endless data (target longer than declared)",
    (repo) => repo.publish(new Uint8Array([...ROOT_B, 0x20]), { version: 3, declaredTarget: ROOT_B }),
    /trusted_root.json is larger than the \d+ bytes allowed/,
  ],
  [
    "endless data (timestamp)",
    (repo) => {
      repo.publish(ROOT_B, { version: 3 });
      repo.endless.add("/timestamp.json");
    },
    /timestamp.json is larger than the 16384 bytes allowed for it \(endless data/,
  ],
  [
    "endless data (snapshot longer than the timestamp declares)",
    (repo) => {
      repo.publish(ROOT_B, { version: 3 });
      repo.endless.add("/3.snapshot.json");
    },
    /3.snapshot.json is larger than the \d+ bytes allowed/,
  ],
];

for (const [name, attack, rule] of ATTACKS) {
  Deno.test(`trust-root update refuses ${name} with exit 10 and keeps the previous trusted root`, async () => {
    await using env = await updatedOnce();
    const before = await snapshotDir(env.dataDir);
    attack(env.repo);
    const r = await env.update();
    assert.equal(r.code, 10, r.stderr);
    oneErrorLine(r.stderr, rule);
    assert.deepEqual(await snapshotDir(env.dataDir), before);
    assert.deepEqual(await env.stored(), ROOT_A);
  });
}

Deno.test("trust-root update exits 12 for an unreachable repository and changes nothing", async () => {
  await using env = await updatedOnce();
  const before = await snapshotDir(env.dataDir);
  const r = await runCli([
    "trust-root",
    "update",
    "--tuf-url",
    `http://127.0.0.1:${freePort()}/`,
    "--tuf-root",
    env.rootFile,
    "--data-dir",
    env.dataDir,
  ]);
  assert.equal(r.code, 12, r.stderr);
  oneErrorLine(r.stderr, /cannot reach the TUF repository/);
  assert.deepEqual(await snapshotDir(env.dataDir), before);
});

Deno.test("trust-root refuses plain http to a non-loopback host, a custom URL without --tuf-root, stray options and unknown actions", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const http = await runCli([
      "trust-root",
      "update",
      "--tuf-url",
      "http://example.com/",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(http.code, 2, http.stderr);
    oneErrorLine(http.stderr, /must use https/);
    const noRoot = await runCli([
      "trust-root",
      "update",
      "--tuf-url",
      "http://127.0.0.1:9/",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(noRoot.code, 2, noRoot.stderr);
    oneErrorLine(noRoot.stderr, /no trusted TUF root for .*--tuf-root/);
    const stray = await runCli(["trust-root", "show", "--tuf-url", "https://x.test/", "--data-dir", dataDir]);
    assert.equal(stray.code, 2, stray.stderr);
    oneErrorLine(stray.stderr, /--tuf-url does not apply to trust-root show/);
    const unknown = await runCli(["trust-root", "rotate", "--data-dir", dataDir]);
    assert.equal(unknown.code, 2, unknown.stderr);
    oneErrorLine(
      unknown.stderr,
      /'rotate' is invalid for argument 'action'. Allowed choices are update, show, export-rekor-key/,
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** What the seed's recipe prints: `jq -r '.tlogs[N].publicKey.rawBytes' | base64 -d | openssl pkey -pubin -inform DER`. */
async function opensslPem(trustedRoot: Uint8Array, index: number): Promise<string> {
  const raw = JSON.parse(new TextDecoder().decode(trustedRoot)).tlogs[index].publicKey.rawBytes;
  const der = Uint8Array.from(atob(raw), (c) => c.charCodeAt(0));
  const child = new Deno.Command("openssl", {
    args: ["pkey", "-pubin", "-inform", "DER"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(der);
  await writer.close();
  const out = await child.output();
  assert.equal(out.code, 0);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("trust-root export-rekor-key is byte-identical to the seed's jq + base64 + openssl recipe", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    // the embedded production root (nothing stored)
    const prod = await runCli(["trust-root", "export-rekor-key", "--data-dir", dataDir]);
    assert.equal(prod.code, 0, prod.stderr);
    assert.equal(prod.stdout, await opensslPem(ROOT_A, 0));
    // a test trusted root via --trusted-root, written to --output
    const out = join(dataDir, "rekor.pub");
    const test = await runCli([
      "trust-root",
      "export-rekor-key",
      "--trusted-root",
      ROOT_B_PATH,
      "--output",
      out,
      "--data-dir",
      dataDir,
    ]);
    assert.equal(test.code, 0, test.stderr);
    assert.equal(await Deno.readTextFile(out), await opensslPem(ROOT_B, 0));
    // --all and --log-id pick the Rekor v2 shard too
    const all = await runCli(["trust-root", "export-rekor-key", "--all", "--json", "--data-dir", dataDir]);
    assert.equal(all.code, 0, all.stderr);
    const doc = JSON.parse(all.stdout);
    contract.assertValid(
      "trust-root-export-rekor-key.schema.json",
      doc,
      "trust-root-export-rekor-key.schema.json",
    );
    assert.equal(doc.keys.length, 2);
    assert.equal(doc.keys[1].pem, await opensslPem(ROOT_A, 1));
    const one = await runCli([
      "trust-root",
      "export-rekor-key",
      "--log-id",
      doc.keys[1].logId,
      "--data-dir",
      dataDir,
    ]);
    assert.equal(one.stdout, doc.keys[1].pem);
    const unknown = await runCli(["trust-root", "export-rekor-key", "--log-id", "00", "--data-dir", dataDir]);
    assert.equal(unknown.code, 2);
    oneErrorLine(unknown.stderr, /no transparency log with ID 00/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("trust-root show --json reports the embedded roots when nothing was updated", async () => {
  const dataDir = await Deno.makeTempDir();
  try {
    const r = await runCli(["trust-root", "show", "--json", "--data-dir", dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    contract.assertValid("trust-root-show.schema.json", doc, "trust-root-show.schema.json");
    assert.equal(doc.tufRoot.source, "embedded");
    assert.equal(doc.tufRoot.version, 15);
    assert.equal(doc.tufRoot.expired, true);
    assert.equal(doc.trustedRoot.source, "embedded");
    assert.equal(doc.tlogs[0].logId, "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d");
    const flag = await runCli([
      "trust-root",
      "show",
      "--json",
      "--trusted-root",
      ROOT_B_PATH,
      "--data-dir",
      dataDir,
    ]);
    assert.equal(JSON.parse(flag.stdout).trustedRoot.source, "flag");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("trust-root update exits 12 when the repository lacks a file TUF needs (404), and changes nothing", async () => {
  await using env = await updatedOnce();
  env.repo.publish(ROOT_B, { version: 3 });
  env.repo.files.delete("/3.snapshot.json");
  const before = await snapshotDir(env.dataDir);
  const r = await env.update();
  assert.equal(r.code, 12, r.stderr);
  oneErrorLine(r.stderr, /answered HTTP 404 for 3.snapshot.json/);
  assert.deepEqual(await snapshotDir(env.dataDir), before);
});

const DZ = testdata("dangerzone/tests/assets/");
const DZ_DIGEST = "sha256:fa948726aac29a6ac49f01ec8fbbac18522b35b2491fdf716236a0b3502a2ca7";
const DZ_SIGS = `${DZ}signatures/valid/95b432860b272938246b10e1cfc89a24e1db352b3aebaa799c4284c42c46bd95/${
  DZ_DIGEST.slice(7)
}.json`;
const CUSTOM = testdata("sigstore-conformance/test/assets/bundle-verify/intoto-with-custom-trust-root/");
const BEACON =
  "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";

Deno.test("the trusted root trust-root update stored replaces the embedded one for legacy signatures and bundles; flags and SIGSTORE_REKOR_PUBLIC_KEY still win", async () => {
  await using env = await updatedOnce();
  const legacy = (...extra: string[]) =>
    runCli([
      "verify-signatures",
      "--signatures",
      DZ_SIGS,
      "--digest",
      DZ_DIGEST,
      "--pubkey",
      `${DZ}test.pub.key`,
      "--data-dir",
      env.dataDir,
      ...extra,
    ]);
  const bundle = (...extra: string[]) =>
    runCli([
      "verify-bundle",
      "--bundle",
      `${CUSTOM}bundle.sigstore.json`,
      "--certificate-identity",
      BEACON,
      "--certificate-oidc-issuer",
      "https://token.actions.githubusercontent.com",
      "--data-dir",
      env.dataDir,
      ...extra,
      `${CUSTOM}artifact`,
    ]);
  // stored: the production root (A) -> the production Rekor log verifies, the custom-root bundle does not
  assert.equal((await legacy()).code, 0);
  assert.equal((await bundle()).code, 10);

  env.repo.publish(ROOT_B);
  assert.equal((await env.update()).code, 0);
  // stored: the custom root (B) -> its Rekor key replaces the pinned one, and it verifies the bundle
  const refused = await legacy();
  assert.equal(refused.code, 10, refused.stderr);
  const verified = await bundle("--json");
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(JSON.parse(verified.stdout).trustedRoot, /tuf\/trusted_root\.json$/);
  // precedence: --trusted-root, --rekor-key and SIGSTORE_REKOR_PUBLIC_KEY over the stored root
  const prodRoot = testdata("sigstore-root-signing/targets/trusted_root.json");
  const rekorPub = testdata("sigstore-root-signing/targets/rekor.pub");
  assert.equal((await legacy("--trusted-root", prodRoot)).code, 0);
  assert.equal((await legacy("--rekor-key", rekorPub)).code, 0);
  const env2 = await runCli(
    ["verify-signatures", "--signatures", DZ_SIGS, "--digest", DZ_DIGEST, "--pubkey", `${DZ}test.pub.key`],
    { env: { SIGSTORE_REKOR_PUBLIC_KEY: rekorPub, DANGERZONE_DATA_DIR: env.dataDir } },
  );
  assert.equal(env2.code, 0, env2.stderr);
  assert.equal((await bundle("--trusted-root", prodRoot)).code, 10);
});

Deno.test("trust-root update goes through --proxy (SOCKS5, as for Tor) like registry traffic", async () => {
  await using env = await updatedOnce();
  const socks = startSocks5Server();
  try {
    env.repo.publish(ROOT_B);
    const r = await env.update("--proxy", `socks5h://127.0.0.1:${socks.port}`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(socks.targets.length > 0, "no connection went through the proxy");
    assert.ok(socks.targets.every((t) => t === new URL(env.server.url).host), socks.targets.join(","));
    assert.deepEqual(await env.stored(), ROOT_B);
  } finally {
    await socks.close();
  }
});

Deno.test("trust-root update over TLS trusts --ca-cert like registry traffic, and exits 12 without it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const certs = await createTestCertificates(dir);
    const repo = new TestTufRepo();
    repo.publish(ROOT_A);
    await using server = repo.serve({
      cert: await Deno.readTextFile(certs.certFile),
      key: await Deno.readTextFile(certs.keyFile),
    });
    const rootFile = join(dir, "root.json");
    await Deno.writeFile(rootFile, repo.rootBytes);
    const args = ["trust-root", "update", "--tuf-url", server.url, "--tuf-root", rootFile, "--data-dir", dir];
    const untrusted = await runCli(args);
    assert.equal(untrusted.code, 12, untrusted.stderr);
    oneErrorLine(untrusted.stderr, /cannot reach the TUF repository/);
    const trusted = await runCli([...args, "--ca-cert", certs.caCertFile]);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.deepEqual(await Deno.readFile(join(dir, "tuf", "trusted_root.json")), ROOT_A);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trust-root under narrow permissions: show needs only reads; update names the --allow-env it needs in one line", async () => {
  const repo = new TestTufRepo();
  repo.publish(ROOT_A);
  await using server = repo.serve();
  const dir = await Deno.makeTempDir();
  try {
    const show = await runCli(["trust-root", "show", "--data-dir", dir], {
      permissions: [`--allow-read=${dir}`],
    });
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /TUF root: v15 \(embedded\)/);
    const rootFile = join(dir, "root.json");
    await Deno.writeFile(rootFile, repo.rootBytes);
    const args = ["trust-root", "update", "--tuf-url", server.url, "--tuf-root", rootFile, "--data-dir", dir];
    const narrow = [
      `--allow-read=${dir},/etc/os-release,/usr/lib/os-release`,
      `--allow-write=${dir}`,
      "--allow-net=127.0.0.1",
      "--allow-sys=hostname",
    ];
    const noEnv = await runCli(args, { permissions: narrow });
    assert.equal(noEnv.code, 2, noEnv.stderr);
    oneErrorLine(noEnv.stderr, /trust-root update needs access to the whole environment.*--allow-env/);
    const ok = await runCli(args, { permissions: [...narrow, "--allow-env"] });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
