/**
 * The command line as data: each command's name, arguments, options and action. Two readers build on
 * it: commander (`program.ts`: help, usage errors, completion and every command but the fast ones) and
 * the start-up parser of `fast_args.ts`, which reads the common invocations of `verify-local` without
 * loading commander (it runs before every document conversion). One table, so the two cannot disagree
 * on a name, a default or a choice.
 *
 * @module
 */
import type { ExitCodeValue } from "../errors.ts";
import type { Output } from "./output.ts";

/** The common options (`common.ts`), as commander and the start-up parser give them. */
export interface CommonOptions {
  /** `--image`: the image reference. */
  image?: string;
  /** `--pubkey`: the publisher key file. */
  pubkey?: string;
  /** `--rekor-key`: the Rekor key file. */
  rekorKey?: string;
  /** `--trusted-root`: a Sigstore trusted_root.json. */
  trustedRoot?: string;
  /** `--identity`: the signed repository to expect. */
  identity?: string;
  /** `--runtime`. */
  runtime?: "podman" | "docker";
  /** `--runtime-path`: the runtime binary. */
  runtimePath?: string;
  /** `--data-dir`. */
  dataDir?: string;
  /** `--json`. */
  json?: boolean;
  /** `--debug`. */
  debug?: boolean;
  /** `--insecure-registry`, each use. */
  insecureRegistry?: string[];
  /** `--ca-cert`, each use. */
  caCert?: string[];
  /** `--proxy`. */
  proxy?: string;
  /** `--timeout`, in seconds (checked by `deadlineOptions`). */
  timeout?: string;
  /** `--connections` (checked by `connectionsOption`). */
  connections?: string;
  /** `--tor-isolation` (true) or `--no-tor-isolation` (false). */
  torIsolation?: boolean;
}

/** What a command action returns: the exit code (0, or 3 for `check`). */
export type CommandResult = ExitCodeValue;

/**
 * A command action: receives its positional arguments and merged options. Each command's module is
 * imported only when that command runs (a literal `import()`, which `deno bundle` splits out and
 * `deno compile` includes), so `upgrade` never loads the prompt library or the Sigstore bundle
 * libraries of other commands: less start-up time and memory.
 */
export type Action = (
  args: string[],
  options: CommonOptions & Record<string, unknown>,
  out: Output,
) => Promise<CommandResult>;

/** One option, in commander's words. */
export interface OptionSpec {
  /** commander's flags: `--image <ref>` (takes a value), `--json` (a switch), `--no-tor-isolation` (negates). */
  readonly flags: string;
  /** The help text. */
  readonly description: string;
  /** The only values allowed. */
  readonly choices?: readonly string[];
  /** Each use appends its value to a list (default: the empty list). */
  readonly repeatable?: boolean;
  /** The value when the option is not given. */
  readonly defaultValue?: string;
  /** The option must be given (commander's `requiredOption`). */
  readonly required?: boolean;
}

/** One positional argument: `<name>` is required, `[name]` optional. */
export interface ArgumentSpec {
  /** `<name>` or `[name]`. */
  readonly name: string;
  /** The help text. */
  readonly description: string;
  /** The only values allowed. */
  readonly choices?: readonly string[];
}

/** One command of the contract. */
export interface CommandSpec {
  /** The command's name (`verify-local`). */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** One example invocation, shown after the help. */
  readonly example: string;
  /** Positional arguments, in order. */
  readonly arguments?: readonly ArgumentSpec[];
  /** Options of this command only (every command also takes the common options). */
  readonly options?: readonly OptionSpec[];
  /** Parsed at start-up without commander when the invocation is plain (see `fast_args.ts`). */
  readonly fast?: boolean;
  /** The action, importing the command's module when it runs. */
  readonly load: Action;
}

/** What an option's flags say: its long name, its attribute, whether it takes a value or negates. */
export interface OptionShape {
  /** `--image`. */
  readonly long: string;
  /** The key of the parsed options (`image`, `torIsolation` for `--no-tor-isolation`). */
  readonly attribute: string;
  /** `--image <ref>` takes a value; `--json` does not. */
  readonly takesValue: boolean;
  /** `--no-x` sets `x` to false. */
  readonly negates: boolean;
}

/**
 * Reads an option's flags as commander does, for the forms this program uses: one long flag, with
 * an optional required value (`--name <value>`).
 *
 * @example
 * ```ts
 * import { optionShape } from "./spec.ts";
 * optionShape("--no-tor-isolation"); // { long: "--no-tor-isolation", attribute: "torIsolation", takesValue: false, negates: true }
 * ```
 */
export function optionShape(flags: string): OptionShape {
  const m = /^(--[a-z][a-z0-9-]*)(?: <[^<>\s]+>)?$/.exec(flags);
  if (m === null || m[1] === undefined) throw new Error(`unsupported option flags: ${flags}`);
  const long = m[1];
  const negates = long.startsWith("--no-");
  const name = long.slice(negates ? 5 : 2);
  return {
    long,
    attribute: name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase()),
    takesValue: flags.includes("<"),
    negates,
  };
}
