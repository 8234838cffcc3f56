/**
 * Builds release binaries with `deno compile` for the five release targets.
 *
 * `deno compile` needs the `denort` runtime of each target, which Deno downloads from its own
 * servers; where those are unreachable this script says so clearly and exits 1 instead of
 * leaving half a release behind. Usage: `deno task compile [--target TRIPLE]... [--out DIR]`.
 *
 * @module
 */
// deno-lint-ignore-file no-console -- a build script talks to its user

/** The release targets (x86_64 and aarch64 Linux and macOS, x86_64 Windows). */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * The permissions baked into the binary: registry traffic, running podman/docker and credential
 * helpers, the data dir and key files, the environment (proxy, XDG, DANGERZONE_DATA_DIR), and
 * /etc/os-release (Tails detection).
 */
export const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-run"];

async function main(args: string[]): Promise<number> {
  const targets: string[] = [];
  let out = "dist";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--target" && args[i + 1] !== undefined) targets.push(String(args[++i]));
    else if (arg === "--out" && args[i + 1] !== undefined) out = String(args[++i]);
    else {
      console.error(`compile: unknown argument ${arg}`);
      return 2;
    }
  }
  const selected = targets.length > 0 ? targets : [...TARGETS];
  await Deno.mkdir(out, { recursive: true });
  for (const target of selected) {
    const exe = `${out}/dangerzone-image-${target}${target.includes("windows") ? ".exe" : ""}`;
    const cmd = new Deno.Command(Deno.execPath(), {
      args: ["compile", ...PERMISSIONS, "--target", target, "--output", exe, "main.ts"],
      stdout: "inherit",
      stderr: "piped",
    });
    const result = await cmd.output();
    const stderr = new TextDecoder().decode(result.stderr);
    if (result.code !== 0) {
      const unreachable = /denort|dl\.deno\.land|download|dns error|connect/i.test(stderr);
      console.error(
        unreachable
          ? `compile: cannot build ${target}: deno compile needs the denort runtime for this target, ` +
            "and it could not be downloaded here (no access to Deno's download server). " +
            "Release binaries are built by .github/workflows/release.yml; locally use `deno task bundle`."
          : `compile: deno compile failed for ${target}:\n${stderr}`,
      );
      return 1;
    }
    console.log(`compile: built ${exe}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
