/**
 * Policy over several signatures of one image: the image is trusted when at least one signature
 * verifies with the trusted key; the others are reported and ignored. An empty list is refused.
 * Only verified signatures are returned, so only they can be stored or count for anti-rollback
 * (DESIGN rule 5).
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { isVerifiedBundleSignature, type VerifiedBundleSignature } from "./verified_bundle_signature.ts";
import type { UntrustedSignatureEntry } from "./cosign_signature.ts";
import { MAX_SIGNATURES } from "./cosign_signature.ts";
import {
  type CosignExpectations,
  type CosignTrust,
  type VerifiedCosignSignature,
  verifyCosignSignature,
} from "./verifier.ts";

/** The verdict on one signature. */
export type SignatureResult =
  | { readonly index: number; readonly verified: VerifiedCosignSignature }
  | { readonly index: number; readonly error: DangerzoneError };

/** The verdicts on every signature of an image, in list order. */
export interface SignaturesVerdict {
  /** One result per entry. */
  readonly results: readonly SignatureResult[];
  /** The signatures that verified. */
  readonly verified: readonly VerifiedCosignSignature[];
}

/**
 * A verified image signature of either format: a key-based legacy cosign signature or a cosign v3
 * Sigstore bundle. Both are nominal types whose constructors are private to their verifier
 * (`verifier.ts`, `bundle_signature.ts`), so only verified signatures can be stored or count for
 * anti-rollback.
 */
export type VerifiedImageSignature = VerifiedCosignSignature | VerifiedBundleSignature;

/** One log position: the highest verified index per log, with its signed integration time. */
export interface LogPosition {
  /** Rekor log ID (hex). */
  readonly logId: string;
  /** Highest verified log index in that log. */
  readonly logIndex: number;
  /** The integration time of that entry. */
  readonly integratedTime: number;
}

/**
 * Verifies every entry (at most {@linkcode MAX_SIGNATURES}); never throws for a bad signature, only
 * records it.
 *
 * @example
 * ```ts ignore
 * const verdict = await verifyCosignSignatures(entries, trust, { digest });
 * const trusted = requireVerified(verdict);
 * ```
 */
export async function verifyCosignSignatures(
  entries: readonly UntrustedSignatureEntry[],
  trust: CosignTrust,
  expected: CosignExpectations,
): Promise<SignaturesVerdict> {
  if (entries.length > MAX_SIGNATURES) {
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      `rule 7 (bounded input): ${entries.length} signatures; at most ${MAX_SIGNATURES} are accepted`,
    );
  }
  const results = await Promise.all(entries.map(async (entry): Promise<SignatureResult> => {
    try {
      return { index: entry.index, verified: await verifyCosignSignature(entry, trust, expected) };
    } catch (err) {
      if (err instanceof DangerzoneError) return { index: entry.index, error: err };
      throw err; // verifyCosignSignature only throws DangerzoneError
    }
  }));
  const verified = results.flatMap((r) => "verified" in r ? [r.verified] : []);
  return { results, verified };
}

/**
 * The verified signatures, or throws: `SIGNATURE_MISSING` for an empty list, otherwise the first
 * failure's code with a one-line message naming the rule that failed.
 */
export function requireVerified(verdict: SignaturesVerdict): readonly VerifiedCosignSignature[] {
  if (verdict.verified.length > 0) return verdict.verified;
  const total = verdict.results.length;
  if (total === 0) {
    throw new DangerzoneError("SIGNATURE_MISSING", "no signatures: the signature list is empty", {
      hint: "the image is not signed, or the signatures were not found",
    });
  }
  const first = verdict.results.find((r) => "error" in r);
  const err = first !== undefined && "error" in first ? first.error : undefined;
  if (err === undefined) {
    throw new DangerzoneError("INTERNAL", "no verified signature and no failure recorded");
  }
  const where = total === 1
    ? "the signature"
    : `none of the ${total} signatures verified; signature ${(first?.index ?? 0) + 1}`;
  return failWith(err, `${where}: ${err.message}`);
}

function failWith(err: DangerzoneError, message: string): never {
  throw new DangerzoneError(err.code, message, {
    cause: err,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
  });
}

/**
 * The verified log entries of one signature: a legacy signature's single SET-verified entry, or every
 * entry of a bundle (each verified by its SET or its inclusion proof and checkpoint).
 */
export function verifiedLogEntries(v: VerifiedImageSignature): readonly LogPosition[] {
  if (isVerifiedBundleSignature(v)) return v.logEntries;
  return [{ logId: v.logId, logIndex: v.logIndex, integratedTime: v.integratedTime }];
}

/**
 * The anti-rollback input: per log ID, the highest index among *verified* signatures (legacy and
 * bundle entries alike; Rekor v2 shards have their own log IDs, so their indexes never mix with
 * another log's). The parameter type admits nothing else.
 */
export function verifiedLogPositions(verified: readonly VerifiedImageSignature[]): LogPosition[] {
  const best = new Map<string, LogPosition>();
  for (const e of verified.flatMap(verifiedLogEntries)) {
    const cur = best.get(e.logId);
    if (cur === undefined || e.logIndex > cur.logIndex) {
      best.set(e.logId, { logId: e.logId, logIndex: e.logIndex, integratedTime: e.integratedTime });
    }
  }
  return [...best.values()].sort((a, b) => a.logId < b.logId ? -1 : a.logId > b.logId ? 1 : 0);
}
