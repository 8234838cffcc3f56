/**
 * `check`: is a newer verified image available? Exit 0 up to date, 3 update available (nothing installed
 * counts as available), 10 verification failed, 11 rollback refused, 12 registry failure. Writes nothing.
 *
 * @module
 */
import { ExitCode, type ExitCodeValue } from "../errors.ts";
import { checkForUpdate } from "../update/check.ts";
import { buildUpdateContext } from "./_context.ts";
import { describeAge, printReports, remoteJson } from "./_remote_report.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/**
 * The `check` action.
 *
 * @example
 * ```ts ignore
 * const code = await checkCommand([], { image: "ghcr.io/freedomofpress/dangerzone/v1:latest" }, out);
 * ```
 */
export async function checkCommand(
  _args: string[],
  options: CommonOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  using ctx = await buildUpdateContext(options, out);
  const result = await checkForUpdate(ctx);
  const { remote, installed } = result;
  out.result({
    ok: true,
    status: result.status,
    updateAvailable: result.status === "update-available",
    image: ctx.image.format(),
    remote: remoteJson(remote, ctx.now()),
    installed: {
      digest: installed.digest,
      logIndex: installed.logIndex,
      runtime: installed.runtime,
      runtimeDigests: installed.runtimeDigests,
      present: installed.holdsRemote,
    },
    signatureAgeSeconds: result.signatureAgeSeconds,
  });
  const logIndex = Math.max(...remote.positions.map((p) => p.logIndex));
  const age = describeAge(result.signatureAgeSeconds);
  if (result.status === "up-to-date") {
    out.line(
      `up to date: ${ctx.image.format()} is ${remote.digest} (log index ${logIndex}, signed ${age} ago)`,
    );
  } else {
    const was = installed.digest === null && installed.logIndex === null
      ? "nothing installed"
      : `installed ${installed.digest ?? "(unknown digest)"} (log index ${installed.logIndex ?? "?"})` +
        (installed.holdsRemote ? ", and the runtime already holds the new image" : "");
    out.line(
      `update available: ${ctx.image.format()} is ${remote.digest} (log index ${logIndex}, signed ${age} ago); ${was}`,
    );
  }
  printReports(remote, out);
  return result.status === "up-to-date" ? ExitCode.OK : ExitCode.UPDATE_AVAILABLE;
}
