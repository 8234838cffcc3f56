/**
 * The rollback check over any state, including one Dangerzone wrote: Dangerzone's Python updater
 * (freedomofpress/dangerzone `dangerzone/updater/signatures.py`) records only `last_log_index` (an
 * index, no time) and the installed image's signature list. When a candidate's entries are in a log
 * that state does not know (a Rekor v2 shard, whose indexes start again at 0), the index says nothing,
 * so the installed image's signing time is derived from what the runtime holds: its digest, and the
 * stored signatures for that digest, verified again in full ({@linkcode verifyLocalImage}). When that
 * fails, the time is unknown and such a candidate is refused (`ROLLBACK`). Private to `src/update/`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import { type VerifiedImageSignature, verifiedLogPositions } from "../sigstore/cosign/policy.ts";
import {
  checkRollback,
  type InstalledTime,
  type LogState,
  needsInstalledTime,
  type RollbackVerdict,
} from "../store/log_state.ts";
import { legacyLogIdOf, logStateOf, type UpdateContext } from "./context.ts";
import { verifyLocalImage } from "./verify_local.ts";

/** The state read and the verdict on it. */
export interface RollbackCheck {
  /** The anti-rollback state as read. */
  readonly state: LogState;
  /** Newer or up to date (a rollback throws). */
  readonly verdict: RollbackVerdict;
}

/**
 * Reads the state of `ctx`'s data directory and applies the rollback rule to the candidate's verified
 * signatures, deriving the installed image's signing time only when the rule needs it. Throws
 * `ROLLBACK`.
 */
export async function checkRollbackFor(
  ctx: UpdateContext,
  verified: readonly VerifiedImageSignature[],
): Promise<RollbackCheck> {
  const state = await logStateOf(ctx).read();
  const legacyLogId = legacyLogIdOf(ctx);
  const installedTime = needsInstalledTime(state, verified, { legacyLogId })
    ? await installedSigningTime(ctx)
    : undefined;
  return { state, verdict: checkRollback(state, verified, { legacyLogId, installedTime }) };
}

/**
 * The latest signed integration time of the stored signatures that verify for the image the runtime
 * holds, or why there is none (no runtime, no such image, nothing stored, nothing verifies).
 */
export async function installedSigningTime(ctx: UpdateContext): Promise<InstalledTime> {
  try {
    const local = await verifyLocalImage(ctx);
    const times = verifiedLogPositions(local.verified).map((p) => p.integratedTime);
    if (times.length === 0) return { unknown: "the installed image's signatures carry no log entry" };
    return { integratedTime: Math.max(...times) };
  } catch (err) {
    // Fail closed: an unknown time refuses candidates from other logs (the caller says why).
    if (err instanceof DangerzoneError) {
      return { unknown: `the installed image's stored signatures do not verify: ${err.message}` };
    }
    throw err;
  }
}
