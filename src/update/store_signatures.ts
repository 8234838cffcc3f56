/**
 * `store-signatures`: fetch, verify and store the remote signatures without installing anything. Only
 * signatures that verified are written (the store's writer takes nothing else), under the data-directory
 * lock, each file atomically; the anti-rollback state (`last_log_index` and the per-log state) moves
 * forward with them, and a rollback is refused again under the lock.
 *
 * @module
 */
import { checkRollbackFor } from "./_rollback_check.ts";
import { withStoreLock } from "../store/lock.ts";
import { logStateOf, signatureStoreOf, type UpdateContext } from "./context.ts";
import { type RemoteVerification, verifyRemoteImage, type VerifyRemoteOptions } from "./verify_remote.ts";

/** The result of {@linkcode storeSignatures}. */
export interface StoredSignatures {
  /** What was verified. */
  readonly remote: RemoteVerification;
  /** The signature file written. */
  readonly path: string;
  /** `<data-dir>/signatures/last_log_index`. */
  readonly lastLogIndexPath: string;
}

/**
 * Verifies the remote image's signatures ({@linkcode verifyRemoteImage}) and stores the verified ones.
 * Throws like {@linkcode verifyRemoteImage} (nothing is written then), or `LOCK_HELD`.
 *
 * @example
 * ```ts ignore
 * const stored = await storeSignatures(ctx);
 * console.log(stored.path);
 * ```
 */
export async function storeSignatures(
  ctx: UpdateContext,
  options: VerifyRemoteOptions = {},
): Promise<StoredSignatures> {
  const remote = await verifyRemoteImage(ctx, options);
  const state = logStateOf(ctx);
  const path = await withStoreLock(ctx.dataDir, async () => {
    // The state may have moved since it was read: refuse a rollback again, under the lock.
    await checkRollbackFor(ctx, remote.verified);
    const written = await signatureStoreOf(ctx).write(remote.verified);
    await state.record(remote.verified);
    return written;
  });
  return { remote, path, lastLogIndexPath: state.lastLogIndexPath };
}
