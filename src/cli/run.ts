// deno-lint-ignore-file no-console -- console output is allowed only in main.ts and src/cli/
/**
 * Runs one command action and turns its failure into one line (or the `--json` error document) and an
 * exit code: the one place errors meet exit codes ({@linkcode exitCodeFor} holds the table). Used by
 * commander's tree (`program.ts`) and by the start-up path of the fast commands alike.
 *
 * @module
 */
import { DangerzoneError, ExitCode, exitCodeFor, type ExitCodeValue } from "../errors.ts";
import { errorLine, Output } from "./output.ts";
import type { Action } from "./spec.ts";

/**
 * Runs `action` with its positional arguments and options; returns its exit code, or the failure's.
 *
 * @example
 * ```ts ignore
 * const code = await runAction(spec.load, ["ghcr.io/freedomofpress/dangerzone/v1"], { json: true });
 * ```
 */
export async function runAction(
  action: Action,
  args: string[],
  options: Record<string, unknown>,
): Promise<ExitCodeValue> {
  const out = new Output({ json: options["json"] === true, debug: options["debug"] === true });
  try {
    return await action(args, options, out);
  } catch (err) {
    return reportFailure(err, out);
  }
}

/**
 * Prints a failure as one line (and the JSON error document under `--json`); returns its exit code. A
 * permission Deno refused (`NotCapable`: the run was started without an `--allow-*` it needs) is the
 * user's to grant, not a bug: `PERMISSION_DENIED`, exit 2, with Deno's own words on what to allow.
 */
export function reportFailure(thrown: unknown, out: Output): ExitCodeValue {
  const err = thrown instanceof Deno.errors.NotCapable
    ? new DangerzoneError("PERMISSION_DENIED", `not permitted: ${thrown.message}`, {
      cause: thrown,
      hint: "see the Permissions section of the README for what each command needs",
    })
    : thrown;
  if (err instanceof DangerzoneError) {
    console.error(errorLine(err));
    if (out.debug) console.error(err.stack ?? "", err.cause ?? "");
    out.result({ ok: false, error: { code: err.code, message: err.message, hint: err.hint ?? null } });
    return exitCodeFor(err.code);
  }
  const message = err instanceof Error ? err.message : String(err);
  console.error(
    errorLine({
      message: `internal error: ${message.split("\n")[0]}`,
      hint: "run with --debug and report this bug",
    }),
  );
  if (out.debug) console.error(err);
  out.result({ ok: false, error: { code: "INTERNAL", message, hint: null } });
  return ExitCode.FAILURE;
}

/** A usage error in one line (commander would print the whole help). */
export function noCommand(): ExitCodeValue {
  console.error("error: no command given (run with --help for the list of commands)");
  return ExitCode.USAGE;
}
