/**
 * Untrusted text never reaches the terminal raw: a registry whose error bodies and manifest
 * `mediaType` carry `ESC ] 0; … BEL`, `ESC [2J` and C1 CSI, and signature lists whose JSON keys carry
 * them, give human lines with the characters shown escaped, and `--json` documents that hold no raw
 * control byte yet parse back to the exact original strings.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { field, runCli } from "../_helpers/cli.ts";
import { manifestResponse, startFaultServer } from "../_helpers/fault_server.ts";
import { makeTempDir } from "../_helpers/process.ts";

const ATTACK = "\x1b]0;pwned\x07\x1b[2J\u009b31meverything verified OK";
// Anything a terminal acts on: C0 except \t and \n, DEL, C1.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

function assertInert(label: string, text: string): void {
  assert.doesNotMatch(text, RAW_CONTROL, `${label} holds a raw control character: ${JSON.stringify(text)}`);
}

Deno.test("CLI output escapes control characters from a hostile registry; --json stays exact", async () => {
  const enc = new TextEncoder();
  const manifest = enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: `application/x${ATTACK}` }));
  await using s = startFaultServer([
    {
      path: /\/manifests\/denied$/,
      handler: () =>
        new Response(JSON.stringify({ errors: [{ code: "DENIED", message: ATTACK, detail: ATTACK }] }), {
          status: 403,
          headers: { "Content-Type": "application/json" },
        }),
    },
    { path: /\/manifests\/plain$/, handler: () => new Response(ATTACK, { status: 400 }) },
    {
      path: /\/manifests\/latest$/,
      handler: () => manifestResponse(manifest, "application/vnd.oci.image.manifest.v1+json"),
    },
  ]);
  await using data = makeTempDir("terminal-text");
  for (const tag of ["denied", "plain", "latest"]) {
    const args = ["check", "--image", `${s.host}/a/b:${tag}`, "--data-dir", join(data.path, "d")];
    const human = await runCli(args);
    assert.equal(human.code, 12, human.stderr);
    assertInert(`${tag} stderr`, human.stderr);
    assertInert(`${tag} stdout`, human.stdout);
    const json = await runCli([...args, "--json"]);
    assert.equal(json.code, 12, json.stderr);
    assertInert(`${tag} --json stdout`, json.stdout);
    assertInert(`${tag} --json stderr`, json.stderr);
    if (tag === "latest") {
      assert.match(human.stderr, /application\/x\\x1b\]0;pwned\\x07\\x1b\[2J\\u009b31meverything/);
      // The JSON message is exact: the raw characters come back on parsing.
      assert.ok(
        String(field(JSON.parse(json.stdout), "error", "message")).includes(`application/x${ATTACK}`),
      );
    }
  }
});

Deno.test("CLI output escapes control characters in JSON keys of a signature list; --json stays exact", async () => {
  await using dir = makeTempDir("terminal-keys");
  const key = `\u001b]0;pwned\u0007k\u009b`;
  const cases: [string, string][] = [
    ["duplicate key", `[{${JSON.stringify(key)}:1,${JSON.stringify(key)}:2}]`],
    ["unknown key", `[{"Base64Signature":"eA==","Payload":"eA==",${JSON.stringify(key)}:1}]`],
  ];
  for (const [name, text] of cases) {
    const file = join(dir.path, "sigs.json");
    await Deno.writeTextFile(file, text);
    const args = ["verify-signatures", "--signatures", file, "--digest", `sha256:${"0".repeat(64)}`];
    const human = await runCli(args);
    assert.equal(human.code, 10, `${name}: ${human.stderr}`);
    assertInert(`${name} stderr`, human.stderr);
    assert.ok(human.stderr.includes("\\x1b]0;pwned\\x07k\\u009b"), `${name}: ${human.stderr}`);
    const json = await runCli([...args, "--json"]);
    assert.equal(json.code, 10, `${name}: ${json.stderr}`);
    assertInert(`${name} --json stdout`, json.stdout);
    assertInert(`${name} --json stderr`, json.stderr);
    assert.ok(String(field(JSON.parse(json.stdout), "error", "message")).includes(key), name);
  }
});
