/**
 * commander's command tree, built from the command table (`commands.ts`) and the common options
 * (`common.ts`): help, version, usage errors, completion, and every invocation the start-up parser
 * of `fast_args.ts` leaves to it.
 *
 * @module
 */
import { Argument, Command, CommanderError, Option } from "commander";
import { ExitCode } from "../errors.ts";
import { VERSION } from "../version.ts";
import { COMMANDS } from "./commands.ts";
import { COMMON_OPTIONS } from "./common.ts";
import { Output } from "./output.ts";
import { noCommand, reportFailure, runAction } from "./run.ts";
import type { Action, ArgumentSpec, CommandSpec, OptionSpec } from "./spec.ts";

/**
 * Builds the command tree of DESIGN.md; `run` receives each action with its positional arguments
 * and options when commander has parsed them. Exported for tests and `completion`.
 *
 * @example
 * ```ts
 * import { buildProgram } from "./program.ts";
 * const names = buildProgram(() => {}).commands.map((c) => c.name());
 * ```
 */
export function buildProgram(
  run: (action: Action, args: string[], opts: Record<string, unknown>) => void,
): Command {
  const program = new Command("dangerzone-image")
    .description(
      "Keep the Dangerzone sandbox container image up to date and trusted: verify cosign signatures and " +
        "Rekor proofs offline against pinned keys, refuse rollbacks, install into podman or docker.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .exitOverride()
    .configureOutput(PERMISSION_FREE_OUTPUT);

  /** Gives `cmd` its example and action (every command, with or without the common options). */
  function register(cmd: Command, example: string, load: Action): Command {
    cmd.addHelpText("after", `\nExample:\n  $ ${example}\n`);
    cmd.action((...actionArgs: unknown[]) => {
      // commander passes: ...positionals, options, command
      const self = actionArgs[actionArgs.length - 1] as Command;
      const positionals = self.args.slice(0, self.registeredArguments.length);
      run(load, positionals, self.opts());
    });
    return cmd;
  }

  for (const spec of COMMANDS) register(commandOf(program, spec), spec.example, spec.load);
  register(
    program.command("completion")
      .description("Print a shell completion script generated from the command tree.")
      .addArgument(new Argument("<shell>", "the shell to complete in").choices(["bash", "zsh", "fish"])),
    "source <(dangerzone-image completion bash)",
    async (a) => (await import("./completion.ts")).completionCommand(a, program),
  );
  return program;
}

/** Adds one command: its summary, the common options, then its own options and arguments. */
function commandOf(program: Command, spec: CommandSpec): Command {
  const cmd = program.command(spec.name).description(spec.summary);
  for (const option of [...COMMON_OPTIONS, ...(spec.options ?? [])]) cmd.addOption(optionOf(option));
  for (const argument of spec.arguments ?? []) cmd.addArgument(argumentOf(argument));
  return cmd;
}

function optionOf(spec: OptionSpec): Option {
  const option = new Option(spec.flags, spec.description);
  if (spec.choices !== undefined) option.choices(spec.choices);
  if (spec.repeatable === true) option.argParser(collect).default([]);
  if (spec.defaultValue !== undefined) option.default(spec.defaultValue);
  if (spec.required === true) option.makeOptionMandatory();
  return option;
}

function argumentOf(spec: ArgumentSpec): Argument {
  const argument = new Argument(spec.name, spec.description);
  if (spec.choices !== undefined) argument.choices(spec.choices);
  return argument;
}

/** commander's accumulator for repeatable options. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * Help, version and usage errors with no permission at all (`deno run --no-prompt` of the bundle):
 * commander's defaults read `process.env` (NO_COLOR, FORCE_COLOR, CLICOLOR_FORCE) for colours, which
 * needs env access. Output is plain text, wrapped to the terminal's width; a usage error is one line.
 */
const PERMISSION_FREE_OUTPUT = {
  writeOut: (s: string) => writeAllSync(Deno.stdout, s),
  writeErr: (s: string) => writeAllSync(Deno.stderr, s),
  getOutHasColors: () => false,
  getErrHasColors: () => false,
  getOutHelpWidth: () => terminalColumns(Deno.stdout),
  getErrHelpWidth: () => terminalColumns(Deno.stderr),
  outputError: (s: string, write: (s: string) => void) =>
    write(`${s.trimEnd()} (run with --help for usage)\n`),
};

function writeAllSync(stream: typeof Deno.stdout | typeof Deno.stderr, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
}

/** The terminal's width, or commander's default (80) for a pipe or file. */
function terminalColumns(stream: typeof Deno.stdout | typeof Deno.stderr): number {
  return stream.isTerminal() ? Deno.consoleSize().columns : 80;
}

/**
 * Parses `argv` (without the executable) with commander and runs the command; returns the exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runProgram(["check", "--json"]));
 * ```
 */
export async function runProgram(argv: string[]): Promise<number> {
  let pending: Promise<number> | undefined;
  const program = buildProgram((load, args, opts) => {
    pending = runAction(load, args, opts);
  });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return ExitCode.OK;
      return ExitCode.USAGE;
    }
    return reportFailure(err, new Output({}));
  }
  if (pending === undefined) return noCommand();
  return await pending;
}
