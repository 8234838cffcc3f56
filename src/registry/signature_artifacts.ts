/**
 * Every signature artifact a registry holds for an image, listed in one place for all three consumers
 * (verification, archives, the mirror), as manifests and blob descriptors that can be transferred byte
 * for byte. For each digest asked about (an index and each of its platform manifests):
 *
 * - the legacy cosign tags `sha256-<hex>.sig` (simple-signing signatures) and `sha256-<hex>.att`
 *   (DSSE attestations), and
 * - every referrer (OCI 1.1 referrers API, else the referrers tag schema `sha256-<hex>`, through
 *   `RegistryClient.referrers`): cosign v3 Sigstore bundles, GitHub build attestations, cosign's
 *   OCI 1.1 simple-signing manifests. A referrer counts only when its own manifest names the image as
 *   its `subject` (the listing alone does not).
 *
 * The rules live here once: the tag names, referrers API versus tag schema, the subject rule, the bound
 * ({@linkcode MAX_ARTIFACTS_PER_DIGEST}), a missing tag or repository meaning "none". A consumer only
 * chooses which forms it looks at and which listed referrers are worth a manifest fetch; fetching and
 * parsing the layers stays the consumer's. It lives in `registry/` because it knows only tags,
 * referrers and subjects, and both `sigstore/cosign` and `sigstore/provenance` (which never import each
 * other) read through it.
 *
 * Nothing here is trusted or verified beyond digests: a manifest's digest is computed from its bytes and
 * the blobs are only described (a copy or a read verifies them while they stream). A legacy tag whose
 * manifest cannot be used (malformed, oversized, an index) is that artifact's failure, listed in
 * `unreadable`, never an abort of the others.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, digestHex } from "../oci/digest.ts";
import { type ImageManifest, parseManifest, type RawManifest } from "../oci/manifest.ts";
import type { ReadOptions } from "../oci/content_store.ts";
import type { Reference } from "../oci/reference.ts";
import type { RegistryClient } from "./client.ts";

/** Most artifacts (legacy tags and distinct referrers) looked at per image digest. */
export const MAX_ARTIFACTS_PER_DIGEST = 256;

/** The form of a signature artifact. */
export type SignatureArtifactKind =
  /** `sha256-<hex>.sig`: cosign simple-signing signatures. */
  | "legacy-signature"
  /** `sha256-<hex>.att`: cosign DSSE attestations. */
  | "legacy-attestation"
  /** A manifest whose `subject` is the image (bundles, attestations, OCI 1.1 signatures). */
  | "referrer";

/** Where a consumer looks: a legacy tag (`sig`, `att`) or the referrers. */
export type SignatureArtifactSource = "sig" | "att" | "referrers";

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
  /** The manifest, parsed (always an image manifest, never an index). */
  readonly manifest: ImageManifest;
  /** Config and layers, as the manifest lists them. */
  readonly blobs: readonly Descriptor[];
}

/** A legacy tag whose manifest cannot be used: that artifact's own failure. */
export interface UnreadableArtifact {
  /** Its form. */
  readonly kind: "legacy-signature" | "legacy-attestation";
  /** The image digest it is about. */
  readonly subject: Digest;
  /** The tag it was found under. */
  readonly tag: string;
  /** Why it cannot be used (`MANIFEST_INVALID` or `SIZE_LIMIT_EXCEEDED`). */
  readonly error: DangerzoneError;
}

/** A listed referrer that does not count, and why (for `--debug`). */
export interface IgnoredReferrer {
  /** The entry as the registry listed it. */
  readonly descriptor: Descriptor;
  /** Why it does not count. */
  readonly reason: string;
}

/** What the registry holds for one image digest. */
export interface ArtifactListing {
  /** The image digest. */
  readonly subject: Digest;
  /** Usable artifacts: legacy tags (in the order of `sources`), then referrers, as listed. */
  readonly artifacts: readonly SignatureArtifact[];
  /** Legacy tags that exist but cannot be used. */
  readonly unreadable: readonly UnreadableArtifact[];
  /** Fetched referrers that do not count (not a manifest, or not about `subject`). */
  readonly ignored: readonly IgnoredReferrer[];
  /** How many referrers the registry listed (before any selection). */
  readonly listedReferrers: number;
}

/** Options of {@linkcode listArtifactsOf}. */
export interface ListArtifactsOptions extends ReadOptions {
  /** Where to look, in this order (default: `sig`, `att`, `referrers`). */
  readonly sources?: readonly SignatureArtifactSource[];
  /**
   * Which listed referrers are worth a manifest fetch (default: all). Judged on the registry's listing
   * entry alone, so it can only skip; a fetched referrer still counts only when its manifest names the
   * image as its subject.
   */
  readonly fetchReferrer?: (listed: Descriptor) => boolean;
}

/** True for a Sigstore bundle layer media type (`application/vnd.dev.sigstore.bundle…`). */
export function isBundleMediaType(mediaType: string): boolean {
  return mediaType.startsWith("application/vnd.dev.sigstore.bundle");
}

/** The tag of a legacy cosign artifact of `digest`: `sha256-<hex>.sig` or `.att`. */
export function legacyArtifactTag(digest: Digest, kind: "sig" | "att"): string {
  return `sha256-${digestHex(digest)}.${kind}`;
}

