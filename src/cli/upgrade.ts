/**
 * `upgrade [--prune] [--max-age DAYS]`: install the newest signed image (see `src/update/upgrade.ts`).
 * Exit 0 upgraded or already up to date; 10 verification failed; 11 rollback refused; 12 registry or
 * download failure; 14 runtime failure; 1 `LOCK_HELD` (another run holds the data directory) or
 * `DISK_FULL`. Progress goes to stderr: a bar on a terminal, NDJSON events under `--json`.
 *
 * @module
 */
import { DangerzoneError, ExitCode, type ExitCodeValue } from "../errors.ts";
import { describeCommonStep, progressFor } from "./_steps.ts";
import { upgradeImage, type UpgradeStep } from "../update/upgrade.ts";
import { buildUpdateContext } from "./_context.ts";
import { printReports, remoteJson } from "./_remote_report.ts";
import type { CommonOptions } from "./common.ts";
import type { Output } from "./output.ts";

/** Options of `upgrade` as commander parses them. */
export interface UpgradeCommandOptions extends CommonOptions {
  prune?: boolean;
  maxAge?: string;
}

/**
 * The `upgrade` action.
 *
 * @example
 * ```ts ignore
 * const code = await upgradeCommand([], { prune: true, maxAge: "30" }, out);
 * ```
 */
export async function upgradeCommand(
  _args: string[],
  options: UpgradeCommandOptions & Record<string, unknown>,
  out: Output,
): Promise<ExitCodeValue> {
  const maxAgeDays = parseMaxAge(options.maxAge);
  using ctx = await buildUpdateContext(options, out);
  const result = await upgradeImage(ctx, {
    prune: options.prune === true,
    maxAgeDays,
    progress: progressFor(out),
    onStep: (step) => describeStep(step, out),
  });
  const remote = {
    digest: result.digest,
    platformDigest: result.platformDigest,
    platform: result.platform,
    logs: result.positions.map((p) => ({
      logId: p.logId,
      logIndex: p.logIndex,
      integratedTime: p.integratedTime,
    })),
    logIndex: Math.max(...result.positions.map((p) => p.logIndex)),
  };
  out.result({
    ok: true,
    status: result.status,
    image: result.image,
    ...remote,
    runtime: result.runtime,
    signaturesPath: result.signaturesPath,
    downloadedBytes: result.downloadedBytes,
    pruned: result.pruned,
    signatureAge: result.signatureAge,
    warnings: result.warnings,
  });
  if (result.status === "up-to-date") {
    out.line(`already up to date: ${result.image} is ${result.digest} (log index ${remote.logIndex})`);
  } else {
    out.line(
      `upgraded: ${result.image} is now ${result.digest}` +
        (result.platformDigest !== null && result.platformDigest !== result.digest
          ? ` (${result.platform ?? "?"} manifest ${result.platformDigest})`
          : "") +
        `, log index ${remote.logIndex}`,
    );
  }
  return ExitCode.OK;
}

function describeStep(step: UpgradeStep, out: Output): void {
  switch (step.step) {
    case "verified": {
      const r = step.remote;
      out.line(`verified ${r.verified.length} signature(s) of ${r.reference.format()} (${r.digest})`);
      printReports(r, out);
      out.debugLine(JSON.stringify(remoteJson(r, new Date())));
      return;
    }
    case "download": {
      const p = step.plan;
      const cached = p.blobs.length - p.missing.length;
      out.line(
        `downloading ${p.missing.length} blob(s), ${p.missingBytes} bytes` +
          (cached > 0 ? ` (${cached} already in the cache, re-verified)` : ""),
      );
      return;
    }
    case "pruned":
      out.line(step.ids.length === 0 ? "nothing to prune" : `pruned ${step.ids.length} older image(s)`);
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

function parseMaxAge(text: string | undefined): number {
  if (text === undefined) return 30;
  const days = Number(text);
  if (text.trim() === "" || !Number.isFinite(days) || days < 0) {
    throw new DangerzoneError("USAGE", `--max-age must be a number of days, not '${text.slice(0, 40)}'`);
  }
  return days;
}
