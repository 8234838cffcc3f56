/**
 * `mirror --to REGISTRY/REPO[:TAG] [--image SRC | --archive FILE] [--arch ARCH]... [--force]`: verify the
 * source as `upgrade` (or, for an archive, `load-archive`) does, then copy the image and every signature
 * form into another registry, digests preserved, the tag last. Exit 0 mirrored, 10 verification failed, 11 rollback refused (the destination or the
 * mirror's state holds a newer image; `--force` bypasses only the destination's), 12 registry failure, 13 invalid archive.
 *
 * @module
 */
import { DangerzoneError, ExitCode, type ExitCodeValue } from "../errors.ts";
import { parseReference } from "../oci/reference.ts";
import { mirrorArchive, mirrorImage, type MirrorOptions, type MirrorResult } from "../update/mirror.ts";
import { buildUpdateContext } from "./_context.ts";
import { printReports, remoteJson } from "./_remote_report.ts";
import { progressFor } from "./_steps.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** Options of `mirror` besides the common ones. */
interface MirrorFlags {
  to?: string;
  archive?: string;
  arch?: string[];
  force?: boolean;
}

/**
 * The `mirror` action.
 *
 * @example
 * ```ts ignore
 * const code = await mirrorCommand([], { to: "registry.example/mirror/dangerzone" }, out);
 * ```
 */
export async function mirrorCommand(
  _args: string[],
  options: CommonOptions & MirrorFlags & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  if (options.to === undefined) {
    throw new DangerzoneError("USAGE", "mirror needs --to REGISTRY/REPO[:TAG]");
  }
  const to = parseReference(options.to);
  if (options.archive !== undefined && (options.arch ?? []).length > 0) {
    throw new DangerzoneError("USAGE", "--arch does not apply to --archive (an archive holds one platform)");
  }
  if (to.digest !== undefined) {
    throw new DangerzoneError("USAGE", "--to names a repository and optionally a tag, not a digest");
  }
  using ctx = await buildUpdateContext(options, out);
  const mirrorOptions: MirrorOptions = {
    to,
    architectures: options.arch ?? [],
    force: options.force === true,
    progress: progressFor(out),
    onStep: (s) => {
      if (s.step === "verified") {
        out.line(`verified ${s.source} @ ${s.digest}: ${s.signatures} signature(s)`);
        if (s.remote !== null) printReports(s.remote, out);
      } else if (s.step === "platform") {
        out.line(`  ${s.platform} ${s.digest}: ${s.copiedBytes} bytes copied`);
      } else if (s.step === "artifact") {
        out.line(
          `  ${s.artifact.kind} ${s.artifact.tag ?? s.artifact.descriptor.digest} of ${s.artifact.subject}`,
        );
      } else {
        out.line(`tagged ${s.reference}`);
      }
    },
    ...(out.debug ? { onLog: (line: string) => out.debugLine(line) } : {}),
  };
  const result = options.archive === undefined
    ? await mirrorImage(ctx, mirrorOptions)
    : await mirrorArchive(ctx, options.archive, mirrorOptions);
  out.result(mirrorJson(result, ctx.now()));
  out.line(
    `mirrored ${result.digest} to ${result.destination}: ${result.copiedBytes} bytes copied, ` +
      `${result.stats.mountedBlobs} blob(s) mounted`,
  );
  return ExitCode.OK;
}

function mirrorJson(r: MirrorResult, now: Date): Record<string, unknown> {
  return {
    ok: true,
    source: r.source,
    sourceKind: r.remote === null ? "archive" : "registry",
    destination: r.destination,
    digest: r.digest,
    previousDigest: r.previousDigest,
    remote: r.remote === null ? null : remoteJson(r.remote, now),
    verifiedSignatures: r.verifiedSignatures,
    logs: r.positions.map((p) => ({
      logId: p.logId,
      logIndex: p.logIndex,
      integratedTime: p.integratedTime,
    })),
    platforms: r.platforms,
    signatures: r.signatures,
    copied: {
      bytes: r.copiedBytes,
      uploadedBlobs: r.stats.uploadedBlobs,
      mountedBlobs: r.stats.mountedBlobs,
      manifests: r.stats.manifests,
      restarts: r.stats.restarts,
    },
    stateDir: r.stateDir,
  };
}
