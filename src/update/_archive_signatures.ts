/**
 * The signatures of an air-gapped archive: the legacy cosign signature manifests (`kind`
 * `dev.cosignproject.cosign/sigs`, what `cosign save` writes from the `sha256-<hex>.sig` tag) turned
 * into `cosign download signature` entries, exactly as Dangerzone's Python tool converts them
 * (`convert_oci_images_signatures`: one entry per simple-signing layer, the payload from the layer
 * blob, the annotations verbatim), then verified with every rule and the reference policy. Shared by
 * `prepare-archive` (on the bytes about to be written) and `load-archive` (on the bytes read).
 * Private to `src/update/`.
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
} from "../sigstore/cosign_signature.ts";
import { SIMPLE_SIGNING_MEDIA_TYPE } from "../sigstore/discovery.ts";
import { requireVerified, type SignatureResult, verifyCosignSignatures } from "../sigstore/policy.ts";
import type { VerifiedCosignSignature } from "../sigstore/verifier.ts";
import { enforceReference } from "./_reference_policy.ts";
import type { UpdateContext } from "./context.ts";

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
  /** The manifests read. */
  manifests: SignatureManifestContent[];
  /** Every entry, in order. */
  entries: UntrustedSignatureEntry[];
  /** The verdict on every entry (after the reference policy). */
  results: SignatureResult[];
  /** The signatures that verified and passed the reference policy (at least one). */
  verified: readonly VerifiedCosignSignature[];
}

/**
 * Reads the signature manifests, converts their simple-signing layers to entries and verifies them for
 * `digest` with the context's keys; the signed docker-reference must name `expectedReference`. Throws
 * `SIGNATURE_MISSING` when there is no signature, or the first failure's code (exit 10) when none
 * verifies.
 */
export async function verifySignatureManifests(
  ctx: UpdateContext,
  reader: SignatureBlobReader,
  options: { manifests: readonly Descriptor[]; digest: Digest; expectedReference: string },
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
  if (entries.length === 0) {
    throw new DangerzoneError(
      "SIGNATURE_MISSING",
      `no cosign signature for ${options.digest}: the archive has no signature layer for the image`,
      { hint: "make the archive with prepare-archive (or cosign save) from a signed image" },
    );
  }
  const verdict = await verifyCosignSignatures(entries, ctx, { digest: options.digest });
  const results = verdict.results.map((r) => enforceReference(r, options.expectedReference));
  const verified = requireVerified({
    results,
    verified: results.flatMap((r) => "verified" in r ? [r.verified] : []),
  });
  return { manifests, entries, results, verified };
}
