/**
 * `verify-local [IMAGE]`: the image the container runtime holds has stored signatures that verify with
 * the trusted key, for one of the digests the runtime reports for it (the index digest after a pull, the
 * platform manifest digest after a load: Dangerzone issue #1516). Both stored formats count: the legacy
 * `<digest hex>.json` list (Dangerzone's) and our `<digest hex>.bundles.json` list of cosign v3 bundles
 * (verified against the trusted key and the trusted root's logs). The stored files are untrusted and are
 * verified again in full. Reads only.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Digest } from "../oci/digest.ts";
import { parseReference } from "../oci/reference.ts";
import type { ContainerRuntime, RuntimeName } from "../runtime/runtime.ts";
import type { UntrustedBundleEntry } from "../sigstore/cosign/bundle_signature.ts";
import type { SigstoreTrustedRoot } from "../sigstore/crypto/trusted_root.ts";
import { parseSignatureList, type UntrustedSignatureEntry } from "../sigstore/cosign/cosign_signature.ts";
import {
  requireVerified,
  type SignatureResult,
  type VerifiedImageSignature,
  verifyCosignSignatures,
} from "../sigstore/cosign/policy.ts";
import { enforceReference, expectedRepository, normaliseRepository } from "./_reference_policy.ts";
import { signatureStoreOf, type UpdateContext } from "./context.ts";

/**
 * What {@linkcode verifyLocalImage} needs of an {@linkcode UpdateContext}: no registry client (the
 * command reads only the runtime and the signature store). The bundles' trusted root is either the
 * context's `trustedRoot` or, when given, `bundleTrustedRoot()`, called only when bundles are stored.
 */
export type VerifyLocalContext =
  & Pick<UpdateContext, "image" | "publicKey" | "rekorKeys" | "identity" | "dataDir" | "runtime">
  & {
    /** The bundles' trusted root (undefined = the production root). */
    readonly trustedRoot?: SigstoreTrustedRoot | undefined;
    /** Builds the bundles' trusted root on demand; takes precedence over `trustedRoot`. */
    bundleTrustedRoot?(): Promise<SigstoreTrustedRoot | undefined>;
  };

/** Options of {@linkcode verifyLocalImage}. */
export interface VerifyLocalOptions {
  /** The image name or ID the runtime holds (default: the context's image). */
  image?: string | undefined;
  /**
   * The runtime's answer, when the caller asked it early with {@linkcode askRuntime} (`verify-local`
   * asks while it reads its keys and trust); its image replaces `image`.
   */
  held?: Promise<HeldImage> | undefined;
}

/** What the runtime answered for an image: the digests it holds for it, or null when it holds none. */
export interface HeldImage {
  /** The image name or ID asked about. */
  readonly image: string;
  /** The runtime asked. */
  readonly runtime: ContainerRuntime;
  /** Every digest the runtime reports for the image, or null when it holds no such image. */
  readonly digests: Digest[] | null;
}

/**
 * Asks the runtime (one call) which digests it holds for `image`, for
 * {@linkcode VerifyLocalOptions.held}. The answer decides nothing by itself: the stored signatures must
 * verify for one of these digests.
 *
 * @example
 * ```ts ignore
 * const held = askRuntime(ctx.runtime(), "ghcr.io/freedomofpress/dangerzone/v1");
 * const local = await verifyLocalImage(ctx, { held });
 * ```
 */
export async function askRuntime(
  runtime: ContainerRuntime | Promise<ContainerRuntime>,
  image: string,
): Promise<HeldImage> {
  const asked = await runtime;
  return { image, runtime: asked, digests: await asked.digestsOf(image) };
}

/** The result of {@linkcode verifyLocalImage}. */
export interface LocalVerification {
  /** The image that was asked about. */
  readonly image: string;
  /** The runtime asked. */
  readonly runtime: RuntimeName;
  /** Every digest the runtime reports for the image. */
  readonly runtimeDigests: readonly Digest[];
  /** The digest whose stored signatures verified. */
  readonly digest: Digest;
  /** The repository the signed docker-reference had to name. */
  readonly expectedReference: string;
  /** The verified signatures (legacy ones first, then cosign v3 bundles). */
  readonly verified: readonly VerifiedImageSignature[];
  /** How many signatures (legacy and bundles) were stored for that digest. */
  readonly stored: number;
}

/**
 * How many digests' stored signatures are verified while the runtime is still answering: all of them
 * when the key's folder holds at most this many (the image in use, its platform manifest, an older
 * release or two), none when it holds more (then only the runtime's digests are read, after it answers).
 */
export const SPECULATIVE_DIGESTS = 4;

