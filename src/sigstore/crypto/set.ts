/**
 * Rekor Signed Entry Timestamps (DESIGN rule 3): the log key is chosen by the entry's log ID (sha256
 * of the key's SubjectPublicKeyInfo DER), and its signature is checked over the RFC 8785 canonical
 * JSON of `{body, integratedTime, logID, logIndex}`.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { canonicalJson } from "../formats/canonical_json.ts";
import { verifySignature } from "./keys.ts";
import type { RekorKey, RekorKeyring } from "./rekor_keys.ts";

/** A Rekor bundle as it arrives: nothing in it is trusted until {@linkcode verifySignedEntryTimestamp}. */
export interface UntrustedTlogEntry {
  /** `Payload.body`: base64 of the log entry, exactly as signed. */
  readonly untrustedBody: string;
  /** `Payload.integratedTime` (Unix seconds). */
  readonly untrustedIntegratedTime: number;
  /** `Payload.logIndex`. */
  readonly untrustedLogIndex: number;
  /** `Payload.logID` (64 lowercase hex). */
  readonly untrustedLogId: string;
  /** The decoded `SignedEntryTimestamp` (DER ECDSA signature by the log). */
  readonly untrustedSignedEntryTimestamp: Uint8Array;
}

/** A log entry whose SET verified: the log vouches for these values. */
export interface SetVerifiedEntry {
  /** base64 of the log entry body; its content still needs binding (tlog_body.ts). */
  readonly body: string;
  /** The integration time the log signed. */
  readonly integratedTime: number;
  /** The log index the log signed. */
  readonly logIndex: number;
  /** The log ID (hex), equal to the sha256 of `rekorKey`'s SPKI. */
  readonly logId: string;
  /** The key that signed the SET. */
  readonly rekorKey: RekorKey;
}

const RULE = "rule 3 (Rekor SET)";

/**
 * Verifies the SET of `entry` with the keyring. Throws `TLOG_UNKNOWN_LOG` when no trusted key has
 * that log ID and `TLOG_SET_INVALID` when the signature does not verify or the integration time is
 * outside the key's validity.
 *
 * @example
 * ```ts ignore
 * const entry = await verifySignedEntryTimestamp(untrustedEntry, await pinnedRekorKeyring());
 * ```
 */
export async function verifySignedEntryTimestamp(
  entry: UntrustedTlogEntry,
  keyring: RekorKeyring,
): Promise<SetVerifiedEntry> {
  const rekorKey = keyring.get(entry.untrustedLogId);
  if (rekorKey === undefined) {
    throw new DangerzoneError(
      "TLOG_UNKNOWN_LOG",
      `${RULE}: the entry is from log ${entry.untrustedLogId.slice(0, 64)}, which is not a trusted Rekor log`,
      { hint: "pass that log's key with --rekor-key or --trusted-root if you trust it" },
    );
  }
  const signed = new TextEncoder().encode(canonicalJson({
    body: entry.untrustedBody,
    integratedTime: entry.untrustedIntegratedTime,
    logID: entry.untrustedLogId,
    logIndex: entry.untrustedLogIndex,
  }));
  if (!await verifySignature(rekorKey.key, entry.untrustedSignedEntryTimestamp, signed)) {
    throw new DangerzoneError(
      "TLOG_SET_INVALID",
      `${RULE}: the Signed Entry Timestamp does not verify with the key of log ${
        entry.untrustedLogId.slice(0, 16)
      }…`,
    );
  }
  const t = entry.untrustedIntegratedTime;
  if (
    (rekorKey.validFrom !== null && t < rekorKey.validFrom) ||
    (rekorKey.validUntil !== null && t > rekorKey.validUntil)
  ) {
    throw new DangerzoneError(
      "TLOG_SET_INVALID",
      `${RULE}: integrated time ${t} is outside the validity of the key of log ${
        entry.untrustedLogId.slice(0, 16)
      }…`,
    );
  }
  return {
    body: entry.untrustedBody,
    integratedTime: entry.untrustedIntegratedTime,
    logIndex: entry.untrustedLogIndex,
    logId: entry.untrustedLogId,
    rekorKey,
  };
}
