/**
 * Module graphs as Deno loads them: what a start-up costs is decided by the static imports of its entry.
 *
 * @module
 */
import assert from "node:assert/strict";
import { field } from "./cli.ts";

/**
 * The modules `entry` (a file path or URL) loads when it is imported: itself and its static imports,
 * transitively, as `deno info --json` reports them (specifiers such as `file:///…`, `node:path`,
 * `npm:/commander@15.1.0`).
 */
export async function staticClosure(entry: string | URL): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry instanceof URL ? entry.pathname : entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules = new Map<string, unknown>();
  for (const m of asArray(field(info, "modules"))) modules.set(String(field(m, "specifier")), m);
  const seen = new Set<string>();
  const stack = asArray(field(info, "roots")).map(String);
  for (let s = stack.pop(); s !== undefined; s = stack.pop()) {
    if (seen.has(s)) continue;
    seen.add(s);
    for (const dep of asArray(field(modules.get(s), "dependencies"))) {
      const code = field(dep, "code", "specifier");
      if (field(dep, "isDynamic") !== true && typeof code === "string") stack.push(code);
    }
  }
  return [...seen];
}

function asArray(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [];
}
