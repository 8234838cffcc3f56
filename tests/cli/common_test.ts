/**
 * The `--timeout` common option through the CLI: `check` against a registry that accepts and
 * never answers, and against one that trickles its manifest, exits 12 with one line naming the
 * host within the scaled deadlines (before, it hung forever); a malformed value is a usage error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CliResult, oneLine, runCli } from "../_helpers/cli.ts";
import { blobResponse, startFaultServer, startSilentServer } from "../_helpers/fault_server.ts";
import { makeTempDir } from "../_helpers/process.ts";

/** Runs `check` for an image on `host`; fails the test if it does not end within `withinMs`. */
async function checkWithin(host: string, extra: string[], withinMs: number): Promise<CliResult> {
  await using data = makeTempDir("deadline-cli");
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), withinMs)));
  const run = runCli(["check", "--image", `${host}/sandbox/app:latest`, "--data-dir", data.path, ...extra]);
  const result = await Promise.race([run, hang]);
  clearTimeout(timer);
  assert.notEqual(result, "hung", `check still running after ${withinMs} ms`);
  assert.ok(result !== "hung" && Date.now() - started < withinMs);
  return result;
}

Deno.test("check --timeout: a registry that never answers exits 12 with one line naming it", async () => {
  await using silent = startSilentServer();
  // 0.5 s per attempt, 4 attempts with backoff: well under 15 s
  const r = await checkWithin(silent.host, ["--timeout", "0.5"], 15_000);
  assert.equal(r.code, 12, r.stderr);
  const line = oneLine(r.stderr);
  assert.match(line, /no response within 0\.5 s \(connect and response headers\), tried 4 times/);
  assert.ok(line.includes(silent.host), line);
  assert.equal(r.stdout, "");
});

Deno.test("check --timeout: a manifest trickling 1 byte every 5 s exits 12 at the document deadline", async () => {
  const body = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, layers: [] }));
  await using server = startFaultServer([{
    path: /\/manifests\//,
    handler: (req) => blobResponse(req, body, { kind: "slow", chunk: 1, delayMs: 5000 }),
  }]);
  // documents get twice the base timeout: 1 s
  const r = await checkWithin(server.host, ["--timeout", "0.5"], 10_000);
  assert.equal(r.code, 12, r.stderr);
  const line = oneLine(r.stderr);
  assert.match(line, /not complete within 1 s \(document deadline\)/);
  assert.ok(line.includes(server.host), line);
});

Deno.test("check --timeout with a value that is not a positive number of seconds is a usage error", async () => {
  for (const bad of ["abc", "0", "-1", "1e3", "100000"]) {
    const r = await checkWithin("127.0.0.1:9", ["--timeout", bad], 15_000);
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(oneLine(r.stderr), /--timeout must be a number of seconds/);
  }
});
