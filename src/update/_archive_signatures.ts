/**
 * The signatures of an air-gapped archive, both forms, verified with every rule and the reference policy:
 *
 * - the legacy cosign signature manifests (`kind` `dev.cosignproject.cosign/sigs`, what `cosign save`
 *   writes from the `sha256-<hex>.sig` tag) turned into `cosign download signature` entries, exactly as
 *   Dangerzone's Python tool converts them (`convert_oci_images_signatures`: one entry per
 *   simple-signing layer, the payload from the layer blob, the annotations verbatim);
 * - cosign v3 Sigstore bundles: referrer manifests of the image (`kind` {@linkcode CosignKind.REFERRER},
 *   their `subject` the image) whose layers are bundles, verified as `upgrade` verifies them.
 *
 * At least one signature of either form must verify. Shared by `prepare-archive` (on the bytes about to
 * be written) and `load-archive` and `mirror --archive` (on the bytes read). Private to `src/update/`.
 *
 * @module
 */
import { DangerzoneError } from "../errors.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import type { Digest } from "../oci/digest.ts";
import { parseManifest } from "../oci/manifest.ts";
import {
  MAX_PAYLOAD_BYTES,
  MAX_SIGNATURES,
  signatureEntryFromLayer,
  type UntrustedSignatureEntry,
} from "../sigstore/cosign/cosign_signature.ts";
import { MAX_BUNDLE_BYTES } from "../sigstore/formats/bundle.ts";
import type { DiscoveredBundle } from "../sigstore/cosign/discovery.ts";
import { SIMPLE_SIGNING_MEDIA_TYPE } from "../sigstore/cosign/discovery.ts";
import {
  requireVerified,
  type SignatureResult,
  type VerifiedImageSignature,
  verifyCosignSignatures,
} from "../sigstore/cosign/policy.ts";
import { isBundleMediaType } from "../registry/signature_artifacts.ts";
import { enforceReference } from "./_reference_policy.ts";
import type { UpdateContext } from "./context.ts";
import { verifyDiscoveredBundle } from "./verify_remote.ts";

const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle";
const CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate";
const CHAIN_ANNOTATION = "dev.sigstore.cosign/chain";

/** Where the signature manifests and their payloads are read from (each read verified against its descriptor). */
export interface SignatureBlobReader {
  /** The exact bytes of a manifest, checked against `desc` (size and sha256). */
  manifest(desc: Descriptor): Promise<Uint8Array>;
  /** The exact bytes of a small blob, checked against `desc` (size and sha256). */
  blob(desc: Descriptor): Promise<Uint8Array>;
}

/** One signature manifest as read: its bytes and the payload layers it lists. */
export interface SignatureManifestContent {
  /** The manifest's descriptor (digest of `raw`). */
  descriptor: Descriptor;
  /** Its exact bytes. */
  raw: Uint8Array;
  /** Its config blob descriptor. */
  config: Descriptor;
  /** Every layer descriptor. */
  layers: Descriptor[];
}

/** The verdict on an archive's signatures. */
export interface ArchiveSignatures {
  /** The legacy signature manifests read. */
  manifests: SignatureManifestContent[];
  /** The referrer manifests read (with bundle layers or not). */
  referrers: SignatureManifestContent[];
  /** Every legacy entry, in order. */
  entries: UntrustedSignatureEntry[];
  /** The verdict on every legacy entry, then the bundles that failed (after the reference policy). */
  results: SignatureResult[];
  /** The signatures that verified and passed the reference policy (at least one), legacy first. */
  verified: readonly VerifiedImageSignature[];
}

/** What {@linkcode verifySignatureManifests} verifies. */
export interface ArchiveSignatureSources {
  /** Legacy signature manifests (`kind` sigs). */
  manifests: readonly Descriptor[];
  /** Referrer manifests (`kind` referrer): bundles among their layers are verified. */
  referrers?: readonly Descriptor[];
  /** The image digest the signatures must be about. */
  digest: Digest;
  /** The repository the signatures must name. */
  expectedReference: string;
}

/**
 * Reads the signature manifests, converts their simple-signing layers to entries, reads the bundles of
 * the referrer manifests, and verifies both for `digest` with the context's keys (and trusted root); the
 * signed docker-reference must name `expectedReference`. Throws `SIGNATURE_MISSING` when there is no
 * signature of either form, or the first failure's code (exit 10) when none verifies.
 */
