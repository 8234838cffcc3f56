// deno-lint-ignore-file no-console -- console output is allowed only in main.ts and src/cli/
/**
 * dangerzone-image: keeps a signed sandbox container image up to date and trusted.
 *
 * This file builds the command tree and is the only place that maps errors to exit codes
 * and calls `Deno.exit`.
 *
 * @module
 */
import { Argument, Command, CommanderError } from "commander";
import { addCommonOptions, type CommonOptions } from "./src/cli/common.ts";
import { errorLine, Output } from "./src/cli/output.ts";
import { DangerzoneError, ExitCode, exitCodeFor, type ExitCodeValue } from "./src/errors.ts";
import { VERSION } from "./src/version.ts";

/** What a command action returns: the exit code (0, or 3 for `check`). */
export type CommandResult = ExitCodeValue;

/**
 * A command action: receives its positional arguments and merged options. Each command's module is
 * imported only when that command runs (a literal `import()`, which `deno bundle` inlines and
 * `deno compile` includes), so `upgrade` never loads the prompt library or the Sigstore bundle
 * libraries of other commands: less start-up time and memory.
 */
type Action = (args: string[], options: CommonOptions & Record<string, unknown>, out: Output) => Promise<
  CommandResult
>;

/** An action for a command that is not built yet: exit 1 with a clear line. */
// deno-lint-ignore no-unused-vars -- kept for commands added before they are built
function notBuilt(name: string): Action {
  return () => {
    throw new DangerzoneError("NOT_IMPLEMENTED", `'${name}' is not built yet in this version`, {
      hint: "see the project's open issues",
    });
  };
}

/**
 * Builds the command tree of DESIGN.md. Exported for tests. With `only` (the command about to run),
 * only that command is added: commander builds and validates every option of every command it is
 * given, a cost `verify-local` would pay before every document conversion. Help, version, completion
 * and unknown commands get the full tree.
 */
