/**
 * `--connections N`: a whole number from 1 to 16, refused as a usage error (exit 2) otherwise.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { connectionsOption } from "../../src/cli/common.ts";
import { oneLine, runCli } from "../_helpers/cli.ts";

Deno.test("connectionsOption() takes 1 to 16 and refuses anything else with USAGE", () => {
  assert.equal(connectionsOption(undefined), 4);
  assert.equal(connectionsOption("1"), 1);
  assert.equal(connectionsOption("16"), 16);
  for (const bad of ["0", "17", "-1", "2.5", "abc", "", "4 ", "0x4"]) {
    assert.throws(
      () => connectionsOption(bad),
      (e: unknown) => e instanceof DangerzoneError && e.code === "USAGE",
      bad,
    );
  }
});

Deno.test("check --connections 0 exits 2 with one line", async () => {
  const r = await runCli(["check", "--connections", "0", "--image", "127.0.0.1:9/x/y:latest"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(oneLine(r.stderr), /--connections must be a number from 1 to 16/);
});
