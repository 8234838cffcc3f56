import assert from "node:assert/strict";
import { runCli } from "../_helpers/cli.ts";
import { craftEntry, world } from "../sigstore/_craft.ts";

const VECTORS = new URL("../testdata/vectors/", import.meta.url);
const vector = (p: string) => new URL(p, VECTORS).pathname;
const SIGS = "dangerzone/tests/assets/signatures";
const KEYDIR = "95b432860b272938246b10e1cfc89a24e1db352b3aebaa799c4284c42c46bd95";
const TEST_KEY = vector("dangerzone/tests/assets/test.pub.key");
const D1 = "fa948726aac29a6ac49f01ec8fbbac18522b35b2491fdf716236a0b3502a2ca7";
const D2 = "19e8eacd75879d05f6621c2ea8dd955e68ee3e07b41b9d53f4c8cc9929a68a67";

/** `verify-signatures` arguments for a signature file and a digest (`sha256:` added when missing), then `extra`. */
function verifyArgs(file: string, digest: string, ...extra: string[]): string[] {
  const prefixed = digest.startsWith("sha256:") ? digest : `sha256:${digest}`;
  return ["verify-signatures", "--signatures", file, "--digest", prefixed, ...extra];
}

/** A Dangerzone test-asset signature file: `set` is valid, invalid or tampered; `digest` its image. */
const asset = (set: string, digest: string) => vector(`${SIGS}/${set}/${KEYDIR}/${digest}.json`);

function oneErrorLine(stderr: string, rule: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0] ?? "", /^error: /);
  assert.match(lines[0] ?? "", rule);
  assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/); // no stack trace
}

Deno.test("verify-signatures exits 0 for valid Dangerzone signatures and reports them", async () => {
  const r = await runCli(verifyArgs(asset("valid", D1), D1, "--pubkey", TEST_KEY));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /3 of 3 signature\(s\)/);
  assert.match(r.stdout, /index 164177381/);
});

Deno.test("verify-signatures --json reports verdict, key, log ID, index, time and reference per signature", async () => {
  const r = await runCli(verifyArgs(asset("valid", D1), D1, "--pubkey", TEST_KEY, "--json"));
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.ok, true);
  assert.equal(doc.signatures.length, 3);
  const s = doc.signatures[0];
  assert.equal(s.verdict, "verified");
  assert.equal(s.key.fileSha256, KEYDIR);
  assert.equal(s.logId, "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d");
  assert.equal(s.logIndex, 164177381);
  assert.equal(typeof s.integratedTime, "number");
  assert.equal(s.dockerReference, "ghcr.io/almet/dangerzone/dangerzone");
});

Deno.test("verify-signatures exits 10 with one line naming the rule for invalid, tampered and mismatched input", async () => {
  const cases: [string[], RegExp][] = [
    [verifyArgs(asset("invalid", D2), D2, "--pubkey", TEST_KEY), /rule 2 \(signature\)/],
    [verifyArgs(asset("tampered", D2), D2, "--pubkey", TEST_KEY), /rule 2 \(signature\)/],
    [verifyArgs(asset("valid", D2), D1, "--pubkey", TEST_KEY), /rule 2 \(payload\).*not for sha256/],
    [
      verifyArgs(asset("valid", D2), D2),
      /rule 2 \(signature\)/,
    ], // pinned production key
    [
      verifyArgs(
        asset("valid", D2),
        D2,
        "--pubkey",
        TEST_KEY,
        "--reference",
        "ghcr.io/freedomofpress/dangerzone/v1",
      ),
      /docker-reference/,
    ],
    [
      verifyArgs(asset("valid", D2), D2, "--pubkey", TEST_KEY, "--rekor-key", TEST_KEY),
      /rule 3 \(Rekor SET\).*not a trusted Rekor log/,
    ],
  ];
  for (const [args, rule] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 10, `${args.join(" ")}\n${r.stderr}`);
    oneErrorLine(r.stderr, rule);
  }
});

Deno.test("verify-signatures honours SIGSTORE_REKOR_PUBLIC_KEY (a wrong log key fails with exit 10)", async () => {
  const args = verifyArgs(asset("valid", D2), D2, "--pubkey", TEST_KEY);
  const bad = await runCli(args, { env: { SIGSTORE_REKOR_PUBLIC_KEY: TEST_KEY } });
  assert.equal(bad.code, 10);
  oneErrorLine(bad.stderr, /TLOG|Rekor/i);
  const good = await runCli(args, {
    env: { SIGSTORE_REKOR_PUBLIC_KEY: vector("dangerzone/share/rekor.pub") },
  });
  assert.equal(good.code, 0, good.stderr);
});

Deno.test("verify-signatures refuses an empty list, hostile JSON and oversized input with exit 10", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const w = await world();
    const key = `${dir}/cosign.pub`;
    await Deno.writeTextFile(key, w.publisher.publicPem);
    const rekor = `${dir}/rekor.pub`;
    await Deno.writeTextFile(rekor, w.rekor.publicPem);
    const files: [string, string, RegExp][] = [
      ["empty.json", "[]", /signature list is empty/],
      ["dup.json", '[{"Base64Signature":"AAAA","Base64Signature":"AAAA"}]', /rule 8 \(format\)/],
      ["notjson.json", "hello", /rule 8 \(format\)/],
      [
        "nobundle.json",
        JSON.stringify([await craftEntry({ noBundle: true })]),
        /rule 3.*no transparency-log proof/,
      ],
      ["many.json", `[${Array(1001).fill("{}").join(",")}]`, /rule 7 \(bounded input\)/],
    ];
    for (const [name, text, rule] of files) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
      const r = await runCli(verifyArgs(`${dir}/${name}`, w.digest, "--pubkey", key, "--rekor-key", rekor));
      assert.equal(r.code, 10, `${name}: ${r.stderr}`);
      oneErrorLine(r.stderr, rule);
    }
    await Deno.writeTextFile(`${dir}/ok.json`, JSON.stringify([await craftEntry()]));
    const ok = await runCli(
      verifyArgs(
        `${dir}/ok.json`,
        w.digest,
        "--pubkey",
        key,
        "--rekor-key",
        rekor,
        "--reference",
        w.reference,
      ),
    );
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("verify-signatures rejects a malformed --digest as a usage error (exit 2)", async () => {
  const r = await runCli(["verify-signatures", "--signatures", "x.json", "--digest", "sha256:XYZ"]);
  assert.equal(r.code, 2);
  oneErrorLine(r.stderr, /invalid digest/);
});
