/**
 * `mirror --to REGISTRY/REPO[:TAG] [--image SRC] [--arch ARCH]... [--force]`: verify the source as
 * `upgrade` does, then copy the image and every signature form into another registry, digests preserved,
 * the tag last. Exit 0 mirrored, 10 verification failed, 11 rollback refused (the destination or the
 * mirror's state holds a newer image; `--force` bypasses only the destination's), 12 registry failure.
 *
 * @module
 */
import { DangerzoneError, ExitCode, type ExitCodeValue } from "../errors.ts";
import { parseReference } from "../oci/reference.ts";
import { mirrorImage, type MirrorResult } from "../update/mirror.ts";
import { buildUpdateContext } from "./_context.ts";
import { printReports, remoteJson } from "./_remote_report.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** Options of `mirror` besides the common ones. */
interface MirrorFlags {
  to?: string;
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
  if (to.digest !== undefined) {
    throw new DangerzoneError("USAGE", "--to names a repository and optionally a tag, not a digest");
  }
  using ctx = await buildUpdateContext(options, out);
  const result = await mirrorImage(ctx, {
    to,
    architectures: options.arch ?? [],
    force: options.force === true,
    onStep: (s) => {
      if (s.step === "verified") {
        out.line(`verified ${s.remote.reference.format()} @ ${s.remote.digest}`);
        printReports(s.remote, out);
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
  });
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
    source: r.remote.reference.format(),
    destination: r.destination,
    digest: r.digest,
    previousDigest: r.previousDigest,
    remote: remoteJson(r.remote, now),
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