/**
 * Lists every signature artifact of each of `digests` in `ref`'s repository: legacy `.sig` and
 * `.att` tags, then referrers, in that order per digest; for a byte-for-byte copy, so a legacy tag that
 * cannot be used stops the listing (its error is thrown).
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
    const listing = await listArtifactsOf(client, ref, digest, options);
    const unreadable = listing.unreadable[0];
    if (unreadable !== undefined) throw unreadable.error;
    out.push(...listing.artifacts);
  }
  return out;
}

/**
 * Lists the signature artifacts of one image `digest` in `ref`'s repository, from the `sources`
 * asked for. Each legacy tag is fetched once; each selected referrer's manifest once. More than
 * {@linkcode MAX_ARTIFACTS_PER_DIGEST} artifacts: `SIGNATURE_INVALID` (rule 7, bounded input).
 *
 * @example
 * ```ts ignore
 * const { artifacts, unreadable } = await listArtifactsOf(client, ref, digest, { sources: ["sig", "referrers"] });
 * ```
 */
export async function listArtifactsOf(
  client: RegistryClient,
  ref: Reference,
  digest: Digest,
  options: ListArtifactsOptions = {},
): Promise<ArtifactListing> {
  const read: ReadOptions = options.signal === undefined ? {} : { signal: options.signal };
  const sources = options.sources ?? ["sig", "att", "referrers"];
  const artifacts: SignatureArtifact[] = [];
  const unreadable: UnreadableArtifact[] = [];
  const ignored: IgnoredReferrer[] = [];
  let listed: Descriptor[] = [];
  for (const source of sources) {
    if (source === "referrers") {
      listed = await listReferrers(client, ref, digest, read);
      continue;
    }
    const kind = source === "sig" ? "legacy-signature" : "legacy-attestation";
    const tag = legacyArtifactTag(digest, source);
    const found = await legacyArtifact(client, ref, digest, kind, tag, read);
    if (found === null) continue;
    if ("error" in found) unreadable.push(found);
    else artifacts.push(found);
  }
  const unique = [...new Map(listed.map((d) => [d.digest, d])).values()];
  const total = unique.length + artifacts.length + unreadable.length;
  if (total > MAX_ARTIFACTS_PER_DIGEST) {
    throw new DangerzoneError(
      "SIGNATURE_INVALID",
      `rule 7 (bounded input): ${
        digest.slice(0, 19)
      }… has ${total} signature artifacts; at most ${MAX_ARTIFACTS_PER_DIGEST} are looked at`,
      { hint: "this is not a normal image; refusing to process it" },
    );
  }
  for (const entry of unique) {
    if (options.fetchReferrer !== undefined && !options.fetchReferrer(entry)) continue;
    const m = await client.getManifest(ref.withDigest(entry.digest), read);
    const a = referrerArtifact(digest, entry, m);
    if (typeof a === "string") ignored.push({ descriptor: entry, reason: a });
    else artifacts.push(a);
  }
  return { subject: digest, artifacts, unreadable, ignored, listedReferrers: listed.length };
}

/** The referrers the registry lists for `digest`; none when it knows neither the API nor the tag. */
async function listReferrers(
  client: RegistryClient,
  ref: Reference,
  digest: Digest,
  read: ReadOptions,
): Promise<Descriptor[]> {
  try {
    return await client.referrers(ref.withDigest(digest), digest, read);
  } catch (err) {
    if (isDangerzoneError(err, "REGISTRY_NOT_FOUND")) return [];
    throw err;
  }
}

/** A fetched referrer whose manifest is an image manifest naming `subject`; else why it does not count. */
function referrerArtifact(subject: Digest, entry: Descriptor, m: RawManifest): SignatureArtifact | string {
  let manifest;
  try {
    manifest = parseManifest(m.raw, m.descriptor.mediaType);
  } catch (err) {
    if (isDangerzoneError(err, "MANIFEST_INVALID")) return `its manifest is malformed (${err.message})`;
    throw err;
  }
  if (manifest.kind !== "manifest") return "it is an index, not a manifest";
  if (manifest.subject?.digest !== subject) return "its manifest does not name the image as its subject";
  const descriptor: Descriptor = { ...entry, mediaType: m.descriptor.mediaType, size: m.raw.byteLength };
  return artifact("referrer", subject, undefined, descriptor, m.raw, manifest);
}

/** The legacy tag's artifact; null when the tag does not exist; its failure when it cannot be used. */
async function legacyArtifact(
  client: RegistryClient,
  ref: Reference,
  subject: Digest,
  kind: UnreadableArtifact["kind"],
  tag: string,
  read: ReadOptions,
): Promise<SignatureArtifact | UnreadableArtifact | null> {
  const where = `${ref.name()}:${tag}`;
  try {
    const m = await client.getManifest(ref.withTag(tag), read);
    const manifest = parseManifest(m.raw, m.descriptor.mediaType);
    if (manifest.kind !== "manifest") {
      const error = new DangerzoneError(
        "MANIFEST_INVALID",
        `the signature artifact ${where} is an index, not a manifest`,
      );
      return { kind, subject, tag, error };
    }
    return artifact(kind, subject, tag, m.descriptor, m.raw, manifest);
  } catch (err) {
    if (isDangerzoneError(err, "REGISTRY_NOT_FOUND")) return null;
    if (!isDangerzoneError(err, "MANIFEST_INVALID") && !isDangerzoneError(err, "SIZE_LIMIT_EXCEEDED")) {
      throw err;
    }
    const error = new DangerzoneError(
      err.code,
      `the signature artifact ${where} is malformed: ${err.message}`,
      { cause: err },
    );
    return { kind, subject, tag, error };
  }
}

function artifact(
  kind: SignatureArtifactKind,
  subject: Digest,
  tag: string | undefined,
  descriptor: Descriptor,
  raw: Uint8Array,
  manifest: ImageManifest,
): SignatureArtifact {
  return { kind, subject, tag, descriptor, raw, manifest, blobs: [manifest.config, ...manifest.layers] };
}
