/**
 * `examples/dangerzone_image_client.py`, the Python caller the README shows: the README's copy is the
 * file, byte for byte, and python3 runs it against the real registry and real podman (check, upgrade
 * with NDJSON progress, verify-local; then up to date; then a failure document for a foreign key).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createTestKey } from "../_helpers/cosign_signer.ts";
import { startPodman } from "../_helpers/podman.ts";
import { makeTempDir } from "../_helpers/process.ts";
import { startSignedRegistry } from "../update/_fixture.ts";

const EXAMPLE = new URL("../../examples/dangerzone_image_client.py", import.meta.url);
const README = new URL("../../README.md", import.meta.url);
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const MARKER = "<!-- examples/dangerzone_image_client.py (tests check this copy equals the file) -->";

Deno.test("README shows examples/dangerzone_image_client.py verbatim", async () => {
  const readme = await Deno.readTextFile(README);
  const at = readme.indexOf(MARKER);
  assert.ok(at >= 0, "the README has no example marker");
  const fence = "```python\n";
  const start = readme.indexOf(fence, at) + fence.length;
  assert.equal(
    readme.slice(at + MARKER.length, start),
    `\n\n${fence}`,
    "the code block must follow the marker",
  );
  const end = readme.indexOf("```\n", start);
  assert.equal(readme.slice(start, end), await Deno.readTextFile(EXAMPLE));
});

/** Runs the example with python3; returns exit code and stdout. */
async function runExample(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("python3", {
    args: [EXAMPLE.pathname, ...args],
    env: { ...env, NO_COLOR: "1", DANGERZONE_IMAGE: `${Deno.execPath()} run --no-prompt -A ${MAIN}` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  assert.equal(new TextDecoder().decode(r.stderr).includes("Traceback"), false, "the example crashed");
  return { code: r.code, out };
}

Deno.test("python3 examples/dangerzone_image_client.py checks, upgrades with progress and verifies (real registry, podman)", async () => {
  await using sr = await startSignedRegistry("plain");
  await using pm = await startPodman();
  await using tmp = makeTempDir("py-client");
  const repo = "sandbox/py";
  const img = await sr.pushBusybox(repo, "latest", "python client");
  await sr.sign(img.digest, { repository: repo, logIndex: 42 });
  const image = `${sr.reg.host}/${repo}:latest`;
  const args = [...sr.cliArgs(image, join(tmp.path, "data")), "--runtime", "podman"];
  const env = { ...sr.env, ...pm.env };

  const first = await runExample(args, env);
  assert.equal(first.code, 0, first.out);
  const lines = first.out.trimEnd().split("\n");
  assert.equal(lines[0], `check: update-available, ${img.digest} (log index 42)`);
  assert.match(first.out, /^download: \d+% of \d+ bytes \((eta \S+s|done)\)$/m);
  assert.match(first.out, /^download: 100% of \d+ bytes \(done\)$/m);
  assert.match(first.out, /^load: 100% of \d+ bytes \(done\)$/m);
  assert.ok(lines.includes(`upgrade: upgraded, ${image} is ${img.digest}`), first.out);
  assert.equal(lines.at(-1), `verify-local: 1 of 1 signature(s) verify for ${img.digest}`);

  const again = await runExample(args, env);
  assert.equal(again.code, 0, again.out);
  assert.deepEqual(again.out.trimEnd().split("\n"), [
    `check: up-to-date, ${img.digest} (log index 42)`,
    `verify-local: 1 of 1 signature(s) verify for ${img.digest}`,
  ]);

  const stranger = join(tmp.path, "stranger.pub");
  await Deno.writeTextFile(stranger, createTestKey().publicPem);
  const refused = await runExample([...args, "--pubkey", stranger], env);
  assert.equal(refused.code, 10, refused.out);
  assert.match(refused.out, /^check failed \(exit 10\): SIGNATURE_INVALID: /);
});