export function buildProgram(
  run: (action: Action, args: string[], opts: Record<string, unknown>) => void,
  only?: string,
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

  function command(
    name: string,
    summary: string,
    example: string,
    load: Action,
    configure: (cmd: Command) => Command = (c) => c,
  ): void {
    if (only !== undefined && name !== only) return;
    register(configure(addCommonOptions(program.command(name).description(summary))), example, load);
  }

  command(
    "upgrade",
    "Resolve, verify and install the newest signed image (anti-rollback; exit 0 when up to date).",
    "dangerzone-image upgrade --json",
    async (a, o, out) => (await import("./src/cli/upgrade.ts")).upgradeCommand(a, o, out),
    (c) =>
      c.option("--prune", "remove older images of the same name after a successful upgrade")
        .option("--max-age <days>", "warn when the newest signature is older than this", "30"),
  );
  command(
    "check",
    "Is a newer verified image available? Exit 0 up to date, 3 update available.",
    "dangerzone-image check --json",
    async (a, o, out) => (await import("./src/cli/check.ts")).checkCommand(a, o, out),
  );
  command(
    "store-signatures",
    "Fetch, verify and store the remote signatures without installing anything.",
    "dangerzone-image store-signatures --image ghcr.io/freedomofpress/dangerzone/v1:latest",
    async (a, o, out) => (await import("./src/cli/store_signatures.ts")).storeSignaturesCommand(a, o, out),
  );
  command(
    "verify-local",
    "Check that the image the runtime holds has stored signatures that verify with the trusted key.",
    "dangerzone-image verify-local ghcr.io/freedomofpress/dangerzone/v1",
    async (a, o, out) => (await import("./src/cli/verify_local.ts")).verifyLocalCommand(a, o, out),
    (c) => c.argument("[image]", "image name or ID held by the runtime"),
  );
  command(
    "attest-provenance",
    "Verify the keyless SLSA provenance attestation of an image and print the verified claims.",
    "dangerzone-image attest-provenance ghcr.io/freedomofpress/dangerzone/v1 --repository freedomofpress/dangerzone",
    async (a, o, out) => (await import("./src/cli/attest_provenance.ts")).runAttestProvenance(a, o, out),
    (c) =>
      c.argument("<image>", "registry reference, or oci:DIR for a cosign save layout")
        .requiredOption("--repository <owner/repo>", "the GitHub repository the image must be built from")
        .option("--builder <id>", "another trusted builder workflow identity")
        .option("--workflow <path>", "expected workflow path (configSource.entryPoint)")
        .option("--branch <name>", "expected source branch")
        .option("--tag <name>", "expected source tag"),
  );
  command(
    "prepare-archive",
    "Write an air-gapped archive: the image for one platform, its signatures and what verifies them.",
    "dangerzone-image prepare-archive --arch amd64 --output dangerzone-amd64.tar",
    async (a, o, out) => (await import("./src/cli/prepare_archive.ts")).prepareArchiveCommand(a, o, out),
    (c) =>
      c.option("--arch <arch>", "architecture to archive, e.g. amd64 or arm64")
        .option("--platform <os/arch[/variant]>", "platform to archive")
        .option("--output <file>", "archive path (default: dangerzone-{arch}.tar)"),
  );
  command(
    "load-archive",
    "Verify an air-gapped archive completely, then load it into the container runtime.",
    "dangerzone-image load-archive dangerzone-amd64.tar",
    async (a, o, out) => (await import("./src/cli/load_archive.ts")).loadArchiveCommand(a, o, out),
    (c) =>
      c.argument("<file>", "archive made by prepare-archive (or a cosign save layout directory)")
        .option("--force", "bypass only the rollback check (asks for confirmation on a TTY)")
        .option("--platform <os/arch[/variant]>", "platform to load when the archive holds an index"),
  );
  command(
    "verify-bundle",
    "Verify a Sigstore bundle (sigstore-conformance client protocol).",
    "dangerzone-image verify-bundle --bundle a.sigstore.json --certificate-identity ID " +
      "--certificate-oidc-issuer https://token.actions.githubusercontent.com a.txt",
    async (a, o, out) => (await import("./src/cli/verify_bundle.ts")).runVerifyBundle(a, o, out),
    (c) =>
      c.argument("<artifact>", "the artifact file, or sha256:DIGEST")
        .requiredOption("--bundle <file>", "the Sigstore bundle (JSON)")
        .option("--key <file>", "verify with this public key instead of a certificate identity")
        .option("--certificate-identity <id>", "expected certificate identity (SAN), compared exactly")
        .option("--certificate-oidc-issuer <url>", "expected OIDC issuer, compared exactly"),
  );
  command(
    "verify-signatures",
    "Verify a stored signature file (cosign download signature JSON list) offline.",
    "dangerzone-image verify-signatures --signatures sigs.json --digest sha256:<hex> --reference ghcr.io/freedomofpress/dangerzone/v1",
    async (a, o, out) => (await import("./src/cli/verify_signatures.ts")).verifySignaturesCommand(a, o, out),
    (c) =>
      c.requiredOption("--signatures <file>", "JSON list of signatures in cosign download signature form")
        .requiredOption("--digest <sha256:hex>", "the image manifest digest the signatures must cover")
        .option("--reference <repo>", "enforce this signed docker-reference (otherwise only reported)"),
  );
  command(
    "mirror",
    "Verify an image, then copy it and every signature form into another registry (the tag moves last).",
    "dangerzone-image mirror --to registry.example/mirror/dangerzone/v1",
    async (a, o, out) => (await import("./src/cli/mirror.ts")).mirrorCommand(a, o, out),
    (c) =>
      c.requiredOption("--to <registry/repo[:tag]>", "destination repository (tag: the source's)")
        .option(
          "--arch <arch>",
          "copy only this architecture of an index (repeatable)",
          (v: string, p: string[]) => [...p, v],
          [],
        )
        .option(
          "--archive <file>",
          "mirror an air-gapped archive (verified as load-archive does) instead of --image",
        )
        .option("--force", "bypass only the destination's rollback check"),
  );
  command(
    "trust-root",
    "Sigstore trust material through TUF: update (verify and store trusted_root.json), show, export-rekor-key.",
    "dangerzone-image trust-root update && dangerzone-image trust-root export-rekor-key --output rekor.pub",
    async (a, o, out) => (await import("./src/cli/trust_root.ts")).trustRootCommand(a, o, out),
    (c) =>
      c.addArgument(
        new Argument("<action>", "what to do").choices(["update", "show", "export-rekor-key"]),
      )
        .option("--tuf-url <url>", "update: TUF repository (default https://tuf-repo-cdn.sigstore.dev)")
        .option(
          "--tuf-root <file>",
          "update: initial trusted TUF root.json (default: data dir cache, else embedded)",
        )
        .option("--output <file>", "export-rekor-key: write the PEM here instead of stdout")
        .option("--log-id <hex>", "export-rekor-key: the transparency log with this log ID")
        .option("--all", "export-rekor-key: every transparency log's key"),
  );
  if (only !== undefined) return program;
  register(
    program.command("completion")
      .description("Print a shell completion script generated from the command tree.")
      .addArgument(new Argument("<shell>", "the shell to complete in").choices(["bash", "zsh", "fish"])),
    "source <(dangerzone-image completion bash)",
    async (a) => (await import("./src/cli/completion.ts")).completionCommand(a, program),
  );
  return program;
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

/** Prints a failure as one line (or a JSON document under `--json`) and returns its exit code. */
function reportFailure(err: unknown, out: Output): ExitCodeValue {
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
function noCommand(): ExitCodeValue {
  console.error("error: no command given (run with --help for the list of commands)");
  return ExitCode.USAGE;
}

/**
 * Commands that run often and get a command tree of their own when named first (see
 * {@linkcode buildProgram}'s `only`).
 */
const FAST_COMMANDS: ReadonlySet<string> = new Set(["verify-local"]);

/** Runs the program with `argv` (without the executable) and returns the exit code. */
export async function runMain(argv: string[]): Promise<number> {
  if (argv.length === 0) return noCommand();
  let pending: Promise<number> | undefined;
  const [first] = argv;
  const only = first !== undefined && FAST_COMMANDS.has(first) ? first : undefined;
  const program = buildProgram((load, args, opts) => {
    const out = new Output({ json: opts["json"] === true, debug: opts["debug"] === true });
    pending = (async () => {
      try {
        return await load(args, opts, out);
      } catch (err) {
        return reportFailure(err, out);
      }
    })();
  }, only);
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

if (import.meta.main) {
  Deno.exit(await runMain(Deno.args));
}
