/**
 * Steps 1-2 of `upgrade` (and all of `check` and `store-signatures`): resolve the image tag to the
 * digest of the exact manifest bytes, discover its signatures, verify them with the trusted key, enforce
 * the signed docker-reference, and compare the verified transparency-log positions with the installed
 * state (anti-rollback, DESIGN rule 5). Reads only: nothing is written here.
 *
 * Both signature formats count alike: key-based legacy cosign signatures (`.sig` tag, simple-signing
 * referrers) and cosign v3 Sigstore bundles (referrers; `bundle_signature.ts`), verified against the
 * trusted key and, for bundles, the trusted root's logs. A bundle's statement names no docker-reference
 * (cosign v3 signs none); when it carries a subject name, that name is held to the same reference rule.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { parseManifest, type RawManifest } from "../oci/manifest.ts";
import type { Reference } from "../oci/reference.ts";
import {
  bundleEntryFromBytes,
  type VerifiedBundleSignature,
  verifyCosignBundleSignature,
} from "../sigstore/cosign/bundle_signature.ts";
import {
  type DiscoveredBundle,
  discoverSignatures,
  type SignatureSource,
} from "../sigstore/cosign/discovery.ts";
import {
  type LogPosition,
  requireVerified,
  type SignatureResult,
  type VerifiedImageSignature,
  verifiedLogEntries,
  verifiedLogPositions,
  verifyCosignSignatures,
} from "../sigstore/cosign/policy.ts";
import type { VerifiedCosignSignature } from "../sigstore/cosign/verifier.ts";
import type { LogState } from "../store/log_state.ts";
import { checkRollbackFor } from "./_rollback_check.ts";
import { enforceReference, expectedRepository, normaliseRepository } from "./_reference_policy.ts";
import type { UpdateContext } from "./context.ts";

export { expectedRepository, normaliseRepository } from "./_reference_policy.ts";

/** How the remote image relates to what is installed. */
export type Freshness =
  /** Nothing is recorded as installed. */
  | "not-installed"
  /** A verified log index is higher than the installed one. */
  | "newer"
  /** The verified log index equals the installed one. */
  | "up-to-date";

