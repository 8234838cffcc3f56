/**
 * The start-up parser of the `fast` commands (`verify-local`, which runs before every document
 * conversion): it reads the plain invocations from the same table commander is built from
 * (`commands.ts`, `common.ts`), so that they start without loading commander, whose module graph
 * costs more than the whole verification. Anything it does not fully understand (help, an unknown
 * or misspelt option, a bad choice, a missing value, `--`, short flags) it leaves to commander, which
 * prints the same help and one-line usage errors as for every other command. Tests check that both
 * give the same arguments and options wherever this parser answers.
 *
 * @module
 */
import { COMMANDS } from "./commands.ts";
import { COMMON_OPTIONS } from "./common.ts";
import { type CommandSpec, type OptionShape, optionShape, type OptionSpec } from "./spec.ts";

/** A command invocation read without commander. */
export interface PlainInvocation {
  /** The command. */
  readonly spec: CommandSpec;
  /** Its positional arguments. */
  readonly args: string[];
  /** Its options, as commander's `opts()` would give them (defaults included). */
  readonly options: Record<string, unknown>;
}

/**
 * The invocation of a `fast` command in `argv` (without the executable), or undefined when `argv`
 * names another command or is not a plain invocation (then commander parses it).
 *
 * @example
 * ```ts
 * import { fastInvocation } from "./fast_args.ts";
 * fastInvocation(["verify-local", "--json"])?.options["json"]; // true
 * fastInvocation(["verify-local", "--help"]); // undefined: commander prints the help
 * ```
 */
export function fastInvocation(argv: readonly string[]): PlainInvocation | undefined {
  const [name, ...rest] = argv;
  const spec = COMMANDS.find((c) => c.fast === true && c.name === name);
  return spec === undefined ? undefined : parsePlain(spec, rest);
}

/**
 * Reads `argv` (after the command name) as commander reads it, for the plain forms only:
 * `--name value`, `--name=value`, `--switch`, `--no-switch`, and positional arguments. Returns
 * undefined for everything else.
 */
export function parsePlain(spec: CommandSpec, argv: readonly string[]): PlainInvocation | undefined {
  const known = new Map<string, { readonly spec: OptionSpec; readonly shape: OptionShape }>();
  const options: Record<string, unknown> = {};
  for (const option of [...COMMON_OPTIONS, ...(spec.options ?? [])]) {
    const shape = optionShape(option.flags);
    known.set(shape.long, { spec: option, shape });
    if (option.repeatable === true) options[shape.attribute] = [];
    else if (option.defaultValue !== undefined) options[shape.attribute] = option.defaultValue;
  }
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (!arg.startsWith("-")) {
      args.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const option = known.get(eq === -1 ? arg : arg.slice(0, eq));
    if (option === undefined) return undefined; // --help, -h, --, a short flag, an unknown option
    const { attribute, takesValue, negates } = option.shape;
    if (!takesValue) {
      if (eq !== -1) return undefined;
      options[attribute] = !negates;
      continue;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === "" || value.startsWith("-")) return undefined;
    if (option.spec.choices !== undefined && !option.spec.choices.includes(value)) return undefined;
    const previous = options[attribute];
    options[attribute] = option.spec.repeatable === true && Array.isArray(previous)
      ? [...previous, value]
      : value;
  }
  for (const option of known.values()) {
    if (option.spec.required === true && options[option.shape.attribute] === undefined) return undefined;
  }
  const positionals = spec.arguments ?? [];
  if (args.length > positionals.length) return undefined;
  for (const [i, argument] of positionals.entries()) {
    const value = args[i];
    if (value === undefined ? argument.name.startsWith("<") : !allowed(argument.choices, value)) {
      return undefined;
    }
  }
  return { spec, args, options };
}

function allowed(choices: readonly string[] | undefined, value: string): boolean {
  return choices === undefined || choices.includes(value);
}
