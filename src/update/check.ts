/**
 * `check`: steps 1-2 of `upgrade` (resolve, verify, anti-rollback) and whether the runtime holds the
 * image. Up to date = the verified log index equals the installed one AND the runtime holds the image
 * (its index digest or one of its platform manifests); anything else, including nothing installed, is an
 * update. Never writes anything.
 *
 * @module
 */
import { isDangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import type { RuntimeName } from "../runtime/runtime.ts";
import type { LogStateEntry } from "../store/log_state.ts";
import type { UpdateContext } from "./context.ts";
import { type RemoteVerification, verifyRemoteImage, type VerifyRemoteOptions } from "./verify_remote.ts";

/** The verdict of `check`. */
export type CheckStatus = "up-to-date" | "update-available";

/** What is installed, as far as the state and the runtime say. */
export interface InstalledImage {
  /** The digest recorded with the installed log index of the remote's log, if any. */
  readonly digest: string | null;
  /** That recorded log index (or `last_log_index`), if any. */
  readonly logIndex: number | null;
  /** The runtime that was asked, or null when none answered. */
  readonly runtime: RuntimeName | null;
  /** The digests the runtime reports for the image name, or null when it holds no such image. */
  readonly runtimeDigests: readonly Digest[] | null;
  /** Whether the runtime holds the remote image (index or platform digest). */
  readonly holdsRemote: boolean;
}

/** The result of {@linkcode checkForUpdate}. */
export interface CheckResult {
  /** Up to date, or an update is available. */
  readonly status: CheckStatus;
  /** The verified remote image. */
  readonly remote: RemoteVerification;
  /** The installed image. */
  readonly installed: InstalledImage;
  /** Seconds since the newest verified signature was logged. */
  readonly signatureAgeSeconds: number;
}

/**
 * Checks whether a newer verified image is available. Throws like `verifyRemoteImage` (`ROLLBACK` when
 * the registry offers an older image). A missing runtime counts as nothing installed.
 *
 * @example
 * ```ts ignore
 * const { status } = await checkForUpdate(ctx);
 * Deno.exit(status === "up-to-date" ? 0 : 3);
 * ```
 */
export async function checkForUpdate(
  ctx: UpdateContext,
  options: VerifyRemoteOptions = {},
): Promise<CheckResult> {
  const remote = await verifyRemoteImage(ctx, options);
  const recorded = recordedFor(remote);

  let runtime: RuntimeName | null = null;
  let runtimeDigests: Digest[] | null = null;
  try {
    const rt = await ctx.runtime();
    runtime = rt.name;
    runtimeDigests = await rt.digestsOf(ctx.image.format());
  } catch (err) {
    if (!isDangerzoneError(err, "RUNTIME_NOT_FOUND")) throw err;
  }
  const wanted = new Set<string>([remote.digest, ...remote.platformDigests]);
  const holdsRemote = runtimeDigests !== null && runtimeDigests.some((d) => wanted.has(d));
  const status: CheckStatus = remote.freshness === "up-to-date" && holdsRemote
    ? "up-to-date"
    : "update-available";
  return {
    status,
    remote,
    installed: {
      digest: recorded?.digest ?? null,
      logIndex: recorded?.logIndex ?? remote.installed.legacyLastLogIndex,
      runtime,
      runtimeDigests,
      holdsRemote,
    },
    signatureAgeSeconds: Math.max(0, Math.floor(ctx.now().getTime() / 1000) - remote.newestIntegratedTime),
  };
}

/** The recorded state for the remote's logs (the entry with the highest index among them). */
function recordedFor(remote: RemoteVerification): LogStateEntry | undefined {
  let best: LogStateEntry | undefined;
  for (const p of remote.positions) {
    const e = remote.installed.logs.get(p.logId);
    if (e !== undefined && (best === undefined || e.logIndex > best.logIndex)) best = e;
  }
  return best;
}
