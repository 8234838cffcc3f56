import assert from "node:assert/strict";
import { DangerzoneError } from "../../src/errors.ts";
import { resolveDataDir } from "../../src/store/data_dir.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("resolveDataDir() order: --data-dir, DANGERZONE_DATA_DIR, XDG_DATA_HOME/dangerzone, ~/.local/share/dangerzone", () => {
  const all = { DANGERZONE_DATA_DIR: "/d", XDG_DATA_HOME: "/x", HOME: "/h" };
  assert.equal(resolveDataDir({ dataDir: "/flag", env: env(all) }), "/flag");
  assert.equal(resolveDataDir({ env: env(all) }), "/d");
  assert.equal(resolveDataDir({ env: env({ XDG_DATA_HOME: "/x", HOME: "/h" }) }), "/x/dangerzone");
  assert.equal(resolveDataDir({ env: env({ HOME: "/h" }) }), "/h/.local/share/dangerzone");
  assert.throws(
    () => resolveDataDir({ env: env({}) }),
    (e: unknown) => e instanceof DangerzoneError && e.code === "CONFIG_INVALID",
  );
});
