/**
 * The real root chain of Sigstore's root-signing repository (tests/testdata/vectors/sigstore-root-signing,
 * copied byte-exact from ../shared/vectors: root_history 1..15; keys as hex points in 1-4, PEM with
 * keytype `ecdsa-sha2-nistp256` in 5-8 and PEM with keytype `ecdsa` in 9-15) verified as a sequence
 * of rotations: by `@tufjs/models` step by step (the check tuf-js's `updateRoot` makes), and by the
 * real command walking it from root 1 on a loopback server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Metadata, MetadataKind } from "@tufjs/models";
import { runCli } from "../_helpers/cli.ts";
import { EMBEDDED_TUF_ROOT_JSON } from "../../src/tuf/_embedded_root.ts";
import { describeTufRoot } from "../../src/tuf/tuf_root.ts";
import { TestTufRepo } from "./_tuf_repo.ts";

const HISTORY = new URL("../testdata/vectors/sigstore-root-signing/metadata/root_history/", import.meta.url);
const rootBytes = (v: number) => Deno.readFile(new URL(`${v}.root.json`, HISTORY));
const parseRoot = async (v: number) =>
  Metadata.fromJSON(MetadataKind.Root, JSON.parse(new TextDecoder().decode(await rootBytes(v))));

Deno.test("real Sigstore roots 1..15: each is signed by a threshold of the previous root's keys and of its own", async () => {
  let trusted = await parseRoot(1);
  trusted.verifyDelegate(MetadataKind.Root, trusted);
  for (let v = 2; v <= 15; v++) {
    const next = await parseRoot(v);
    trusted.verifyDelegate(MetadataKind.Root, next);
    next.verifyDelegate(MetadataKind.Root, next);
    assert.equal(next.signed.version, trusted.signed.version + 1);
    trusted = next;
  }
});

Deno.test("real Sigstore roots: a root missing signatures of the previous root's keys is refused", async () => {
  const eight = await parseRoot(8);
  const nine = JSON.parse(new TextDecoder().decode(await rootBytes(9)));
  const root8Keys = new Set(eight.signed.roles[MetadataKind.Root]?.keyIDs);
  nine.signatures = nine.signatures.filter((s: { keyid: string }) => !root8Keys.has(s.keyid));
  assert.throws(
    () => eight.verifyDelegate(MetadataKind.Root, Metadata.fromJSON(MetadataKind.Root, nine)),
    /signed by 0\/3/,
  );
});

Deno.test("the embedded TUF root is the real root 15, byte for byte", async () => {
  assert.equal(EMBEDDED_TUF_ROOT_JSON, new TextDecoder().decode(await rootBytes(15)));
  assert.equal(describeTufRoot(await rootBytes(15), "embedded").version, 15);
});

/**
 * Serves the real roots 2..15 (after `tamper`) and runs `trust-root update` from the real root 1;
 * returns the CLI result, the paths requested and what the data dir's `tuf/` holds afterwards.
 */
async function walkRealChain(tamper: (repo: TestTufRepo) => Promise<void>) {
  const repo = new TestTufRepo();
  repo.files.clear();
  for (let v = 2; v <= 15; v++) repo.files.set(`/${v}.root.json`, await rootBytes(v));
  await tamper(repo);
  await using server = repo.serve();
  const dataDir = await Deno.makeTempDir();
  try {
    const start = join(dataDir, "1.root.json");
    await Deno.writeFile(start, await rootBytes(1));
    const args = [
      "trust-root",
      "update",
      "--tuf-url",
      server.url,
      "--tuf-root",
      start,
      "--data-dir",
      dataDir,
    ];
    const r = await runCli(args);
    const left = (await Array.fromAsync(Deno.readDir(join(dataDir, "tuf")))).map((e) => e.name);
    return { ...r, requested: repo.requested, left: left.filter((n) => n !== "dangerzone-image.lock") };
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("trust-root update walks the real chain 1 -> 15 with tuf-js, then refuses the expired final root", async () => {
  // a timestamp.json to fetch after the walk (never trusted: the final root expired)
  const r = await walkRealChain((repo) => Promise.resolve(repo.publish(new Uint8Array(1))));
  // every rotation verified (none refused), the walk ended at 16 (404), and only then the freeze check
  assert.deepEqual(r.requested, [
    ...Array.from({ length: 15 }, (_, i) => `/${i + 2}.root.json`),
    "/timestamp.json",
  ]);
  assert.equal(r.code, 10, r.stderr);
  assert.match(
    r.stderr,
    /^error: TUF verification .* failed \(expired metadata: freeze attack\?\): Final root.json is expired/,
  );
  assert.deepEqual(r.left, []);
});

Deno.test("trust-root update stops the real chain walk at a tampered root", async () => {
  const r = await walkRealChain(async (repo) => {
    const nine = JSON.parse(new TextDecoder().decode(await rootBytes(9)));
    nine.signed.consistent_snapshot = !nine.signed.consistent_snapshot;
    repo.files.set("/9.root.json", new TextEncoder().encode(JSON.stringify(nine)));
  });
  assert.equal(r.code, 10, r.stderr);
  assert.match(r.stderr, /signatures below threshold/);
  assert.equal(r.requested.at(-1), "/9.root.json");
  assert.deepEqual(r.left, []);
});
