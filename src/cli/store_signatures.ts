/**
 * `store-signatures [--image REF]`: fetch, verify and store the remote signatures (only the verified
 * ones) and move the anti-rollback state forward, without installing anything. Exit 0 stored, 10
 * verification failed (nothing stored), 11 rollback refused, 12 registry failure.
 *
 * @module
 */
import { ExitCode, type ExitCodeValue } from "../errors.ts";
import { storeSignatures } from "../update/store_signatures.ts";
import { buildUpdateContext } from "./_context.ts";
import { printReports, remoteJson } from "./_remote_report.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/**
 * The `store-signatures` action.
 *
 * @example
 * ```ts ignore
 * const code = await storeSignaturesCommand([], { image: "ghcr.io/freedomofpress/dangerzone/v1:latest" }, out);
 * ```
 */
export async function storeSignaturesCommand(
  _args: string[],
  options: CommonOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  using ctx = await buildUpdateContext(options, out);
  const stored = await storeSignatures(ctx);
  const { remote } = stored;
  out.result({
    ok: true,
    image: ctx.image.format(),
    remote: remoteJson(remote, ctx.now()),
    stored: { path: stored.path, count: remote.verified.length, lastLogIndexPath: stored.lastLogIndexPath },
  });
  out.line(
    `stored ${remote.verified.length} verified signature(s) of ${remote.digest} in ${stored.path}`,
  );
  printReports(remote, out);
  return ExitCode.OK;
}
