/**
 * Builds the bundle artifact: `deno bundle --code-splitting` of main.ts into one folder, whose
 * `main.js` runs offline with `deno run` (no npm registry, no Deno cache needed). Split, not one
 * file: a one-file bundle puts every `node:` import of the program (commander's, the Sigstore
 * libraries', tar's) at its top, so even `verify-local`, which needs none of them, would start Deno's
 * Node compatibility layer and parse 1.2 MB first: about twice its floor (scripts/bench-verify-local).
 * Split, each command's chunks load only when it runs, as in `deno run main.ts` and `deno compile`.
 *
 * Usage: `deno task bundle` (into dist/dangerzone-image/), or `deno run -A scripts/bundle.ts --out DIR`.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a build script talks to its user
import { join } from "node:path";

/** The file of the bundle folder to run. */
export const BUNDLE_ENTRY = "main.js";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * Bundles main.ts into `outDir` (emptied first) and returns the path of its entry file.
 *
 * @example
 * ```ts ignore
 * const entry = await buildBundle("dist/dangerzone-image");
 * ```
 */
export async function buildBundle(outDir: string): Promise<string> {
  await Deno.remove(outDir, { recursive: true }).catch((err: unknown) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--code-splitting", "--outdir", outDir, MAIN],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`deno bundle failed: ${new TextDecoder().decode(out.stderr)}`);
  await makeRequireLazy(outDir);
  const entry = join(outDir, BUNDLE_ENTRY);
  await Deno.stat(entry);
  return entry;
}

/**
 * What `deno bundle` gives the bundled CommonJS packages (the Sigstore and TUF libraries) for
 * `require()`: a `node:module` import and a `createRequire()` call at the top of esbuild's runtime
 * chunk, which every entry imports. That one import starts Deno's Node compatibility layer (~24 ms)
 * on every run, `verify-local` included, which requires nothing.
 */
const EAGER_REQUIRE = 'import { createRequire as __deno_internal_createRequire } from "node:module";\n' +
  "var __require = __deno_internal_createRequire(import.meta.url);\n";

/**
 * The same `require()` (same function, same base URL), made on its first call: `process` and
 * `node:module` are touched only when a CommonJS package runs.
 */
const LAZY_REQUIRE = "var __deno_internal_require;\n" +
  'var __require = (id) => (__deno_internal_require ??= globalThis.process.getBuiltinModule("node:module")\n' +
  "  .createRequire(import.meta.url))(id);\n";

/**
 * Rewrites the one eager `require()` of the bundle into {@linkcode LAZY_REQUIRE}. Fails the build when
 * the bundler's output no longer has exactly one {@linkcode EAGER_REQUIRE} (a new Deno may have changed
 * it: look again rather than ship a bundle that starts the Node layer, or one without `require()`).
 */
export async function makeRequireLazy(outDir: string): Promise<void> {
  const found: string[] = [];
  for await (const f of Deno.readDir(outDir)) {
    if (!f.isFile || !f.name.endsWith(".js")) continue;
    const text = await Deno.readTextFile(join(outDir, f.name));
    const count = text.split(EAGER_REQUIRE).length - 1;
    if (count === 0) continue;
    if (count > 1 || /\b__require\s*(\.|=[^=])/.test(text.replace(EAGER_REQUIRE, ""))) {
      throw new Error(`bundle: unexpected use of __require in ${f.name}`);
    }
    found.push(f.name);
    await Deno.writeTextFile(join(outDir, f.name), text.replace(EAGER_REQUIRE, LAZY_REQUIRE));
  }
  if (found.length !== 1) {
    throw new Error(
      `bundle: expected esbuild's require() set-up in exactly one chunk, found ${found.length}`,
    );
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--out");
  const outDir = i >= 0 ? Deno.args[i + 1] : "dist/dangerzone-image";
  if (outDir === undefined || Deno.args.length !== (i >= 0 ? 2 : 0)) {
    console.error("usage: deno run -A scripts/bundle.ts [--out DIR]");
    Deno.exit(2);
  }
  const entry = await buildBundle(outDir);
  let files = 0;
  for await (const f of Deno.readDir(outDir)) if (f.isFile) files++;
  console.log(`bundle: ${entry} (${files} files); run it with: deno run ${entry} --help`);
}
