/**
 * src/fs_path.ts gives exactly what `node:path` gives (imported here, in the test only), for both
 * flavours over a generated corpus and for the host; it loads nothing; and src/ no longer imports
 * `node:path`, whose first import starts Deno's Node compatibility layer.
 *
 * @module
 */
import assert from "node:assert/strict";
import nodePath, { posix as nodePosix, win32 as nodeWin32 } from "node:path";
import { fileURLToPath } from "node:url";
import { basename, dirname, join, type PathFlavour, posix, win32 } from "../src/fs_path.ts";

/** Components every case is built from: roots, drives, UNC and device roots, dots, reserved names. */
const COMPONENTS = [
  "",
  ".",
  "..",
  "...",
  "a",
  ".a",
  "a/",
  "b/",
  "a\\",
  "/",
  "//",
  "///",
  "\\",
  "\\\\",
  "a\\b",
  "C:",
  "C:\\",
  "c:/x",
  "z:..",
  "x:",
  "b:c",
  ":",
  "a:b/..",
  "\\\\server\\share\\x",
  "//server/share",
  "//server",
  "\\\\?\\",
  "\\\\.\\x",
  "\\\\?\\COM1:",
  "./x",
  "../..",
  "x/./y/../z",
  "CON:",
  "com1:x",
  "LPT\u00b9:",
  "aux",
  "CONx",
  "nul/",
  "NUL.txt",
];

/** Every sequence of 0 to `max` components (with repetition). */
function sequences(max: number): string[][] {
  const out: string[][] = [[]];
  let level: string[][] = [[]];
  for (let n = 1; n <= max; n++) {
    level = level.flatMap((prefix) => COMPONENTS.map((c) => [...prefix, c]));
    out.push(...level);
  }
  return out;
}

const JOIN_CASES = sequences(3);
/** Single paths: each sequence run together, so separators come only from the components. */
const PATH_CASES = [...new Set(JOIN_CASES.map((parts) => parts.join("")))];

/** The cases where `ours` and `theirs` differ, shown as `f(args) = ours, node: theirs`. */
function differences(
  name: string,
  cases: readonly string[][],
  ours: (...args: string[]) => string,
  theirs: (...args: string[]) => string,
): string[] {
  const out: string[] = [];
  for (const args of cases) {
    const [a, b] = [ours(...args), theirs(...args)];
    if (a !== b) {
      out.push(
        `${name}(${JSON.stringify(args).slice(1, -1)}) = ${JSON.stringify(a)}, node: ${JSON.stringify(b)}`,
      );
    }
  }
  return out;
}

/** Every difference between a flavour and its `node:path` counterpart over the whole corpus. */
function flavourDifferences(label: string, ours: PathFlavour, theirs: PathFlavour): string[] {
  const single = PATH_CASES.map((p) => [p]);
  return [
    ...differences(`${label}.join`, JOIN_CASES, ours.join, theirs.join),
    ...differences(`${label}.dirname`, single, (p = "") => ours.dirname(p), (p = "") => theirs.dirname(p)),
    ...differences(`${label}.basename`, single, (p = "") => ours.basename(p), (p = "") => theirs.basename(p)),
  ];
}

Deno.test("the corpus covers thousands of distinct join sequences and paths", () => {
  assert.equal(JOIN_CASES.length, 1 + 39 + 39 ** 2 + 39 ** 3);
  assert.ok(PATH_CASES.length > 20_000, `${PATH_CASES.length} distinct paths`);
});

Deno.test("posix join(), dirname() and basename() equal node:path posix over the corpus", () => {
  const diffs = flavourDifferences("posix", posix, nodePosix);
  assert.deepEqual(diffs.slice(0, 20), [], `${diffs.length} differences`);
});

Deno.test("win32 join(), dirname() and basename() equal node:path win32 over the corpus", () => {
  const diffs = flavourDifferences("win32", win32, nodeWin32);
  assert.deepEqual(diffs.slice(0, 20), [], `${diffs.length} differences`);
});

Deno.test("win32 join() treats as a device exactly what node:path does", () => {
  const names = ["CON", "PRN", "AUX", "NUL", "COM", "LPT", "CONN", "NU"].flatMap((base) =>
    ["", "0", "1", "5", "9", "\u00b9", "\u00b2", "\u00b3", "\u2074", "x"].flatMap((
      n,
    ) => [base + n, (base + n).toLowerCase()])
  );
  const cases = names.flatMap((name) => [
    [`${name}:`, "..", "x"],
    [`${name}:x`, ".."],
    ["a", `${name}:`, "../b/"],
    [name],
    [`${name}y`],
    [`${name}/`],
  ]);
  assert.deepEqual(differences("win32.join", cases, win32.join, nodeWin32.join).slice(0, 20), []);
  const kept = names.filter((name) => nodeWin32.join(`${name}:`, "..", "x").includes(".."));
  assert.ok(kept.length > 0 && kept.length < names.length, "the sweep holds devices and non-devices");
});

