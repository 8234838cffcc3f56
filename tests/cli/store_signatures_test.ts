/**
 * `store-signatures` against the real registry (plain HTTP and token auth) with signatures made by the
 * test signer: the exact store layout, `last_log_index`, exit codes and one-line errors; nothing stored
 * when verification fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256Digest } from "../../src/oci/digest.ts";
import { oneLine, pathExists as exists, runCli } from "../_helpers/cli.ts";
import { signatureManifest, signImage } from "../_helpers/cosign_signer.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startSignedRegistry } from "../update/_fixture.ts";

const REPO = "sandbox/app";

for (const mode of ["plain", "token"] as const) {
  Deno.test(`store-signatures (${mode} registry) writes the exact store layout and last_log_index`, async () => {
    await using sr = await startSignedRegistry(mode);
    await using data = makeTempDir("store-data");
    const img = await sr.pushBusybox(REPO, "latest", `store ${mode}`);
    const signed = await sr.sign(img.digest, { repository: REPO, logIndex: 41, count: 2 });
    const image = `${sr.reg.host}/${REPO}:latest`;

    const r = await runCli(["store-signatures", ...sr.cliArgs(image, data.path), "--json"], { env: sr.env });
    assert.equal(r.code, 0, r.stderr);
    const doc: unknown = JSON.parse(r.stdout);
    assert.ok(typeof doc === "object" && doc !== null);

    const keyHex = (await sha256Digest(new TextEncoder().encode(sr.publisher.publicPem))).slice(7);
    const path = join(data.path, "signatures", keyHex, `${img.digest.slice(7)}.json`);
    assert.equal(Reflect.get(Reflect.get(doc, "stored"), "path"), path);
    const stored: unknown = JSON.parse(await Deno.readTextFile(path));
    assert.ok(Array.isArray(stored));
    assert.equal(stored.length, 2);
    // Byte-faithful cosign download-signature entries, in discovery order.
    assert.deepEqual(stored, signed.map((s) => s.entry));
    assert.equal(await Deno.readTextFile(join(data.path, "signatures", "last_log_index")), "42");
    const state: unknown = JSON.parse(
      await Deno.readTextFile(join(data.path, "signatures", "log_state.json")),
    );
    const log = Reflect.get(Reflect.get(state ?? {}, "logs"), sr.rekor.spkiSha256);
    assert.equal(Reflect.get(log, "logIndex"), 42);
    assert.equal(Reflect.get(log, "digest"), img.digest);
    // No lock or temp files left behind.
    const names = [];
    for await (const e of Deno.readDir(data.path)) names.push(e.name);
    assert.deepEqual(names.sort(), ["signatures"]);
  });
}

Deno.test("store-signatures with a tampered signature exits 10 with one line and stores nothing", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("store-data");
  const img = await sr.pushBusybox(REPO, "latest", "tampered");
  const good = signImage({
    digest: img.digest,
    reference: `${sr.reg.host}/${REPO}`,
    publisher: sr.publisher,
    rekor: sr.rekor,
    logIndex: 7,
  });
  // Flip one byte of the signature (the annotation), keep everything else.
  const sigBytes = Uint8Array.from(atob(good.signatureB64), (c) => c.charCodeAt(0));
  sigBytes[sigBytes.length - 3] = (sigBytes[sigBytes.length - 3] ?? 0) ^ 0x01;
  const tampered = { ...good, signatureB64: btoa(String.fromCharCode(...sigBytes)) };
  await sr.pushSignatureManifest(REPO, signatureManifest(img.digest, [tampered]));

  const r = await runCli(["store-signatures", ...sr.cliArgs(`${sr.reg.host}/${REPO}:latest`, data.path)], {
    env: sr.env,
  });
  assert.equal(r.code, 10, r.stderr);
  assert.match(oneLine(r.stderr), /^error: .*rule 2 \(signature\)/);
  assert.equal(await exists(join(data.path, "signatures")), false);
});

Deno.test("store-signatures on an unsigned image exits 10 SIGNATURE_MISSING with a hint", async () => {
  await using sr = await startSignedRegistry("plain");
  await using data = makeTempDir("store-data");
  await sr.pushBusybox(REPO, "latest", "unsigned");
  const r = await runCli([
    "store-signatures",
    ...sr.cliArgs(`${sr.reg.host}/${REPO}:latest`, data.path),
    "--json",
  ], { env: sr.env });
  assert.equal(r.code, 10, r.stderr);
  const doc: unknown = JSON.parse(r.stdout);
  assert.equal(Reflect.get(Reflect.get(doc ?? {}, "error"), "code"), "SIGNATURE_MISSING");
  assert.match(oneLine(r.stderr), /no signatures found .*\(the image is not signed/);
  assert.equal(await exists(join(data.path, "signatures")), false);
});