/**
 * Verifies the runtime's image against the signature store. Exit-10 codes name the problem: no such
 * image (`POLICY_REJECTED`), no stored signatures or only for other digests (`SIGNATURE_MISSING`), or the
 * stored signatures' own failure.
 *
 * The runtime is asked first. While it answers (a podman call is most of the command's time), the
 * stored signatures of up to {@linkcode SPECULATIVE_DIGESTS} digests are read and verified, so that only
 * a lookup remains once it has answered. Only the verdicts of the digests the runtime reports count; the
 * others, and their failures, are dropped.
 *
 * @example
 * ```ts ignore
 * const local = await verifyLocalImage(ctx, { image: "ghcr.io/freedomofpress/dangerzone/v1" });
 * console.log(local.digest);
 * ```
 */
export async function verifyLocalImage(
  ctx: VerifyLocalContext,
  options: VerifyLocalOptions = {},
): Promise<LocalVerification> {
  const asked = options.image ?? ctx.image.format();
  const held = options.held ?? askRuntime(ctx.runtime(), asked);
  held.catch(() => {}); // awaited below, after the speculative work has started
  const keyFileSha256 = ctx.publicKey.fileSha256;
  if (keyFileSha256 === null) {
    throw new DangerzoneError("INTERNAL", "the trusted key has no file digest; the store is keyed by it");
  }
  const store = signatureStoreOf(ctx);
  // keyed by both: the reference rule is part of the verdict
  const verdicts = new Map<string, Promise<StoredVerdict | null>>();
  const verdictOf = (digest: Digest, expectedReference: string) => {
    const key = `${digest} ${expectedReference}`;
    let verdict = verdicts.get(key);
    if (verdict === undefined) {
      verdict = verifyStored(ctx, store, keyFileSha256, { digest, expectedReference });
      verdicts.set(key, verdict);
    }
    return verdict;
  };
  const listed = await speculate(store, keyFileSha256, expectedReferenceOrNull(ctx, asked), verdictOf);

  const { image, runtime, digests: runtimeDigests } = await held;
  if (runtimeDigests === null) {
    throw new DangerzoneError("POLICY_REJECTED", `${runtime.name} holds no image ${image.slice(0, 200)}`, {
      hint: "install it with `dangerzone-image upgrade` (or load-archive), or name the image",
    });
  }
  const expectedReference = expectedRepository(ctx, referenceFor(image, ctx));

  let firstFailure: { digest: Digest; results: SignatureResult[] } | undefined;
  for (const digest of runtimeDigests) {
    const verdict = await verdictOf(digest, expectedReference);
    if (verdict === null) continue;
    if (verdict.verified.length > 0) {
      return {
        image,
        runtime: runtime.name,
        runtimeDigests,
        digest,
        expectedReference,
        verified: verdict.verified,
        stored: verdict.stored,
      };
    }
    firstFailure ??= { digest, results: verdict.failures };
  }
  if (firstFailure !== undefined) {
    try {
      requireVerified({ results: firstFailure.results, verified: [] });
    } catch (err) {
      if (!(err instanceof DangerzoneError)) throw err;
      throw new DangerzoneError(
        err.code,
        `stored signatures of ${firstFailure.digest.slice(0, 19)}… do not verify: ${err.message}`,
        { cause: err, ...(err.hint === undefined ? {} : { hint: err.hint }) },
      );
    }
  }
  const others = listed ?? await store.listDigests(keyFileSha256);
  const shown = runtimeDigests.map((d) => `${d.slice(0, 19)}…`).join(", ");
  if (others.length > 0) {
    throw new DangerzoneError(
      "SIGNATURE_MISSING",
      `the stored signatures are for other digests (${
        others.slice(0, 3).map((d) => `${d.slice(0, 19)}…`).join(", ")
      }), not for ${image.slice(0, 200)} (${shown})`,
      { hint: "the runtime holds another image than the verified one; run `dangerzone-image upgrade`" },
    );
  }
  throw new DangerzoneError(
    "SIGNATURE_MISSING",
    `no stored signatures for ${image.slice(0, 200)} (${shown}) with key sha256:${
      keyFileSha256.slice(0, 12)
    }…`,
    { hint: "run `dangerzone-image store-signatures` or `dangerzone-image upgrade`" },
  );
}

/** The stored signatures of one digest, verified: what verified and what failed. */
interface StoredVerdict {
  /** The verified signatures (legacy ones first, then cosign v3 bundles). */
  readonly verified: VerifiedImageSignature[];
  /** Each signature's failure, when none verified. */
  readonly failures: SignatureResult[];
  /** How many signatures (legacy and bundles) were stored. */
  readonly stored: number;
}

/**
 * Reads and verifies the stored signatures of `digest` (null when none are stored). The stored files
 * are untrusted and verified again in full; a damaged file rejects.
 */
