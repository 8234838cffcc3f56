/**
 * `completion bash|zsh|fish`: prints a shell completion script generated from the commander command
 * tree (commands, options, option choices such as `--runtime podman|docker`, file and directory
 * values), so a command or option added to the tree completes without editing this file. Needs no
 * permission: it reads nothing but the tree.
 *
 * @module
 */
import type { Argument, Command, Option } from "commander";
import { DangerzoneError, ExitCode, type ExitCodeValue } from "../errors.ts";

/** The shells a script can be generated for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;

/** One of {@linkcode SHELLS}. */
export type Shell = typeof SHELLS[number];

/** What a value (of an option or a positional argument) completes to. */
export type ValueKind =
  | { readonly kind: "text" }
  | { readonly kind: "file" }
  | { readonly kind: "dir" }
  | { readonly kind: "choices"; readonly choices: readonly string[] };

/** An option as the scripts see it. */
export interface OptionModel {
  /** Its names, e.g. `["-V", "--version"]`. */
  readonly names: readonly string[];
  /** What its value completes to; undefined for a flag without a value. */
  readonly value: ValueKind | undefined;
  /** Whether it may be given more than once. */
  readonly repeatable: boolean;
  /** Its one-line description. */
  readonly description: string;
}

/** A positional argument as the scripts see it. */
export interface ArgumentModel {
  /** Its name, e.g. `file`. */
  readonly name: string;
  /** Whether it must be given. */
  readonly required: boolean;
  /** What it completes to. */
  readonly value: ValueKind;
}

/** A command (or the program itself) as the scripts see it. */
export interface CommandModel {
  /** Its name. */
  readonly name: string;
  /** Its one-line description. */
  readonly description: string;
  /** Its visible options, `--help` included. */
  readonly options: readonly OptionModel[];
  /** Its positional arguments, in order. */
  readonly args: readonly ArgumentModel[];
  /** Its visible subcommands (only the program has some). */
  readonly commands: readonly CommandModel[];
}

/**
 * Reads the completion model from a commander tree: visible commands (the implicit `help` command
 * included), visible options (`--help` and `--version` included), their choices and value kinds.
 *
 * @example
 * ```ts ignore
 * const model = completionModel(buildProgram(() => {}));
 * console.log(model.commands.map((c) => c.name));
 * ```
 */
export function completionModel(command: Command): CommandModel {
  const help = command.createHelp();
  return {
    name: word(command.name()),
    description: firstLine(command.description()),
    options: help.visibleOptions(command).map(optionModel),
    args: help.visibleArguments(command).map(argumentModel),
    commands: help.visibleCommands(command).map(completionModel),
  };
}

/**
 * The completion script of `program` for `shell`.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("dangerzone-image.bash", completionScript(program, "bash"));
 * ```
 */
export function completionScript(program: Command, shell: Shell): string {
  const model = completionModel(program);
  switch (shell) {
    case "bash":
      return bashScript(model);
    case "zsh":
      return zshScript(model);
    case "fish":
      return fishScript(model);
  }
}

/**
 * The `completion` action: prints the script for the shell named in `args[0]` (commander has already
 * checked it is one of {@linkcode SHELLS}).
 *
 * @example
 * ```ts ignore
 * await completionCommand(["bash"], program);
 * ```
 */
export async function completionCommand(args: string[], program: Command): Promise<ExitCodeValue> {
  const shell = SHELLS.find((s) => s === args[0]);
  if (shell === undefined) {
    throw new DangerzoneError("USAGE", `unknown shell '${String(args[0]).slice(0, 40)}'`, {
      hint: `choose one of ${SHELLS.join(", ")}`,
    });
  }
  const bytes = new TextEncoder().encode(completionScript(program, shell));
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
  return ExitCode.OK;
}

function optionModel(option: Option): OptionModel {
  const names = [option.short, option.long].filter((n): n is string => n !== undefined).map(word);
  const takesValue = option.required || option.optional;
  return {
    names,
    value: takesValue ? valueKind(option.argChoices, placeholder(option.flags)) : undefined,
    repeatable: option.variadic || Array.isArray(option.defaultValue),
    description: firstLine(option.description),
  };
}

function argumentModel(argument: Argument): ArgumentModel {
  return {
    name: word(argument.name()),
    required: argument.required,
    value: valueKind(argument.argChoices, argument.name()),
  };
}

