/**
 * `load-archive FILE [--force]`: verify an air-gapped archive (or a `cosign save` layout directory)
 * completely, then load it (see `src/update/load_archive.ts`). Exit 0 loaded; 13 invalid archive; 10
 * verification failed; 11 rollback refused; 14 runtime failure. `--force` bypasses only the rollback rule:
 * with a warning, and a confirmation prompt when stdin and stderr are a terminal.
 *
 * @module
 */
import { confirm } from "@inquirer/prompts";
import process from "node:process";
import { ExitCode, type ExitCodeValue } from "../errors.ts";
import { parsePlatform } from "../oci/platform.ts";
import { loadArchive, type LoadArchiveStep } from "../update/load_archive.ts";
import { describeCommonStep, progressFor } from "./_steps.ts";
import { buildUpdateContext } from "./_context.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** Options of `load-archive` as commander parses them. */
export interface LoadArchiveCommandOptions extends CommonOptions {
  force?: boolean;
  platform?: string;
}

/**
 * The `load-archive` action.
 *
 * @example
 * ```ts ignore
 * const code = await loadArchiveCommand(["dangerzone-amd64.tar"], { force: false }, out);
 * ```
 */
export async function loadArchiveCommand(
  args: string[],
  options: LoadArchiveCommandOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  const [file] = args;
  if (file === undefined) return ExitCode.USAGE;
  using ctx = await buildUpdateContext(options, out);
  const interactive = Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
  const result = await loadArchive(ctx, file, {
    force: options.force === true,
    ...(options.platform === undefined ? {} : { platform: parsePlatform(options.platform) }),
    ...(interactive
      ? {
        confirmRollback: (message: string) =>
          confirm({ message: `${message}. Load it anyway?`, default: false }, { output: process.stderr }),
      }
      : {}),
    progress: progressFor(out),
    onStep: (step) => describeStep(step, out),
  });
  out.result({
    ok: true,
    form: result.form,
    image: result.image,
    digest: result.digest,
    platformDigest: result.platformDigest,
    platform: result.platform,
    runtime: result.runtime,
    logs: result.positions,
    signaturesPath: result.signaturesPath,
    rollbackBypassed: result.rollbackBypassed,
    warnings: result.warnings,
  });
  out.line(`loaded ${result.image} (${result.digest}) into ${result.runtime}`);
  return ExitCode.OK;
}

function describeStep(step: LoadArchiveStep, out: Output): void {
  switch (step.step) {
    case "read":
      out.line(
        `read the ${
          step.form === "cosign-save" ? "cosign save layout" : "archive"
        }: ${step.blobs} blob(s), all hashed`,
      );
      return;
    case "verified":
      out.line(`verified ${step.signatures} signature(s) of ${step.reference}@${step.digest}`);
      return;
    case "load":
    case "stored":
    case "tagged":
    case "warning":
      describeCommonStep(step, out);
      return;
    default: {
      const unreachable: never = step;
      return unreachable;
    }
  }
}