/** The verdict on one discovered signature, for display. Fields of rejected signatures are null. */
export interface SignatureReport {
  /** Position among the discovered signatures, from 0. */
  readonly index: number;
  /** Where it was found. */
  readonly source: SignatureSource;
  /** A key-based cosign signature, or a Sigstore bundle (cosign v3). */
  readonly kind: "cosign" | "bundle";
  /** The verdict. */
  readonly verdict: "verified" | "rejected";
  /** Rekor log ID (hex) of the verified entry. */
  readonly logId: string | null;
  /** Verified log index. */
  readonly logIndex: number | null;
  /** Verified integration time (Unix seconds). */
  readonly integratedTime: number | null;
  /** The signed docker-reference (null for a bundle whose statement names none, as cosign v3 writes). */
  readonly dockerReference: string | null;
  /** Why it was rejected. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** The result of {@linkcode verifyRemoteImage}. */
export interface RemoteVerification {
  /** The reference that was resolved. */
  readonly reference: Reference;
  /** The manifest or index: exact bytes, digest computed from them. */
  readonly manifest: RawManifest;
  /** The image digest (the manifest's sha256). */
  readonly digest: Digest;
  /** For an index: the digests of its manifests (what a runtime reports after loading one platform). */
  readonly platformDigests: readonly Digest[];
  /** The repository the signed docker-reference had to name (normalised). */
  readonly expectedReference: string;
  /**
   * Every signature that verified and passed the reference policy, legacy and bundle alike (what may be
   * stored and counts for anti-rollback): legacy ones first, then bundles.
   */
  readonly verified: readonly VerifiedImageSignature[];
  /**
   * The untrusted raw entries (`cosign download signature` JSON text, as received) of the VERIFIED
   * signatures only, in the order of {@linkcode RemoteVerification.verified}.
   */
  readonly verifiedEntries: readonly { readonly index: number; readonly raw: string }[];
  /** The cosign v3 bundle signatures among {@linkcode RemoteVerification.verified}. */
  readonly verifiedBundles: readonly VerifiedBundleSignature[];
  /** One report per discovered signature, in discovery order. */
  readonly reports: readonly SignatureReport[];
  /** The verified log positions (highest index per log) of `verified`. */
  readonly positions: readonly LogPosition[];
  /** The installed state that was compared against. */
  readonly installed: LogState;
  /** How the image relates to the installed state. */
  readonly freshness: Freshness;
  /** The newest verified integration time (Unix seconds): the signature age for `--max-age`. */
  readonly newestIntegratedTime: number;
}

/** Options of {@linkcode verifyRemoteImage}. */
export interface VerifyRemoteOptions {
  /** Resolve this reference instead of `ctx.image` (e.g. a digest reference). */
  reference?: Reference;
  /** Aborts network requests. */
  signal?: AbortSignal;
}

/**
 * Resolves, discovers, verifies and compares with the installed state. Throws `SIGNATURE_MISSING` when
 * the registry has no signatures, the first failure's code (exit 10) when none verifies, `ROLLBACK`
 * (exit 11) when every verified log index is lower than the installed one. Writes nothing.
 *
 * @example
 * ```ts ignore
 * const remote = await verifyRemoteImage(ctx);
 * if (remote.freshness !== "up-to-date") console.log(`update: ${remote.digest}`);
 * ```
 */
export async function verifyRemoteImage(
  ctx: UpdateContext,
  options: VerifyRemoteOptions = {},
): Promise<RemoteVerification> {
  const read = options.signal === undefined ? {} : { signal: options.signal };
  const reference = options.reference ?? ctx.image;

  // 1. Resolve: the digest is the sha256 of the bytes received (RegistryClient computes it).
  const manifest = await ctx.registry.getManifest(reference, read);
  const digest = manifest.descriptor.digest;
  const parsed = parseManifest(manifest.raw, manifest.descriptor.mediaType);
  const platformDigests = parsed.kind === "index" ? parsed.manifests.map((m) => m.digest) : [];

  // 2. Discover and verify.
  const expectedReference = expectedRepository(ctx, reference);
  const found = await discoverSignatures(ctx.registry, reference, digest, read);
  const entries = found.cosign.map((c) => c.entry);
  const verdict = await verifyCosignSignatures(entries, ctx, { digest });
  const results: SignatureResult[] = verdict.results.map((r) => enforceReference(r, expectedReference));
  const acceptedLegacy: VerifiedCosignSignature[] = results.flatMap((r) =>
    "verified" in r ? [r.verified] : []
  );
  const bundleResults = found.bundles.map((b) => verifyDiscoveredBundle(ctx, b, digest, expectedReference));
  const acceptedBundles = bundleResults.flatMap((b) => b.verified === undefined ? [] : [b.verified]);
  const accepted: VerifiedImageSignature[] = [...acceptedLegacy, ...acceptedBundles];

  const sourceOf = new Map(found.cosign.map((c) => [c.entry.index, c.source]));
  // Signatures refused for their own input before verification: reported, judged alone.
  const refused: SignatureResult[] = found.rejected.map((r) => ({ index: r.index, error: r.error }));
  const reports: SignatureReport[] = [
    ...results.map((r) => cosignReport(r, sourceOf.get(r.index) ?? "legacy-tag")),
    ...bundleResults.map((b) => b.report),
    ...found.rejected.map((r) => rejected(r.index, r.source, r.kind, r.error)),
  ].sort((a, b) => a.index - b.index);

  if (accepted.length === 0) {
    // Nothing verified: the first failure in discovery order names the rule that failed.
    const failures: SignatureResult[] = [
      ...results,
      ...refused,
      ...bundleResults.flatMap((b) =>
        b.error === undefined ? [] : [{ index: b.report.index, error: b.error }]
      ),
    ].sort((a, b) => a.index - b.index);
    requireVerified({ results: failures, verified: [] });
  }

  // 3. Anti-rollback: only verified log positions count; lower everywhere = ROLLBACK.
  const { state: installed, verdict: verdictOnState } = await checkRollbackFor(ctx, accepted);
  const nothingInstalled = installed.logs.size === 0 && installed.legacyLastLogIndex === null;
  const freshness: Freshness = nothingInstalled ? "not-installed" : verdictOnState;

  return {
    reference,
    manifest,
    digest,
    platformDigests,
    expectedReference,
    verified: accepted,
    verifiedEntries: acceptedLegacy.map((v, i) => ({ index: i, raw: v.raw })),
    verifiedBundles: acceptedBundles,
    reports,
    positions: verifiedLogPositions(accepted),
    installed,
    freshness,
    newestIntegratedTime: Math.max(...accepted.flatMap(verifiedLogEntries).map((e) => e.integratedTime)),
  };
}

function cosignReport(r: SignatureResult, source: SignatureSource): SignatureReport {
  if ("verified" in r) {
    const v = r.verified;
    return {
      index: r.index,
      source,
      kind: "cosign",
      verdict: "verified",
      logId: v.logId,
      logIndex: v.logIndex,
      integratedTime: v.integratedTime,
      dockerReference: v.dockerReference,
      error: null,
    };
  }
  return rejected(r.index, source, "cosign", r.error);
}

function rejected(
  index: number,
  source: SignatureSource,
  kind: "cosign" | "bundle",
  error: DangerzoneError,
): SignatureReport {
  return {
    index,
    source,
    kind,
    verdict: "rejected",
    logId: null,
    logIndex: null,
    integratedTime: null,
    dockerReference: null,
    error: { code: error.code, message: error.message },
  };
}

/** The verdict on one discovered bundle: its report, and the verified signature or the error. */
export interface BundleResult {
  /** For display. */
  report: SignatureReport;
  /** Set when it verified and passed the reference rule. */
  verified?: VerifiedBundleSignature;
  /** Set when it did not. */
  error?: DangerzoneError;
}

/**
 * A cosign v3 image signature (`bundle_signature.ts`: trusted key, trusted root's logs, statement for
 * exactly this digest), then the reference rule on its subject name when it carries one. Never throws:
 * a failure is the result's `error` (also used for the bundles of an archive).
 */
export function verifyDiscoveredBundle(
  ctx: UpdateContext,
  b: DiscoveredBundle,
  digest: Digest,
  expectedReference: string,
): BundleResult {
  try {
    const verified = verifyCosignBundleSignature(
      bundleEntryFromBytes(b.untrustedBytes, b.index),
      { publicKey: ctx.publicKey, trustedRoot: ctx.trustedRoot },
      { digest },
    );
    const signed = verified.dockerReference;
    if (signed !== null && normaliseRepository(signed) !== expectedReference) {
      throw new DangerzoneError(
        "POLICY_REFERENCE_MISMATCH",
        `rule 2 (payload): the signed subject name is "${signed.slice(0, 120)}", not "${expectedReference}"`,
        { hint: "if you pull through a mirror, name the signed repository with --identity" },
      );
    }
    return {
      verified,
      report: {
        index: b.index,
        source: b.source,
        kind: "bundle",
        verdict: "verified",
        logId: verified.logId,
        logIndex: verified.logIndex,
        integratedTime: verified.integratedTime,
        dockerReference: signed,
        error: null,
      },
    };
  } catch (err) {
    const error = err instanceof DangerzoneError ? err : new DangerzoneError(
      "BUNDLE_INVALID",
      `rule 8 (no fail-open): bundle verification stopped on malformed input (${String(err).slice(0, 120)})`,
      { cause: err },
    );
    return { error, report: rejected(b.index, b.source, "bundle", error) };
  }
}
