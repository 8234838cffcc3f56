/**
 * A bounded, seeded fuzz test of `loadArchive()`: a valid archive is mutated (random byte flips,
 * truncations, tar header edits) for 200 iterations or 120 seconds, whichever comes first. Every run must
 * end within a time limit with either a `DangerzoneError` whose exit code is 13, 10 or 11 (never an
 * internal error, a crash or an unhandled exception), or a load whose image is exactly the signed one
 * (a mutation of bytes nothing depends on, such as a header's mtime). Runs with `DZ_FUZZ_SEED` to replay.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DangerzoneError, exitCodeFor } from "../../src/errors.ts";
import { parsePlatform } from "../../src/oci/platform.ts";
import { loadArchive } from "../../src/update/load_archive.ts";
import { prepareArchive } from "../../src/update/prepare_archive.ts";
import { REPO, startArchiveWorld } from "./_archive_fixture.ts";

const ITERATIONS = 200;
const BUDGET_MS = 120_000;
const PER_RUN_MS = 30_000;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Offsets of every tar header in a well-formed archive. */
function headerOffsets(tar: Uint8Array): number[] {
  const out: number[] = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    out.push(off);
    const size = parseInt(new TextDecoder().decode(h.subarray(124, 135)).replace(/\0/g, "").trim() || "0", 8);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function fixChecksum(tar: Uint8Array, off: number): void {
  const h = tar.subarray(off, off + 512);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

/** One mutation of `valid`, described. */
function mutate(
  valid: Uint8Array,
  headers: number[],
  rand: () => number,
): { bytes: Uint8Array; what: string } {
  const pick = (n: number) => Math.floor(rand() * n);
  const kind = pick(3);
  if (kind === 0) {
    const bytes = valid.slice();
    const flips = 1 + pick(8);
    const at: number[] = [];
    for (let i = 0; i < flips; i++) {
      // Half of the flips land in a header, so they are not all caught by the layer digest.
      const h = headers[pick(headers.length)] ?? 0;
      const off = rand() < 0.5 ? h + pick(512) : pick(bytes.length);
      bytes[off] = (bytes[off] ?? 0) ^ (1 << pick(8));
      at.push(off);
    }
    return { bytes, what: `flip at ${at.join(",")}` };
  }
  if (kind === 1) {
    const len = pick(valid.length);
    return { bytes: valid.slice(0, len), what: `truncate to ${len}` };
  }
  const bytes = valid.slice();
  const off = headers[pick(headers.length)] ?? 0;
  const fields: [string, number, number][] = [
    ["name", 0, 100],
    ["mode", 100, 8],
    ["size", 124, 12],
    ["mtime", 136, 12],
    ["typeflag", 156, 1],
    ["linkname", 157, 100],
    ["magic", 257, 8],
    ["prefix", 345, 155],
  ];
  const [name, start, len] = fields[pick(fields.length)] ?? ["name", 0, 100];
  const values = [
    "../",
    "/",
    "1",
    "2",
    "3",
    "5",
    "6",
    "7",
    "x",
    "L",
    "K",
    "\0",
    "77777777777",
    "00000000001",
  ];
  const value = new TextEncoder().encode(values[pick(values.length)] ?? "x");
  bytes.set(value.subarray(0, len), off + start + pick(Math.max(1, len - value.length + 1)));
  const recompute = rand() < 0.8;
  if (recompute) fixChecksum(bytes, off);
  return { bytes, what: `header ${off} ${name}${recompute ? "" : " (stale checksum)"}` };
}

Deno.test("loadArchive() fuzz: mutated archives are refused cleanly or load exactly the signed image", async () => {
  await using w = await startArchiveWorld();
  const validPath = join(w.tmp.path, "valid.tar");
  const data = await w.dataDir("fuzz");
  using ctx = await w.context(data);
  await prepareArchive(ctx, { platform: parsePlatform("linux/amd64"), output: validPath });
  const valid = await Deno.readFile(validPath);
  const headers = headerOffsets(valid);
  const seed = Number(Deno.env.get("DZ_FUZZ_SEED") ?? "20240605");
  const rand = prng(seed);
  const name = `${w.sr.reg.host}/${REPO}:latest`;
  const started = performance.now();
  const outcomes = new Map<string, number>();
  let iterations = 0;
  for (; iterations < ITERATIONS && performance.now() - started < BUDGET_MS; iterations++) {
    const { bytes, what } = mutate(valid, headers, rand);
    const file = join(w.tmp.path, "fuzz.tar");
    await Deno.writeFile(file, bytes);
    await w.pm.podman(["rmi", "-a", "-f"]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), PER_RUN_MS);
    });
    const result = await Promise.race([
      loadArchive(ctx, file, { force: true }).then((r) => ({ ok: r }), (e: unknown) => ({ error: e })),
      timeout,
    ]);
    clearTimeout(timer);
    const label = `seed ${seed} iteration ${iterations}: ${what}`;
    assert.notEqual(result, "timeout", `${label}: hung`);
    if (result === "timeout") continue;
    if ("error" in result) {
      const err = result.error;
      assert.ok(err instanceof DangerzoneError, `${label}: not a DangerzoneError: ${String(err)}`);
      assert.ok([13, 10, 11].includes(exitCodeFor(err.code)), `${label}: ${err.code} ${err.message}`);
      assert.deepEqual(
        (await w.pm.podman(["images", "-q"])).stdout.trim(),
        "",
        `${label}: something was loaded: ${err.message}`,
      );
      outcomes.set(err.code, (outcomes.get(err.code) ?? 0) + 1);
    } else {
      // Accepted: only possible when the signed image is intact; the runtime must hold exactly it.
      assert.equal(result.ok.digest, w.img.digest, label);
      const digest = (await w.pm.podman(["image", "inspect", "--format", "{{.Digest}}", name])).stdout.trim();
      assert.equal(digest, w.img.digest, label);
      outcomes.set("loaded", (outcomes.get("loaded") ?? 0) + 1);
    }
  }
  assert.ok(iterations >= 50, `only ${iterations} iterations in the time budget`);
  assert.ok((outcomes.get("ARCHIVE_INVALID") ?? 0) > 0);
});