async function verifyStored(
  ctx: VerifyLocalContext,
  store: ReturnType<typeof signatureStoreOf>,
  keyFileSha256: string,
  expected: { digest: Digest; expectedReference: string },
): Promise<StoredVerdict | null> {
  const { digest, expectedReference } = expected;
  // The two stored files at once: each read checks the data directory's levels again.
  const [untrustedList, storedBundles] = await Promise.all([
    store.readUntrusted(keyFileSha256, digest),
    store.readUntrustedBundles(keyFileSha256, digest),
  ]);
  const entries: UntrustedSignatureEntry[] = untrustedList === null ? [] : parseSignatureList(untrustedList);
  const bundles = storedBundles ?? [];
  if (untrustedList === null && bundles.length === 0) return null;
  const verdict = await verifyCosignSignatures(entries, ctx, { digest });
  const legacyResults = verdict.results.map((r) => enforceReference(r, expectedReference));
  const bundleResults = bundles.length === 0 ? [] : await verifyStoredBundles(
    ctx,
    bundles.map((b) => ({ index: entries.length + b.index, raw: b.raw })),
    expected,
  );
  return {
    verified: [
      ...legacyResults.flatMap((r) => "verified" in r ? [r.verified] : []),
      ...bundleResults.flatMap((r) => "verified" in r ? [r.verified] : []),
    ],
    failures: [...legacyResults, ...bundleResults.flatMap((r) => "error" in r ? [r] : [])],
    stored: entries.length + bundles.length,
  };
}

/**
 * Lists the key's folder and starts {@linkcode verifyStored} for each of its digests when there are at
 * most {@linkcode SPECULATIVE_DIGESTS}; returns the listing (null when it was not made or failed). A
 * failure here (a damaged file, an unreadable folder) counts only if the runtime reports that digest,
 * where it is met again.
 */
async function speculate(
  store: ReturnType<typeof signatureStoreOf>,
  keyFileSha256: string,
  expectedReference: string | null,
  verdictOf: (digest: Digest, expectedReference: string) => Promise<StoredVerdict | null>,
): Promise<Digest[] | null> {
  if (expectedReference === null) return null;
  let digests: Digest[];
  try {
    digests = await store.listDigests(keyFileSha256);
  } catch {
    return null; // met again, and reported, when the runtime's answer needs the folder
  }
  if (digests.length <= SPECULATIVE_DIGESTS) {
    for (const digest of digests) verdictOf(digest, expectedReference).catch(() => {});
  }
  return digests;
}

/**
 * The repository the signatures must name for the image asked about, or null when that cannot be
 * known before the runtime answers (it is worked out again, and its error reported, after).
 */
function expectedReferenceOrNull(ctx: VerifyLocalContext, image: string): string | null {
  try {
    return expectedRepository(ctx, referenceFor(image, ctx));
  } catch {
    return null;
  }
}

type BundleResult =
  | { readonly index: number; readonly verified: VerifiedImageSignature }
  | { readonly index: number; readonly error: DangerzoneError };

/**
 * Stored cosign v3 bundles, each verified again in full, with the reference rule on a signed subject
 * name. The bundle verifier and its Sigstore libraries are loaded only here, when bundles are stored.
 */
async function verifyStoredBundles(
  ctx: VerifyLocalContext,
  entries: UntrustedBundleEntry[],
  expected: { digest: Digest; expectedReference: string },
): Promise<BundleResult[]> {
  const { verifyCosignBundleSignature } = await import("../sigstore/cosign/bundle_signature.ts");
  const trustedRoot = ctx.bundleTrustedRoot === undefined ? ctx.trustedRoot : await ctx.bundleTrustedRoot();
  return entries.map((entry) => {
    try {
      const v = verifyCosignBundleSignature(entry, { publicKey: ctx.publicKey, trustedRoot }, {
        digest: expected.digest,
      });
      if (
        v.dockerReference !== null && normaliseRepository(v.dockerReference) !== expected.expectedReference
      ) {
        throw new DangerzoneError(
          "POLICY_REFERENCE_MISMATCH",
          `rule 2 (payload): the signed subject name is "${
            v.dockerReference.slice(0, 120)
          }", not "${expected.expectedReference}"`,
          { hint: "if you pull through a mirror, name the signed repository with --identity" },
        );
      }
      return { index: entry.index, verified: v };
    } catch (err) {
      if (err instanceof DangerzoneError) return { index: entry.index, error: err };
      throw err; // verifyCosignBundleSignature only throws DangerzoneError
    }
  });
}

/** The repository an image argument names; an image ID or an unparsable name means the context's image. */
function referenceFor(image: string, ctx: VerifyLocalContext): ReturnType<typeof parseReference> {
  if (/^(sha256:)?[0-9a-f]{12,64}$/.test(image)) return ctx.image;
  try {
    return parseReference(image);
  } catch (err) {
    if (err instanceof DangerzoneError && err.code === "REFERENCE_INVALID") return ctx.image;
    throw err;
  }
}
