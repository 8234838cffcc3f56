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
 * Verifies the runtime's image against the signature store. Exit-10 codes name the problem: no such
 * image (`POLICY_REJECTED`), no stored signatures or only for other digests (`SIGNATURE_MISSING`), or the
 * stored signatures' own failure.
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
  const { image, runtime, digests: runtimeDigests } = await (options.held ??
    askRuntime(ctx.runtime(), options.image ?? ctx.image.format()));
  if (runtimeDigests === null) {
    throw new DangerzoneError("POLICY_REJECTED", `${runtime.name} holds no image ${image.slice(0, 200)}`, {
      hint: "install it with `dangerzone-image upgrade` (or load-archive), or name the image",
    });
  }
  const keyFileSha256 = ctx.publicKey.fileSha256;
  if (keyFileSha256 === null) {
    throw new DangerzoneError("INTERNAL", "the trusted key has no file digest; the store is keyed by it");
  }
  const expectedReference = expectedRepository(ctx, referenceFor(image, ctx));
  const store = signatureStoreOf(ctx);

  let firstFailure: { digest: Digest; results: SignatureResult[] } | undefined;
  for (const digest of runtimeDigests) {
    // The two stored files at once: each read checks the data directory's levels again.
    const [untrustedList, storedBundles] = await Promise.all([
      store.readUntrusted(keyFileSha256, digest),
      store.readUntrustedBundles(keyFileSha256, digest),
    ]);
    const entries: UntrustedSignatureEntry[] = untrustedList === null
      ? []
      : parseSignatureList(untrustedList);
    const bundles = storedBundles ?? [];
    if (untrustedList === null && bundles.length === 0) continue;
    const verdict = await verifyCosignSignatures(entries, ctx, { digest });
    const legacyResults = verdict.results.map((r) => enforceReference(r, expectedReference));
    const legacy = legacyResults.flatMap((r) => "verified" in r ? [r.verified] : []);
    const bundleResults = bundles.length === 0 ? [] : await verifyStoredBundles(
      ctx,
      bundles.map((b) => ({ index: entries.length + b.index, raw: b.raw })),
      { digest, expectedReference },
    );
    const verified: VerifiedImageSignature[] = [
      ...legacy,
      ...bundleResults.flatMap((r) => "verified" in r ? [r.verified] : []),
    ];
    if (verified.length > 0) {
      return {
        image,
        runtime: runtime.name,
        runtimeDigests,
        digest,
        expectedReference,
        verified,
        stored: entries.length + bundles.length,
      };
    }
    const failures = [...legacyResults, ...bundleResults.flatMap((r) => "error" in r ? [r] : [])];
    firstFailure ??= { digest, results: failures };
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
  const others = await store.listDigests(keyFileSha256);
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
