/**
 * Steps 1-2 of `upgrade` (and all of `check` and `store-signatures`): resolve the image tag to the
 * digest of the exact manifest bytes, discover its signatures, verify them with the trusted key, enforce
 * the signed docker-reference, and compare the verified transparency-log positions with the installed
 * state (anti-rollback, DESIGN rule 5). Reads only: nothing is written here.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { parseManifest, type RawManifest } from "../oci/manifest.ts";
import type { Reference } from "../oci/reference.ts";
import { encodeBase64 } from "../sigstore/_base64.ts";
import { type VerifiedBundle, verifyBundle } from "../sigstore/bundle_verifier.ts";
import {
  COSIGN_SIGN_PREDICATE_TYPE,
  type DiscoveredBundle,
  discoverSignatures,
  type SignatureSource,
} from "../sigstore/discovery.ts";
import {
  type LogPosition,
  requireVerified,
  type SignatureResult,
  verifiedLogPositions,
  verifyCosignSignatures,
} from "../sigstore/policy.ts";
import type { VerifiedCosignSignature } from "../sigstore/verifier.ts";
import { checkRollback, type LogState } from "../store/log_state.ts";
import { enforceReference, expectedRepository } from "./_reference_policy.ts";
import { legacyLogIdOf, logStateOf, type UpdateContext } from "./context.ts";

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
  /** The signed docker-reference (null for bundles, whose statement names none). */
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
  /** The key-based signatures that verified and passed the reference policy (what may be stored). */
  readonly verified: readonly VerifiedCosignSignature[];
  /**
   * The untrusted raw entries (`cosign download signature` JSON text, as received) of the VERIFIED
   * signatures only, in the order of {@linkcode RemoteVerification.verified}.
   */
  readonly verifiedEntries: readonly { readonly index: number; readonly raw: string }[];
  /** Sigstore bundles (cosign v3) that verified; reported, not stored (the store holds cosign entries). */
  readonly verifiedBundles: readonly VerifiedBundle[];
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
  const accepted = results.flatMap((r) => "verified" in r ? [r.verified] : []);
  const bundleResults = found.bundles.map((b) => verifyDiscoveredBundle(ctx, b, digest));

  const sourceOf = new Map(found.cosign.map((c) => [c.entry.index, c.source]));
  const reports: SignatureReport[] = [
    ...results.map((r) => cosignReport(r, sourceOf.get(r.index) ?? "legacy-tag")),
    ...bundleResults.map((b) => b.report),
  ].sort((a, b) => a.index - b.index);

  if (accepted.length === 0) {
    const verifiedBundles = bundleResults.filter((b) => b.verified !== undefined).length;
    if (entries.length === 0 && verifiedBundles > 0) {
      throw new DangerzoneError(
        "POLICY_REJECTED",
        `${verifiedBundles} cosign v3 bundle signature(s) of ${digest} verified, but no key-based cosign ` +
          "signature: the signature store shared with Dangerzone and its anti-rollback state hold only those",
        { hint: "sign the image with cosign's legacy signature format as well (--new-bundle-format=false)" },
      );
    }
    if (entries.length === 0) {
      const firstBundle = bundleResults[0]?.error;
      if (firstBundle !== undefined) {
        throw new DangerzoneError(firstBundle.code, `the bundle signature: ${firstBundle.message}`, {
          cause: firstBundle,
        });
      }
    }
    requireVerified({ results, verified: accepted });
  }

  // 3. Anti-rollback: only verified log positions count; lower everywhere = ROLLBACK.
  const installed = await logStateOf(ctx).read();
  const verdictOnState = checkRollback(installed, accepted, { legacyLogId: legacyLogIdOf(ctx) });
  const nothingInstalled = installed.logs.size === 0 && installed.legacyLastLogIndex === null;
  const freshness: Freshness = nothingInstalled ? "not-installed" : verdictOnState;

  return {
    reference,
    manifest,
    digest,
    platformDigests,
    expectedReference,
    verified: accepted,
    verifiedEntries: accepted.map((v, i) => ({ index: i, raw: v.raw })),
    verifiedBundles: bundleResults.flatMap((b) => b.verified === undefined ? [] : [b.verified]),
    reports,
    positions: verifiedLogPositions(accepted),
    installed,
    freshness,
    newestIntegratedTime: Math.max(...accepted.map((v) => v.integratedTime)),
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

interface BundleResult {
  report: SignatureReport;
  verified?: VerifiedBundle;
  error?: DangerzoneError;
}

/**
 * A cosign v3 image signature: a DSSE bundle signed by the trusted key whose in-toto statement has the
 * image digest as subject (checked by `verifyBundle`) and the cosign sign predicate type.
 */
function verifyDiscoveredBundle(ctx: UpdateContext, b: DiscoveredBundle, digest: Digest): BundleResult {
  try {
    const verified = verifyBundle(b.untrustedBytes, {
      artifact: { digest },
      policy: { kind: "key", publicKeyPem: spkiPem(ctx.publicKey.spki) },
      ...(ctx.trustedRoot === undefined ? {} : { trustedRoot: ctx.trustedRoot }),
    });
    if (verified.content !== "dsseEnvelope" || verified.statement === undefined) {
      throw new DangerzoneError(
        "PAYLOAD_INVALID",
        "rule 2 (payload): the bundle holds a message signature, not a cosign image signature statement",
      );
    }
    if (verified.statement.predicateType !== COSIGN_SIGN_PREDICATE_TYPE) {
      throw new DangerzoneError(
        "PAYLOAD_INVALID",
        `rule 2 (payload): the statement's predicate type is "${
          verified.statement.predicateType.slice(0, 80)
        }", not "${COSIGN_SIGN_PREDICATE_TYPE}"`,
      );
    }
    const entry = verified.tlogEntries[0];
    const logIndex = entry === undefined ? null : Number(entry.logIndex);
    return {
      verified,
      report: {
        index: b.index,
        source: b.source,
        kind: "bundle",
        verdict: "verified",
        logId: entry?.logId ?? null,
        logIndex: logIndex !== null && Number.isSafeInteger(logIndex) ? logIndex : null,
        integratedTime: entry?.integratedTime ?? null,
        dockerReference: null,
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

function spkiPem(spki: Uint8Array): string {
  const b64 = encodeBase64(spki).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}
