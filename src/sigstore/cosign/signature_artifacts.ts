/**
 * Every signature artifact a registry holds for an image, in one place, as manifests and blob
 * descriptors that can be transferred byte for byte (the mirror; archives and verification can list
 * through it too): for each digest asked about (an index and each of its platform manifests),
 *
 * - the legacy cosign tags `sha256-<hex>.sig` (simple-signing signatures) and `sha256-<hex>.att`
 *   (DSSE attestations), and
 * - every referrer (OCI 1.1 referrers API, else the referrers tag schema `sha256-<hex>`, through
 *   `RegistryClient.referrers`): cosign v3 Sigstore bundles, GitHub build attestations, cosign's
 *   OCI 1.1 simple-signing manifests. A referrer counts only when its own manifest names the image as
 *   its `subject` (the listing alone does not).
 *
 * Nothing here is trusted or verified beyond digests: a manifest's digest is computed from its bytes and
 * the blobs are only described (a copy verifies them while they stream). Verification decides which of
 * them vouch for anything; a mirror carries them all, so a client sees what the publisher offered.
 * Bounded: at most {@linkcode MAX_ARTIFACTS_PER_DIGEST} artifacts per digest.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../../errors.ts";
import type { Descriptor } from "../../oci/descriptor.ts";
import { type Digest, digestHex } from "../../oci/digest.ts";
import { parseManifest, type RawManifest } from "../../oci/manifest.ts";
import type { ReadOptions } from "../../oci/content_store.ts";
import type { Reference } from "../../oci/reference.ts";
import type { RegistryClient } from "../../registry/client.ts";

/** Most artifacts (legacy tags and referrers) looked at per image digest. */
export const MAX_ARTIFACTS_PER_DIGEST = 256;

/** The form of a signature artifact. */
export type SignatureArtifactKind =
  /** `sha256-<hex>.sig`: cosign simple-signing signatures. */
  | "legacy-signature"
  /** `sha256-<hex>.att`: cosign DSSE attestations. */
  | "legacy-attestation"
  /** A manifest whose `subject` is the image (bundles, attestations, OCI 1.1 signatures). */
  | "referrer";

/** One signature artifact: a manifest and the blobs it lists. Untrusted. */
export interface SignatureArtifact {
  /** Its form. */
  readonly kind: SignatureArtifactKind;
  /** The image digest it is about. */
  readonly subject: Digest;
  /** The legacy tag it is found under (legacy forms only). */
  readonly tag: string | undefined;
  /**
   * Its descriptor: digest and size of the exact bytes; for a referrer, the entry as the registry listed
   * it (`artifactType`, `annotations`), which a referrers index on another registry repeats.
   */
  readonly descriptor: Descriptor;
  /** The exact manifest bytes (their sha256 is `descriptor.digest`). */
  readonly raw: Uint8Array;
  /** Config and layers, as the manifest lists them. */
  readonly blobs: readonly Descriptor[];
}

/** True for a Sigstore bundle layer media type (`application/vnd.dev.sigstore.bundle…`). */
export function isBundleMediaType(mediaType: string): boolean {
  return mediaType.startsWith("application/vnd.dev.sigstore.bundle");
}

/** The tag of a legacy cosign artifact of `digest`: `sha256-<hex>.sig` or `.att`. */
export function legacyArtifactTag(digest: Digest, kind: "sig" | "att"): string {
  return `sha256-${digestHex(digest)}.${kind}`;
}

/** The referrers tag schema's tag of `digest`: `sha256-<hex>`. */
export function referrersTag(digest: Digest): string {
  return `sha256-${digestHex(digest)}`;
}

/**
 * Lists every signature artifact of each of `digests` in `ref`'s repository: legacy `.sig` and
 * `.att` tags, then referrers, in that order per digest.
 *
 * @example
 * ```ts ignore
 * const artifacts = await listSignatureArtifacts(client, ref, [index.digest, ...platformDigests]);
 * for (const a of artifacts) console.log(a.kind, a.descriptor.digest, a.tag ?? "");
 * ```
 */
export async function listSignatureArtifacts(
  client: RegistryClient,
  ref: Reference,
  digests: readonly Digest[],
  options: ReadOptions = {},
): Promise<SignatureArtifact[]> {
  const out: SignatureArtifact[] = [];
  for (const digest of new Set(digests)) {
    out.push(...await artifactsOf(client, ref, digest, options));
  }
  return out;
}

async function artifactsOf(
  client: RegistryClient,
  ref: Reference,
  digest: Digest,
  read: ReadOptions,
): Promise<SignatureArtifact[]> {
  const out: SignatureArtifact[] = [];
  for (const [kind, suffix] of [["legacy-signature", "sig"], ["legacy-attestation", "att"]] as const) {
    const tag = legacyArtifactTag(digest, suffix);
    const m = await optionalManifest(client, ref.withTag(tag), read);
    if (m === null) continue;
    out.push(artifact(kind, digest, tag, m.descriptor, m));
  }
  let listed: Descriptor[] = [];
  try {
    listed = await client.referrers(ref.withDigest(digest), digest, read);
  } catch (err) {
    if (!isDangerzoneError(err, "REGISTRY_NOT_FOUND")) throw err;
  }
  const unique = [...new Map(listed.map((d) => [d.digest, d])).values()];
  if (unique.length + out.length > MAX_ARTIFACTS_PER_DIGEST) {
    throw new DangerzoneError(
      "SIZE_LIMIT_EXCEEDED",
      `${
        digest.slice(0, 19)
      }… has ${unique.length} referrers; at most ${MAX_ARTIFACTS_PER_DIGEST} are copied`,
      { hint: "this is not a normal image; refusing to process it" },
    );
  }
  for (const entry of unique) {
    const m = await client.getManifest(ref.withDigest(entry.digest), read);
    const a = referrerArtifact(digest, entry, m);
    if (a !== undefined) out.push(a);
  }
  return out;
}

/** A listed referrer whose manifest is an image manifest naming `subject`; else undefined (not ours). */
function referrerArtifact(subject: Digest, entry: Descriptor, m: RawManifest): SignatureArtifact | undefined {
  let parsed;
  try {
    parsed = parseManifest(m.raw);
  } catch (err) {
    if (isDangerzoneError(err, "MANIFEST_INVALID")) return undefined;
    throw err;
  }
  if (parsed.kind !== "manifest" || parsed.subject?.digest !== subject) return undefined;
  const descriptor: Descriptor = { ...entry, mediaType: m.descriptor.mediaType, size: m.raw.byteLength };
  return artifact("referrer", subject, undefined, descriptor, m);
}

function artifact(
  kind: SignatureArtifactKind,
  subject: Digest,
  tag: string | undefined,
  descriptor: Descriptor,
  m: RawManifest,
): SignatureArtifact {
  const parsed = parseManifest(m.raw, m.descriptor.mediaType);
  if (parsed.kind !== "manifest") {
    throw new DangerzoneError(
      "MANIFEST_INVALID",
      `the signature artifact ${tag ?? descriptor.digest} of ${subject.slice(0, 19)}… is an index`,
    );
  }
  return { kind, subject, tag, descriptor, raw: m.raw, blobs: [parsed.config, ...parsed.layers] };
}

async function optionalManifest(
  client: RegistryClient,
  ref: Reference,
  read: ReadOptions,
): Promise<RawManifest | null> {
  try {
    return await client.getManifest(ref, read);
  } catch (err) {
    if (isDangerzoneError(err, "REGISTRY_NOT_FOUND")) return null;
    throw err;
  }
}
