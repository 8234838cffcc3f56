/**
 * `prepare-archive [--arch ARCH | --platform os/arch[/variant]] [--output FILE]`: verify the signed image
 * and write an air-gapped archive of one platform (see `src/update/prepare_archive.ts`). Exit 0 written;
 * 10 verification failed; 12 registry failure; 2 usage. Progress goes to stderr: a bar on a terminal,
 * NDJSON events under `--json`.
 *
 * @module
 */
import { DangerzoneError, ExitCode, type ExitCodeValue } from "../errors.ts";
import type { Platform } from "../oci/descriptor.ts";
import { formatPlatform, normalizePlatform, parsePlatform } from "../oci/platform.ts";
import { prepareArchive, type PrepareArchiveStep } from "../update/prepare_archive.ts";
import { describeCommonStep, progressFor } from "./_steps.ts";
import { buildUpdateContext } from "./_context.ts";
import { printReports } from "./_remote_report.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** Options of `prepare-archive` as commander parses them. */
export interface PrepareArchiveCommandOptions extends CommonOptions {
  arch?: string;
  platform?: string;
  output?: string;
}

/**
 * The `prepare-archive` action.
 *
 * @example
 * ```ts ignore
 * const code = await prepareArchiveCommand([], { arch: "amd64", output: "dz.tar" }, out);
 * ```
 */
export async function prepareArchiveCommand(
  _args: string[],
  options: PrepareArchiveCommandOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  const platform = platformOf(options);
  const output = options.output ?? `dangerzone-${platform.architecture}.tar`;
  using ctx = await buildUpdateContext(options, out);
  const result = await prepareArchive(ctx, {
    platform,
    output,
    progress: progressFor(out),
    onStep: (step) => describeStep(step, out),
  });
  out.result({
    ok: true,
    path: result.path,
    reference: result.reference,
    digest: result.image.digest,
    kind: result.kind,
    platform: result.platform,
    rootDigest: result.rootDigest,
    platformDigest: result.platformDigest,
    signatures: result.signatures,
    attestations: result.attestations,
    logs: result.positions,
    imageBytes: result.imageBytes,
    archiveBytes: result.archiveBytes,
  });
  out.line(
    `wrote ${result.path}: ${result.reference} ${result.platform} (${result.image.digest}), ` +
      `${result.signatures} verified signature(s), ${result.archiveBytes} bytes`,
  );
  return ExitCode.OK;
}

function platformOf(options: PrepareArchiveCommandOptions): Platform {
  if (options.arch !== undefined && options.platform !== undefined) {
    throw new DangerzoneError("USAGE", "give --arch or --platform, not both");
  }
  if (options.platform !== undefined) {
    if (!options.platform.includes("/")) {
      throw new DangerzoneError(
        "USAGE",
        `--platform must be os/arch[/variant], not '${options.platform.slice(0, 40)}'`,
      );
    }
    return parsePlatform(options.platform);
  }
  if (options.arch !== undefined) {
    if (options.arch.includes("/")) {
      throw new DangerzoneError(
        "USAGE",
        `--arch takes an architecture such as amd64; use --platform for os/arch`,
      );
    }
    return parsePlatform(options.arch);
  }
  return normalizePlatform({ os: "linux", architecture: Deno.build.arch });
}

function describeStep(step: PrepareArchiveStep, out: Output): void {
  switch (step.step) {
    case "verified":
      out.line(
        `verified ${step.remote.verified.length} signature(s) of ${step.remote.reference.format()} (${step.remote.digest})`,
      );
      printReports(step.remote, out);
      return;
    case "signed":
      out.line(
        `archiving the ${step.target === "platform" ? "platform manifest" : "index"} ${step.digest} ` +
          `with ${step.signatures} verified signature(s)`,
      );
      return;
    case "download":
      out.line(
        `writing ${step.plan.blobs.length} blob(s), ${step.plan.totalBytes} bytes` +
          (step.plan.manifest.descriptor.platform === undefined
            ? ""
            : ` (${formatPlatform(step.plan.manifest.descriptor.platform)})`),
      );
      return;
    case "warning":
      describeCommonStep(step, out);
      return;
    default: {
      const unreachable: never = step;
      return unreachable;
    }
  }
}