Deno.test("join(), dirname() and basename() follow the host's node:path", () => {
  const host = { join, dirname, basename };
  const diffs = flavourDifferences("host", host, nodePath);
  assert.deepEqual(diffs.slice(0, 20), [], `${diffs.length} differences`);
  // The flavours disagree on these, so the comparison above tells which one the host got.
  assert.notEqual(posix.join("a\\b", ".."), win32.join("a\\b", ".."));
  assert.notEqual(posix.dirname("C:\\x"), win32.dirname("C:\\x"));
});

Deno.test("posix and win32 examples", () => {
  assert.equal(posix.join("/data", "tuf", "../signatures", "k/"), "/data/signatures/k/");
  assert.equal(posix.join("", ""), ".");
  assert.equal(posix.join("a", "../.."), "..");
  assert.equal(posix.dirname("//a"), "//");
  assert.equal(posix.dirname("/a/b//"), "/a");
  assert.equal(posix.basename("/a/b//"), "b");
  assert.equal(posix.basename("a\\b"), "a\\b");

  assert.equal(win32.join("C:\\data", "tuf/root.json"), "C:\\data\\tuf\\root.json");
  assert.equal(win32.join("//server", "share"), "\\\\server\\share\\");
  assert.equal(win32.join("///a", "b"), "\\a\\b");
  assert.equal(win32.join("C:\\a", "..", ".."), "C:\\");
  assert.equal(win32.join("x", "..", "c:y"), ".\\c:y", "a relative path never becomes a drive");
  assert.equal(win32.join("CON:", "..", "x"), "CON:\\..\\x", "no `..` through a reserved device");
  assert.equal(win32.dirname("C:\\a\\b"), "C:\\a");
  assert.equal(win32.dirname("C:\\a"), "C:\\");
  assert.equal(win32.dirname("\\\\server\\share"), "\\\\server\\share");
  assert.equal(win32.dirname("\\\\server\\share\\x"), "\\\\server\\share\\");
  assert.equal(win32.basename("C:x"), "x");
  assert.equal(win32.basename("a/b\\"), "b");
});

Deno.test("src/fs_path.ts imports nothing and never reads globalThis.process", async () => {
  const url = new URL("../src/fs_path.ts", import.meta.url).href;
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json", url], stdout: "piped" })
    .output();
  assert.equal(info.code, 0);
  const graph: unknown = JSON.parse(new TextDecoder().decode(info.stdout));
  const modules = typeof graph === "object" && graph !== null && "modules" in graph ? graph.modules : [];
  assert.deepEqual(Array.isArray(modules) ? modules.map((m: { specifier?: unknown }) => m.specifier) : [], [
    url,
  ]);

  const code = `let touched = false;
    Object.defineProperty(globalThis, "process", { configurable: true, get() { touched = true; return undefined; } });
    const p = await import(${JSON.stringify(url)});
    for (const f of [p, p.posix, p.win32]) f.join(f.dirname("/a/b"), f.basename("c:\\\\d"));
    console.log(touched);`;
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  assert.equal(new TextDecoder().decode(run.stderr), "");
  assert.equal(new TextDecoder().decode(run.stdout).trim(), "false");
});

/** Whether TypeScript source text imports `node:path` (or its `/posix`, `/win32`) in any form. */
function importsNodePath(source: string): boolean {
  return /["']node:path(?:\/(?:posix|win32))?["']/.test(source);
}

/** Every .ts file under `dir`. */
function tsFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) return tsFiles(path);
    return e.isFile && e.name.endsWith(".ts") ? [path] : [];
  });
}

Deno.test("importsNodePath() finds static, dynamic and re-export forms", () => {
  assert.ok(importsNodePath('import { join } from "node:path";'));
  assert.ok(importsNodePath("const p = await import('node:path/posix');"));
  assert.ok(importsNodePath('export { sep } from "node:path/win32";'));
  assert.ok(!importsNodePath('import { join } from "../fs_path.ts"; // not node:path'));
  assert.ok(!importsNodePath('import x from "node:pathological";'));
});

Deno.test("no file in src/ imports node:path (src/fs_path.ts gives the same paths)", () => {
  const src = fileURLToPath(new URL("../src", import.meta.url));
  const files = tsFiles(src);
  assert.ok(files.length > 50, `${files.length} files in src/`);
  const offenders = files.filter((f) => importsNodePath(Deno.readTextFileSync(f))).map((f) =>
    f.slice(src.length + 1)
  );
  assert.deepEqual(offenders.sort(), [], "import from src/fs_path.ts instead");
});
