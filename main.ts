/**
 * dangerzone-image: keeps a signed sandbox container image up to date and trusted.
 *
 * The entry point, and the only place that calls `Deno.exit`. It loads as little as it can before it
 * knows the command: the plain invocations of `verify-local` (which runs before every document
 * conversion) are read from the command table without commander, and everything else is handed to
 * commander's tree (`src/cli/program.ts`), imported only then. The commands are listed in
 * `src/cli/commands.ts`; failures become exit codes in `src/cli/run.ts`.
 *
 * @module
 */
import { fastInvocation } from "./src/cli/fast_args.ts";
import { noCommand, runAction } from "./src/cli/run.ts";

/**
 * Runs the program with `argv` (without the executable) and returns the exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runMain(["verify-local", "--json"]));
 * ```
 */
export async function runMain(argv: string[]): Promise<number> {
  if (argv.length === 0) return noCommand();
  const fast = fastInvocation(argv);
  if (fast !== undefined) return await runAction(fast.spec.load, fast.args, fast.options);
  const { runProgram } = await import("./src/cli/program.ts");
  return await runProgram(argv);
}

if (import.meta.main) {
  Deno.exit(await runMain(Deno.args));
}
