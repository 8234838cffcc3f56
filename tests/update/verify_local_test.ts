/**
 * `verifyLocalImage()` in process: the stored signatures are verified while the runtime is still
 * answering (so that only a lookup is left once it has), and only the verdicts of the digests the
 * runtime reports count. The CLI runs against real podman in tests/cli/verify_local_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { buildLocalContext } from "../../src/cli/_context.ts";
import { Output } from "../../src/cli/output.ts";
import type { Digest } from "../../src/oci/digest.ts";
import { PodmanRuntime } from "../../src/runtime/podman.ts";
import { type HeldImage, SPECULATIVE_DIGESTS, verifyLocalImage } from "../../src/update/verify_local.ts";
import { createTestKey, signImage } from "../_helpers/cosign_signer.ts";
import { makeTempDir } from "../_helpers/process.ts";

const REFERENCE = "registry.example/sandbox/app";
const digestOf = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}` as Digest;

/** A data dir whose store holds a signature for `signed` and a damaged file for each of `damaged`. */
async function world(dir: string, signed: Digest, damaged: Digest[]) {
  const publisher = createTestKey();
  const rekor = createTestKey();
  const pubkey = join(dir, "cosign.pub");
  const rekorKey = join(dir, "rekor.pub");
  await Deno.writeTextFile(pubkey, publisher.publicPem);
  await Deno.writeTextFile(rekorKey, rekor.publicPem);
  const dataDir = join(dir, "data");
  const keyDir = join(dataDir, "signatures", createHash("sha256").update(publisher.publicPem).digest("hex"));
  await Deno.mkdir(keyDir, { recursive: true });
  const { entry } = signImage({ digest: signed, reference: REFERENCE, publisher, rekor, logIndex: 7 });
  await Deno.writeTextFile(join(keyDir, `${signed.slice(7)}.json`), JSON.stringify([entry]));
  for (const d of damaged) await Deno.writeTextFile(join(keyDir, `${d.slice(7)}.json`), "[{not json");
  return await buildLocalContext({ pubkey, rekorKey, dataDir, image: `${REFERENCE}:latest` }, new Output({}));
}

/** Counts Web Crypto signature checks (a Rekor SET and a publisher signature each) while `fn` runs. */
async function countingVerifies<T>(fn: (count: () => number) => Promise<T>): Promise<T> {
  const subtle = crypto.subtle;
  const original = subtle.verify;
  let calls = 0;
  subtle.verify = function (...args: Parameters<SubtleCrypto["verify"]>) {
    calls++;
    return original.apply(subtle, args);
  };
  try {
    return await fn(() => calls);
  } finally {
    subtle.verify = original;
  }
}

/** A runtime answer the test gives when it chooses. */
function pendingAnswer(): { held: Promise<HeldImage>; answer(digests: Digest[]): void } {
  let answer: (h: HeldImage) => void = () => {};
  const held = new Promise<HeldImage>((resolve) => answer = resolve);
  const runtime = new PodmanRuntime({ path: "/nonexistent/podman" }); // never run: the answer is given
  return { held, answer: (digests) => answer({ image: `${REFERENCE}:latest`, runtime, digests }) };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 10_000; !condition();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("verifyLocalImage verifies the stored signatures before the runtime answers, then only looks up", async () => {
  await using dir = makeTempDir("vl-speculate");
  const signed = digestOf("platform");
  const damaged = digestOf("an older image");
  const ctx = await world(dir.path, signed, [damaged]);
  await countingVerifies(async (count) => {
    const { held, answer } = pendingAnswer();
    const result = verifyLocalImage(ctx, { image: `${REFERENCE}:latest`, held });
    // the signature and its SET are checked while the runtime has not answered yet
    await until(() => count() >= 2, "the speculative verification");
    const before = count();
    answer([signed]);
    const local = await result;
    assert.equal(local.digest, signed);
    assert.equal(local.verified.length, 1);
    assert.equal(count(), before, "the verdict is looked up, not verified again");
  });
});

Deno.test("verifyLocalImage: a damaged stored file of a digest the runtime does not report changes nothing", async () => {
  await using dir = makeTempDir("vl-speculate-damaged");
  const signed = digestOf("platform");
  const damaged = digestOf("an older image");
  const ctx = await world(dir.path, signed, [damaged]);
  const { held, answer } = pendingAnswer();
  answer([signed]);
  assert.equal((await verifyLocalImage(ctx, { held })).digest, signed);
  // ... but one the runtime reports first is that digest's failure, as before
  const second = pendingAnswer();
  second.answer([damaged, signed]);
  await assert.rejects(verifyLocalImage(ctx, { held: second.held }), /STORE_INVALID|not JSON|JSON/i);
});

Deno.test("verifyLocalImage verifies nothing ahead when the key's folder holds many digests", async () => {
  await using dir = makeTempDir("vl-speculate-many");
  const signed = digestOf("platform");
  const others = Array.from({ length: SPECULATIVE_DIGESTS }, (_, i) => digestOf(`old ${i}`));
  const ctx = await world(dir.path, signed, others);
  await countingVerifies(async (count) => {
    const { held, answer } = pendingAnswer();
    const result = verifyLocalImage(ctx, { held });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(count(), 0, "nothing verified before the answer");
    answer([signed]);
    assert.equal((await result).digest, signed);
    assert.equal(count(), 2);
  });
});
