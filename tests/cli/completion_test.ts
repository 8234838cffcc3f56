/**
 * `completion bash|zsh|fish`: the generated scripts loaded in real shells complete commands, options,
 * option choices and files; a command added to the tree completes without editing the generator.
 * bash is driven through `COMP_WORDS`/`COMP_CWORD` and the completion function, fish through
 * `complete -C`, zsh interactively through `zsh/zpty` (a TAB typed on a real line editor).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Option } from "commander";
import { buildProgram } from "../../src/cli/program.ts";
import { completionModel, completionScript, type Shell } from "../../src/cli/completion.ts";
import { runCli } from "../_helpers/cli.ts";
import { makeTempDir, runCommand } from "../_helpers/process.ts";

/** The script the CLI prints (run as a user would). */
async function printed(shell: Shell): Promise<string> {
  const r = await runCli(["completion", shell]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  return r.stdout;
}

/** Loads `script` in bash and completes `line` (the cursor at its end); returns COMPREPLY. */
async function bashComplete(script: string, line: string, cwd?: string): Promise<string[]> {
  const words = line.split(" ");
  const driver = [
    script,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})`,
    `COMP_CWORD=${words.length - 1}`,
    `COMP_LINE='${line}'`,
    `COMP_POINT=${line.length}`,
    `_dangerzone_image`,
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
  ].join("\n");
  const r = await runCommand(
    "bash",
    ["--norc", "--noprofile", "-c", driver],
    cwd === undefined ? {} : { cwd },
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l !== "");
}

/** Loads `script` in fish and lists the completions of `line` (names only). */
async function fishComplete(script: string, line: string, cwd: string): Promise<string[]> {
  const dir = join(cwd, ".fish");
  await Deno.mkdir(dir, { recursive: true });
  const file = join(dir, "dangerzone-image.fish");
  await Deno.writeTextFile(file, script);
  const r = await runCommand("fish", ["--no-config", "-c", `source ${file}; complete -C '${line}'`], { cwd });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t")[0] ?? "");
}

Deno.test("completion bash: a real bash completes commands, options, choices and files", async () => {
  const script = await printed("bash");
  await using dir = makeTempDir("completion-bash");
  await Deno.writeTextFile(join(dir.path, "archive-amd64.tar"), "");
  assert.deepEqual(await bashComplete(script, "dangerzone-image up"), ["upgrade"]);
  assert.deepEqual(await bashComplete(script, "dangerzone-image ver"), [
    "verify-local",
    "verify-bundle",
    "verify-signatures",
  ]);
  const options = await bashComplete(script, "dangerzone-image verify-local --");
  for (const o of ["--image", "--pubkey", "--runtime", "--data-dir", "--json", "--help"]) {
    assert.ok(options.includes(o), `${o} in ${options.join(" ")}`);
  }
  assert.ok(!options.includes("--prune"), "an upgrade-only option is offered for verify-local");
  assert.ok((await bashComplete(script, "dangerzone-image upgrade --pr")).includes("--prune"));
  assert.deepEqual(await bashComplete(script, "dangerzone-image check --runtime "), ["podman", "docker"]);
  assert.deepEqual(await bashComplete(script, "dangerzone-image completion "), ["bash", "zsh", "fish"]);
  assert.deepEqual(await bashComplete(script, "dangerzone-image load-archive arch", dir.path), [
    "archive-amd64.tar",
  ]);
  assert.deepEqual(
    await bashComplete(script, "dangerzone-image load-archive --pubkey arch", dir.path),
    ["archive-amd64.tar"],
  );
  assert.deepEqual(await bashComplete(script, "dangerzone-image check --image "), []);
  const registered = await runCommand("bash", ["--norc", "-c", `${script}\ncomplete -p dangerzone-image`]);
  assert.equal(registered.stdout.trim(), "complete -F _dangerzone_image dangerzone-image");
});

Deno.test("completion fish: a real fish completes commands, options, choices and files", async () => {
  const script = await printed("fish");
  await using dir = makeTempDir("completion-fish");
  await Deno.writeTextFile(join(dir.path, "archive-amd64.tar"), "");
  assert.deepEqual(await fishComplete(script, "dangerzone-image up", dir.path), ["upgrade"]);
  const options = await fishComplete(script, "dangerzone-image verify-local --", dir.path);
  for (const o of ["--image", "--runtime", "--data-dir", "--json", "--help"]) {
    assert.ok(options.includes(o), `${o} in ${options.join(" ")}`);
  }
  assert.ok(!options.includes("--prune"));
  assert.deepEqual(
    (await fishComplete(script, "dangerzone-image check --runtime ", dir.path)).sort(),
    ["docker", "podman"],
  );
  assert.deepEqual(await fishComplete(script, "dangerzone-image load-archive arch", dir.path), [
    "archive-amd64.tar",
  ]);
});

Deno.test("completion zsh: TAB in a real interactive zsh completes commands, options and choices", async () => {
  const script = await printed("zsh");
  await using dir = makeTempDir("completion-zsh");
  const file = join(dir.path, "_dangerzone-image.zsh");
  await Deno.writeTextFile(file, script);
  const typed = [
    "dangerzone-image up",
    "dangerzone-image check --runt",
    "dangerzone-image check --runtime d",
  ];
  const driver = [
    "zmodload zsh/zpty",
    "zpty -b z 'zsh -f -i'",
    `zpty -w z 'PS1=""; autoload -Uz compinit; compinit -u -D; source ${file}; echo READY'`,
    "zpty -r z line '*READY*'; zpty -r z line '*READY*'",
    // zle reads the pty in order: each TAB completes before the keys after it are read
    ...typed.map((t) => `zpty -w -n z $'${t}\\t\\C-e :DONE\\n'`),
    'out=""',
    ...typed.map(() => "zpty -r z chunk '*command not found*'; out+=$chunk"),
    'print -r -- "$out"',
    "zpty -d z",
  ].join("\n");
  const r = await runCommand("timeout", ["60", "zsh", "-f", "-c", driver], { cwd: dir.path });
  assert.equal(r.code, 0, r.stderr);
  // strip terminal control sequences; what remains of each line is what the line editor showed
  // deno-lint-ignore no-control-regex -- matching the terminal's escape sequences is the point
  const shown = r.stdout.replaceAll(/\x1b\[[0-9;?]*[A-Za-z]|[\r\b]/g, "");
  assert.match(shown, /dangerzone-image upgrade +:DONE/);
  assert.match(shown, /dangerzone-image check --runtime +:DONE/);
  assert.match(shown, /dangerzone-image check --runtime docker +:DONE/);
});

Deno.test("completion scripts come from the command tree: a new command completes unedited", async () => {
  const program = buildProgram(() => {});
  program.command("frobnicate").description("an extra command")
    .addOption(new Option("--mode <mode>", "how").choices(["fast", "safe"]))
    .option("--input <file>", "an input file");
  const model = completionModel(program);
  assert.ok(model.commands.some((c) => c.name === "frobnicate"));
  const script = completionScript(program, "bash");
  assert.deepEqual(await bashComplete(script, "dangerzone-image frob"), ["frobnicate"]);
  assert.deepEqual(await bashComplete(script, "dangerzone-image frobnicate --mode "), ["fast", "safe"]);
  assert.deepEqual(await bashComplete(script, "dangerzone-image frobnicate --"), [
    "--mode",
    "--input",
    "--help",
  ]);
  for (const shell of ["zsh", "fish"] as const) {
    const text = completionScript(program, shell);
    assert.ok(text.includes("frobnicate") && text.includes("fast safe"), shell);
  }
});

Deno.test("completion: an unknown shell is a usage error (exit 2, one line)", async () => {
  const r = await runCli(["completion", "tcsh"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.match(r.stderr, /Allowed choices are bash, zsh, fish/);
});