/** The value placeholder of option flags, e.g. `file` of `--pubkey <file>`. */
function placeholder(flags: string): string {
  return /[<[]([^>\]]+)[>\]]/.exec(flags)?.[1] ?? "";
}

/** Choices as given; a placeholder or argument name that says file or directory; else free text. */
function valueKind(choices: readonly string[] | undefined, name: string): ValueKind {
  if (choices !== undefined && choices.length > 0) return { kind: "choices", choices: choices.map(word) };
  if (/^(dir|directory)$/i.test(name)) return { kind: "dir" };
  if (/^(file|path|artifact|output)$/i.test(name)) return { kind: "file" };
  return { kind: "text" };
}

/** A name or choice goes into scripts unquoted in places: only plain words are accepted. */
function word(s: string): string {
  if (!/^-{0,2}[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(s)) {
    throw new DangerzoneError("INTERNAL", `completion: '${s.slice(0, 40)}' is not a plain word`);
  }
  return s;
}

function firstLine(s: string): string {
  return (s.split("\n")[0] ?? "").trim();
}

/** A POSIX single-quoted string (bash, zsh). */
function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A fish single-quoted string. */
function fishQuote(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function functionName(model: CommandModel): string {
  return `_${model.name.replaceAll(/[^A-Za-z0-9]/g, "_")}`;
}

function bashScript(model: CommandModel): string {
  const fn = functionName(model);
  const out: string[] = [
    `# bash completion for ${model.name}, generated from its command tree by \`${model.name} completion bash\`.`,
    `# Load it with: source <(${model.name} completion bash)`,
    `${fn}_reply() { mapfile -t COMPREPLY < <(compgen "$@"); }`,
    `${fn}_value() {`,
    `  case "$1" in`,
    `    file) compopt -o filenames 2>/dev/null; ${fn}_reply -f -- "$2" ;;`,
    `    dir) compopt -o filenames 2>/dev/null; ${fn}_reply -d -- "$2" ;;`,
    `    text) COMPREPLY=() ;;`,
    `    *) ${fn}_reply -W "$1" -- "$2" ;;`,
    `  esac`,
    `}`,
    `${fn}() {`,
    `  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" i`,
    `  for ((i = 1; i < COMP_CWORD; i++)); do`,
    `    case "\${COMP_WORDS[i]}" in -*) ;; *) cmd="\${COMP_WORDS[i]}"; break ;; esac`,
    `  done`,
    `  case "$cmd" in`,
    `    "")`,
    `      if [[ $cur == -* ]]; then ${fn}_reply -W ${sq(optionWords(model))} -- "$cur"`,
    `      else ${fn}_reply -W ${sq(model.commands.map((c) => c.name).join(" "))} -- "$cur"; fi`,
    `      ;;`,
  ];
  for (const cmd of model.commands) {
    out.push(`    ${cmd.name})`);
    const valued = cmd.options.filter((o) => o.value !== undefined);
    if (valued.length > 0) {
      out.push(`      case "$prev" in`);
      for (const o of valued) {
        out.push(`        ${o.names.join("|")}) ${fn}_value ${sq(bashKind(o.value))} "$cur"; return ;;`);
      }
      out.push(`      esac`);
    }
    const positional = cmd.args[0]?.value;
    out.push(
      `      if [[ $cur == -* ]]; then ${fn}_reply -W ${sq(optionWords(cmd))} -- "$cur"`,
      positional === undefined
        ? `      else COMPREPLY=(); fi`
        : `      else ${fn}_value ${sq(bashKind(positional))} "$cur"; fi`,
      `      ;;`,
    );
  }
  out.push(`  esac`, `}`, `complete -F ${fn} ${model.name}`, ``);
  return out.join("\n");
}

function optionWords(model: CommandModel): string {
  return model.options.flatMap((o) => o.names).join(" ");
}

/** The value argument of the bash helper: `file`, `dir`, `text` or the choices as a word list. */
function bashKind(value: ValueKind | undefined): string {
  if (value === undefined) return "text";
  return spell(value, { text: "text", file: "file", dir: "dir", choices: (c) => c.join(" ") });
}

function zshScript(model: CommandModel): string {
  const fn = functionName(model);
  const out: string[] = [
    `#compdef ${model.name}`,
    `# zsh completion for ${model.name}, generated from its command tree by \`${model.name} completion zsh\`.`,
    `# Load it with: source <(${model.name} completion zsh)   (after compinit)`,
    `${fn}() {`,
    `  local curcontext="$curcontext" state line`,
    `  typeset -A opt_args`,
    `  _arguments -C \\`,
    ...model.options.map((o) => `    ${zshOption(o, true)} \\`),
    `    '1: :->command' \\`,
    `    '*:: :->args' && return`,
    `  case $state in`,
    `    command)`,
    `      local -a commands`,
    `      commands=(`,
    ...model.commands.map((c) => `        ${sq(`${c.name}:${c.description}`)}`),
    `      )`,
    `      _describe -t commands ${sq(`${model.name} command`)} commands`,
    `      ;;`,
    `    args)`,
    `      case $line[1] in`,
  ];
  for (const cmd of model.commands) {
    out.push(
      `        ${cmd.name})`,
      `          _arguments \\`,
      ...cmd.options.map((o) => `            ${zshOption(o, false)} \\`),
      ...cmd.args.map((a, i) =>
        `            ${sq(`${i + 1}${a.required ? "" : ":"}:${a.name}:${zshAction(a.value)}`)} \\`
      ),
      `            && return`,
      `          ;;`,
    );
  }
  out.push(
    `      esac`,
    `      ;;`,
    `  esac`,
    `}`,
    `if [[ "\${funcstack[1]}" == ${sq(fn)} ]]; then ${fn} "$@"; else compdef ${fn} ${model.name}; fi`,
    ``,
  );
  return out.join("\n");
}

/** One `_arguments` spec: `'--runtime[container runtime]:runtime:(podman docker)'`. */
function zshOption(option: OptionModel, exclusive: boolean): string {
  const description = option.description.replaceAll(/[\\[\]]/g, (c) => `\\${c}`);
  const value = option.value === undefined
    ? ""
    : `:${option.names.at(-1)?.replace(/^-+/, "")}:${zshAction(option.value)}`;
  const prefix = option.repeatable ? "*" : exclusive && option.value === undefined ? "(- *)" : "";
  const names = option.names.length === 1 ? option.names.join("") : `{${option.names.join(",")}}`;
  const spec = `[${description}]${value}`;
  return option.names.length === 1 ? sq(`${prefix}${names}${spec}`) : `${sq(prefix)}${names}${sq(spec)}`;
}

function zshAction(value: ValueKind): string {
  return spell(value, { text: " ", file: "_files", dir: "_files -/", choices: (c) => `(${c.join(" ")})` });
}

function fishScript(model: CommandModel): string {
  const c = `complete -c ${model.name}`;
  const out: string[] = [
    `# fish completion for ${model.name}, generated from its command tree by \`${model.name} completion fish\`.`,
    `# Load it with: ${model.name} completion fish | source`,
    `${c} -f`,
    ...model.options.map((o) => `${c} -n __fish_use_subcommand ${fishOption(o)}`),
    ...model.commands.map((cmd) =>
      `${c} -n __fish_use_subcommand -a ${cmd.name} -d ${fishQuote(cmd.description)}`
    ),
  ];
  for (const cmd of model.commands) {
    const when = `-n ${fishQuote(`__fish_seen_subcommand_from ${cmd.name}`)}`;
    out.push(...cmd.options.map((o) => `${c} ${when} ${fishOption(o)}`));
    const positional = cmd.args[0];
    if (positional !== undefined && positional.value.kind !== "text") {
      out.push(`${c} ${when} ${fishValue(positional.value)} -d ${fishQuote(positional.name)}`);
    }
  }
  out.push(``);
  return out.join("\n");
}

function fishOption(option: OptionModel): string {
  const names = option.names.map((n) => n.startsWith("--") ? `-l ${n.slice(2)}` : `-s ${n.slice(1)}`);
  const value = option.value === undefined ? [] : [fishValue(option.value)];
  return [...names, ...value, "-d", fishQuote(option.description)].join(" ");
}

function fishValue(value: ValueKind): string {
  return spell(value, {
    text: "-x",
    file: "-r -F",
    dir: "-x -a '(__fish_complete_directories)'",
    choices: (c) => `-x -a ${fishQuote(c.join(" "))}`,
  });
}

/** How one shell spells each {@linkcode ValueKind}. */
function spell(
  value: ValueKind,
  spelling: { text: string; file: string; dir: string; choices: (choices: readonly string[]) => string },
): string {
  return value.kind === "choices" ? spelling.choices(value.choices) : spelling[value.kind];
}