export async function verifySignatureManifests(
  ctx: UpdateContext,
  reader: SignatureBlobReader,
  options: ArchiveSignatureSources,
): Promise<ArchiveSignatures> {
  const manifests: SignatureManifestContent[] = [];
  const entries: UntrustedSignatureEntry[] = [];
  for (const desc of options.manifests) {
    const raw = await reader.manifest(desc);
    const parsed = parseManifest(raw, desc.mediaType);
    if (parsed.kind !== "manifest") {
      throw new DangerzoneError(
        "SIGNATURE_INVALID",
        `rule 7 (bounded input): the signature manifest ${desc.digest.slice(0, 19)}… is an index`,
      );
    }
    manifests.push({ descriptor: desc, raw, config: parsed.config, layers: parsed.layers });
    for (const layer of parsed.layers) {
      const annotations = layer.annotations ?? {};
      const signature = annotations[SIGNATURE_ANNOTATION];
      if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || signature === undefined) continue;
      if (entries.length >= MAX_SIGNATURES) {
        throw new DangerzoneError(
          "SIGNATURE_INVALID",
          `rule 7 (bounded input): more than ${MAX_SIGNATURES} signatures; refused`,
        );
      }
      if (layer.size > MAX_PAYLOAD_BYTES) {
        throw new DangerzoneError(
          "PAYLOAD_INVALID",
          `rule 7 (bounded input): signature ${entries.length + 1} has a ${layer.size}-byte payload; ` +
            `at most ${MAX_PAYLOAD_BYTES} bytes are accepted`,
        );
      }
      entries.push(signatureEntryFromLayer({
        untrustedSignatureAnnotation: signature,
        untrustedBundleAnnotation: annotations[BUNDLE_ANNOTATION],
        untrustedCertificateAnnotation: annotations[CERTIFICATE_ANNOTATION],
        untrustedChainAnnotation: annotations[CHAIN_ANNOTATION],
        untrustedPayload: await reader.blob(layer),
      }, entries.length));
    }
  }
  const { referrers, bundles } = await readBundles(
    reader,
    options.referrers ?? [],
    options.digest,
    entries.length,
  );
  if (entries.length === 0 && bundles.length === 0) {
    throw new DangerzoneError(
      "SIGNATURE_MISSING",
      `no cosign signature for ${options.digest}: the archive has no signature layer and no bundle for the image`,
      { hint: "make the archive with prepare-archive (or cosign save) from a signed image" },
    );
  }
  const legacy = entries.length === 0
    ? []
    : (await verifyCosignSignatures(entries, ctx, { digest: options.digest })).results.map((r) =>
      enforceReference(r, options.expectedReference)
    );
  const bundleResults = bundles.map((b) =>
    verifyDiscoveredBundle(ctx, b, options.digest, options.expectedReference)
  );
  const results: SignatureResult[] = [
    ...legacy,
    ...bundleResults.flatMap((b) => b.error === undefined ? [] : [{ index: b.report.index, error: b.error }]),
  ];
  const verified: VerifiedImageSignature[] = [
    ...legacy.flatMap((r) => "verified" in r ? [r.verified] : []),
    ...bundleResults.flatMap((b) => b.verified === undefined ? [] : [b.verified]),
  ];
  if (verified.length === 0) requireVerified({ results, verified: [] });
  return { manifests, referrers, entries, results, verified };
}

/** The referrer manifests of `digest` and the bundles among their layers (bounded, each read verified). */
async function readBundles(
  reader: SignatureBlobReader,
  descriptors: readonly Descriptor[],
  digest: Digest,
  firstIndex: number,
): Promise<{ referrers: SignatureManifestContent[]; bundles: DiscoveredBundle[] }> {
  const referrers: SignatureManifestContent[] = [];
  const bundles: DiscoveredBundle[] = [];
  for (const desc of descriptors) {
    const raw = await reader.manifest(desc);
    const parsed = parseManifest(raw, desc.mediaType);
    if (parsed.kind !== "manifest" || parsed.subject?.digest !== digest) {
      throw new DangerzoneError(
        "SIGNATURE_INVALID",
        `the referrer ${desc.digest.slice(0, 19)}… of the archive is not an image manifest about ${
          digest.slice(0, 19)
        }…`,
      );
    }
    referrers.push({ descriptor: desc, raw, config: parsed.config, layers: parsed.layers });
    for (const layer of parsed.layers) {
      if (!isBundleMediaType(layer.mediaType)) continue;
      const index = firstIndex + bundles.length;
      if (index >= MAX_SIGNATURES) {
        throw new DangerzoneError(
          "SIGNATURE_INVALID",
          `rule 7 (bounded input): more than ${MAX_SIGNATURES} signatures`,
        );
      }
      if (layer.size > MAX_BUNDLE_BYTES) {
        throw new DangerzoneError(
          "BUNDLE_INVALID",
          `rule 7 (bounded input): bundle ${index + 1} is ${layer.size} bytes; at most ${MAX_BUNDLE_BYTES}`,
        );
      }
      bundles.push({
        source: "referrer",
        index,
        manifestDigest: desc.digest,
        mediaType: layer.mediaType,
        untrustedBytes: await reader.blob(layer),
      });
    }
  }
  return { referrers, bundles };
}
