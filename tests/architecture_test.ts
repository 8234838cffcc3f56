/**
 * The module graph of src/ keeps DESIGN.md's architecture: no import cycle (static, type-only or
 * dynamic), and no import against the layering: `src/oci/` imports nothing else of src but
 * `errors.ts`; the library folders (`sigstore`, `registry`, `layout`, `store`, `runtime`, `oci`) never
 * import the policies (`update/`, `updater.ts`, `copy.ts`) or the command layer (`cli/`); `update/`
 * never imports `cli/`. The graph is what `deno info --json` resolves from every file in src/.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join, relative } from "node:path";
import { makeTempDir } from "./_helpers/process.ts";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** Module (path relative to src/) to the src modules it imports. */
type Graph = ReadonlyMap<string, readonly string[]>;

function srcFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...srcFiles(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function specifierOf(value: unknown): string | undefined {
  return isObject(value) && typeof value["specifier"] === "string" ? value["specifier"] : undefined;
}

/** The import graph of every file in src/, from `deno info --json`. */
async function srcGraph(): Promise<Graph> {
  await using tmp = makeTempDir("architecture");
  const entry = join(tmp.path, "all_src.ts");
  const files = srcFiles(SRC).sort();
  await Deno.writeTextFile(entry, files.map((f) => `import "${pathToFileURL(f).href}";\n`).join(""));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.ok(isObject(info) && Array.isArray(info["modules"]));
  const srcUrl = pathToFileURL(SRC).href;
  const toSrc = (s: string | undefined) =>
    s !== undefined && s.startsWith(srcUrl) ? relative(SRC, fileURLToPath(s)) : undefined;
  const graph = new Map<string, string[]>();
  for (const m of info["modules"]) {
    const name = toSrc(specifierOf(m));
    if (name === undefined || !isObject(m)) continue;
    const deps = Array.isArray(m["dependencies"]) ? m["dependencies"] : [];
    const targets = new Set<string>();
    for (const d of deps) {
      if (!isObject(d)) continue;
      for (const t of [toSrc(specifierOf(d["code"])), toSrc(specifierOf(d["type"]))]) {
        if (t !== undefined) targets.add(t);
      }
    }
    graph.set(name, [...targets].sort());
  }
  assert.equal(graph.size, files.length, "every src file is in the graph");
  return graph;
}

/** Every import cycle, each as the path of modules that closes it (empty: none). */
function findCycles(graph: Graph): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, "active");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === "active") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

const LIBRARY = ["oci", "sigstore", "registry", "layout", "store", "runtime"];
const POLICIES = ["update", "updater.ts", "copy.ts"];

/** The top folder (or root file) of a module path relative to src/. */
function area(path: string): string {
  return path.split("/")[0] ?? path;
}

/**
 * The trust boundaries inside src/sigstore/, lowest first (as sigstore-js's bundle / core / verify):
 * a group imports only groups before it; `cosign` and `provenance` are two policies over the same
 * formats and proofs and never import each other. `mod.ts` re-exports them all.
 */
const SIGSTORE_GROUPS: Record<string, readonly string[]> = {
  formats: [],
  crypto: ["formats"],
  cosign: ["formats", "crypto"],
  provenance: ["formats", "crypto"],
};

/** The group of a module of src/sigstore/ (`sigstore/crypto/set.ts` -> `crypto`), else undefined. */
function sigstoreGroup(path: string): string | undefined {
  const parts = path.split("/");
  return parts[0] === "sigstore" && parts.length > 2 ? parts[1] : undefined;
}

/** Every import that breaks the layering, as `from -> to (rule)`. */
function layeringViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const a = area(from);
    for (const to of targets) {
      const b = area(to);
      const [ga, gb] = [sigstoreGroup(from), sigstoreGroup(to)];
      if (ga !== undefined && gb !== undefined && ga !== gb && !(SIGSTORE_GROUPS[ga] ?? []).includes(gb)) {
        out.push(
          `${from} -> ${to} (sigstore/${ga} may import ${
            (SIGSTORE_GROUPS[ga] ?? []).join(", ") || "no other group"
          })`,
        );
      }
      if (a === b) continue;
      if (a === "oci" && to !== "errors.ts") out.push(`${from} -> ${to} (oci imports only errors.ts)`);
      if (LIBRARY.includes(a) && POLICIES.includes(b)) {
        out.push(`${from} -> ${to} (library imports a policy)`);
      }
      if (b === "cli") out.push(`${from} -> ${to} (only main.ts imports cli/)`);
    }
  }
  return out.sort();
}

Deno.test("findCycles() and layeringViolations() find what they look for", () => {
  const cyclic: Graph = new Map([
    ["layout/_tar_entries.ts", ["layout/dir.ts"]],
    ["layout/dir.ts", ["layout/image_tar_stream.ts", "oci/digest.ts"]],
    ["layout/image_tar_stream.ts", ["layout/_tar_entries.ts"]],
    ["oci/digest.ts", ["errors.ts"]],
    ["errors.ts", []],
  ]);
  assert.deepEqual(findCycles(cyclic), [[
    "layout/_tar_entries.ts",
    "layout/dir.ts",
    "layout/image_tar_stream.ts",
    "layout/_tar_entries.ts",
  ]]);
  assert.deepEqual(findCycles(new Map([["a.ts", ["a.ts"]]])), [["a.ts", "a.ts"]]);
  const upward: Graph = new Map([
    ["oci/digest.ts", ["errors.ts", "strict_json.ts"]],
    ["sigstore/policy.ts", ["update/context.ts", "oci/digest.ts", "layout/dir.ts"]],
    ["store/lock.ts", ["copy.ts"]],
    ["update/check.ts", ["cli/output.ts", "sigstore/policy.ts"]],
    ["cli/check.ts", ["update/check.ts"]],
    ["sigstore/formats/bundle.ts", ["sigstore/crypto/keys.ts"]],
    ["sigstore/cosign/policy.ts", ["sigstore/crypto/set.ts", "sigstore/provenance/provenance.ts"]],
  ]);
  assert.deepEqual(layeringViolations(upward), [
    "oci/digest.ts -> strict_json.ts (oci imports only errors.ts)",
    "sigstore/cosign/policy.ts -> sigstore/provenance/provenance.ts (sigstore/cosign may import formats, crypto)",
    "sigstore/formats/bundle.ts -> sigstore/crypto/keys.ts (sigstore/formats may import no other group)",
    "sigstore/policy.ts -> update/context.ts (library imports a policy)",
    "store/lock.ts -> copy.ts (library imports a policy)",
    "update/check.ts -> cli/output.ts (only main.ts imports cli/)",
  ]);
});

Deno.test("src/ has no import cycle and keeps DESIGN.md's layering", async () => {
  const graph = await srcGraph();
  assert.deepEqual(findCycles(graph), [], "import cycles");
  assert.deepEqual(layeringViolations(graph), [], "imports against the layering");
});
