/**
 * Signature discovery in a registry, all three ways cosign stores image signatures (DESIGN "Formats"):
 *
 * 1. the legacy tag `sha256-<hex>.sig`: a manifest whose layers are simple-signing payloads carrying the
 *    `dev.cosignproject.cosign/signature` and `dev.sigstore.cosign/bundle` annotations; each becomes an
 *    untrusted `cosign download signature` entry;
 * 2. the OCI 1.1 referrers API, and
 * 3. the referrers tag schema (`sha256-<hex>` index) where cosign v3 stores Sigstore bundles (a DSSE
 *    envelope over an in-toto statement with predicate type `https://sigstore.dev/cosign/sign/v1`) and
 *    where cosign's OCI 1.1 mode stores simple-signing manifests.
 *
 * The listing is {@linkcode listArtifactsOf} (`registry/signature_artifacts.ts`), the one the mirror and
 * archives copy from: it owns the tag names, referrers API versus tag schema, the subject rule and the
 * bound; this module only chooses which listed referrers are worth a fetch and reads their layers.
 *
 * Nothing here is trusted: the result only says what the registry offered, bounded (at most
 * {@linkcode MAX_SIGNATURES} signatures, payloads of at most 64 KiB, manifests of at most 4 MiB, every blob
 * checked for size and digest). A referrer is never accepted on its `artifactType` alone: its manifest's
 * layer media types decide, and the bundle is parsed and verified later.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import type { Descriptor } from "../../oci/descriptor.ts";
import { type Digest, digestHex } from "../../oci/digest.ts";
import type { ImageManifest } from "../../oci/manifest.ts";
import type { Reference } from "../../oci/reference.ts";
import type { RegistryClient } from "../../registry/client.ts";
import { isBundleMediaType, listArtifactsOf } from "../../registry/signature_artifacts.ts";
import { MAX_BUNDLE_BYTES } from "../formats/bundle.ts";
import {
  MAX_PAYLOAD_BYTES,
  MAX_SIGNATURES,
  signatureEntryFromLayer,
  type UntrustedSignatureEntry,
} from "./cosign_signature.ts";

/** Layer media type of a cosign simple-signing payload. */
export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
/** Artifact type cosign's OCI 1.1 mode gives a simple-signing signature manifest. */
export const COSIGN_SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json";
/** The predicate type of a cosign v3 image signature (an in-toto statement in a DSSE bundle). */
export const COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1";

const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle";
const CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate";
const CHAIN_ANNOTATION = "dev.sigstore.cosign/chain";
const PREDICATE_TYPE_ANNOTATION = "dev.sigstore.bundle.predicateType";
const BUNDLE_LAYER_TYPES: readonly string[] = [
  "application/vnd.dev.sigstore.bundle.v0.3+json",
  "application/vnd.dev.sigstore.bundle+json;version=0.3",
  "application/vnd.dev.sigstore.bundle+json;version=0.2",
  "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/** Where a signature was found. */
export type SignatureSource = "legacy-tag" | "referrer";

/** A key-based cosign signature as found, in `cosign download signature` form. Untrusted. */
export interface DiscoveredCosignSignature {
  /** Where it was found. */
  readonly source: SignatureSource;
  /** The entry (its `index` numbers every discovered signature from 0). */
  readonly entry: UntrustedSignatureEntry;
}

/** A Sigstore bundle as found (cosign v3). Untrusted: only its size and digest were checked. */
export interface DiscoveredBundle {
  /** Where it was found. */
  readonly source: SignatureSource;
  /** Position among every discovered signature, from 0. */
  readonly index: number;
  /** The referrer manifest's digest. */
  readonly manifestDigest: Digest;
  /** The bundle layer's media type. */
  readonly mediaType: string;
  /** The exact bundle bytes. */
  readonly untrustedBytes: Uint8Array;
}

/**
 * A signature refused before verification because its own input is unusable (an oversized payload or
 * bundle, an unreadable `.sig` manifest). It is that signature's failure, reported in the list; the
 * others are still judged.
 */
export interface RejectedSignature {
  /** Where it was found. */
  readonly source: SignatureSource;
  /** Position among every discovered signature, from 0. */
  readonly index: number;
  /** A key-based cosign signature or a Sigstore bundle. */
  readonly kind: "cosign" | "bundle";
  /** Why it was refused. */
  readonly error: DangerzoneError;
}

/** Everything a registry offered for one image digest. */
export interface DiscoveredSignatures {
  /** The image digest the signatures were looked up for. */
  readonly digest: Digest;
  /** Key-based cosign signatures (legacy tag, and simple-signing referrers). */
  readonly cosign: readonly DiscoveredCosignSignature[];
  /** Sigstore bundles (cosign v3 referrers). */
  readonly bundles: readonly DiscoveredBundle[];
  /** Signatures refused for their own malformed or oversized input (each judged alone). */
  readonly rejected: readonly RejectedSignature[];
  /** Whether the legacy `.sig` tag existed. */
  readonly legacyTagFound: boolean;
  /** How many referrers the registry listed. */
  readonly referrerCount: number;
  /** Total signatures found (cosign + bundles + rejected). */
  readonly total: number;
}

/** Options of {@linkcode discoverSignatures}. */
export interface DiscoverOptions {
  /** Aborts the lookups. */
  signal?: AbortSignal;
  /** Most signatures accepted (default and maximum {@linkcode MAX_SIGNATURES}). */
  maxSignatures?: number;
  /** Throw `SIGNATURE_MISSING` when nothing is found (default true). */
  requireAny?: boolean;
}

/**
 * Finds every signature the registry offers for `digest` in the repository of `ref`: the legacy `.sig`
 * tag, then the referrers (API, else the tag schema). Bounded; every blob is verified while it streams.
 * Nothing found anywhere: `SIGNATURE_MISSING` (unless `requireAny: false`).
 *
 * @example
 * ```ts ignore
 * const found = await discoverSignatures(client, parseReference("ghcr.io/freedomofpress/dangerzone/v1"), digest);
 * console.log(found.cosign.length, found.bundles.length);
 * ```
 */
export async function discoverSignatures(
  client: RegistryClient,
  ref: Reference,
  digest: Digest,
  options: DiscoverOptions = {},
): Promise<DiscoveredSignatures> {
  const limit = Math.min(options.maxSignatures ?? MAX_SIGNATURES, MAX_SIGNATURES);
  const read = options.signal === undefined ? {} : { signal: options.signal };
  const repo = ref.withDigest(digest);
  const found = new Collector(limit);

  // The legacy `.sig` tag, then the referrers (API, else the tag schema): one listing for every consumer.
  const listing = await listArtifactsOf(client, ref, digest, {
    ...read,
    sources: ["sig", "referrers"],
    fetchReferrer: mayBeSignature,
  });
  for (const u of listing.unreadable) {
    // An unusable `.sig` manifest is that signature's failure; referrers may still hold valid ones.
    found.reject(
      "legacy-tag",
      "cosign",
      new DangerzoneError("SIGNATURE_INVALID", `rule 7 (bounded input): ${u.error.message}`, {
        cause: u.error,
      }),
    );
  }
  for (const a of listing.artifacts) {
    const source: SignatureSource = a.kind === "referrer" ? "referrer" : "legacy-tag";
    await collectSimpleSigning(client, repo, a.manifest, source, found, read);
    if (a.kind === "referrer") {
      await collectBundles(client, repo, a.manifest, a.descriptor.digest, found, read);
    }
  }

  const total = found.next;
  if (total === 0 && (options.requireAny ?? true)) {
    throw new DangerzoneError(
      "SIGNATURE_MISSING",
      `no signatures found for ${ref.name()}@${digest}: no ${`sha256-${
        digestHex(digest).slice(0, 12)
      }…`}.sig tag and no signature referrers`,
      {
        hint: "the image is not signed, or its signatures live in another repository; check --image",
      },
    );
  }
  return {
    digest,
    cosign: found.cosign,
    bundles: found.bundles,
    rejected: found.rejected,
    legacyTagFound: listing.artifacts.some((a) => a.kind === "legacy-signature") ||
      listing.unreadable.length > 0,
    referrerCount: listing.listedReferrers,
    total,
  };
}

class Collector {
  readonly cosign: DiscoveredCosignSignature[] = [];
  readonly bundles: DiscoveredBundle[] = [];
  readonly rejected: RejectedSignature[] = [];
  readonly #limit: number;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get next(): number {
    return this.cosign.length + this.bundles.length + this.rejected.length;
  }

  /** Records a signature refused for its own input (it takes the next index). */
  reject(source: SignatureSource, kind: "cosign" | "bundle", error: DangerzoneError): void {
    this.rejected.push({ source, index: this.reserve(), kind, error });
  }

  reserve(): number {
    const n = this.next;
    if (n >= this.#limit) {
      throw new DangerzoneError(
        "SIGNATURE_INVALID",
        `rule 7 (bounded input): more than ${this.#limit} signatures offered; refused`,
      );
    }
    return n;
  }
}

/** Skips referrers that are clearly something else; never accepts anything by its type. */
function mayBeSignature(d: Descriptor): boolean {
  const predicate = d.annotations?.[PREDICATE_TYPE_ANNOTATION];
  if (predicate !== undefined && predicate !== COSIGN_SIGN_PREDICATE_TYPE) return false;
  const type = d.artifactType;
  if (type === undefined) return true;
  return type === COSIGN_SIGNATURE_ARTIFACT_TYPE || isBundleMediaType(type);
}

async function collectSimpleSigning(
  client: RegistryClient,
  repo: Reference,
  manifest: ImageManifest,
  source: SignatureSource,
  found: Collector,
  read: { signal?: AbortSignal },
): Promise<void> {
  for (const layer of manifest.layers) {
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    const annotations = layer.annotations ?? {};
    const signature = annotations[SIGNATURE_ANNOTATION];
    if (signature === undefined) continue; // not a signature layer
    if (layer.size > MAX_PAYLOAD_BYTES) {
      found.reject(
        source,
        "cosign",
        new DangerzoneError(
          "PAYLOAD_INVALID",
          `rule 7 (bounded input): signature ${found.next + 1} has a ${layer.size}-byte payload; at most ` +
            `${MAX_PAYLOAD_BYTES} bytes are accepted`,
        ),
      );
      continue;
    }
    const index = found.reserve();
    const untrustedPayload = await readBlob(client, repo, layer, read);
    found.cosign.push({
      source,
      entry: signatureEntryFromLayer({
        untrustedSignatureAnnotation: signature,
        untrustedBundleAnnotation: annotations[BUNDLE_ANNOTATION],
        untrustedCertificateAnnotation: annotations[CERTIFICATE_ANNOTATION],
        untrustedChainAnnotation: annotations[CHAIN_ANNOTATION],
        untrustedPayload,
      }, index),
    });
  }
}

async function collectBundles(
  client: RegistryClient,
  repo: Reference,
  manifest: ImageManifest,
  manifestDigest: Digest,
  found: Collector,
  read: { signal?: AbortSignal },
): Promise<void> {
  for (const layer of manifest.layers) {
    if (!BUNDLE_LAYER_TYPES.includes(layer.mediaType)) continue;
    if (layer.size > MAX_BUNDLE_BYTES) {
      found.reject(
        "referrer",
        "bundle",
        new DangerzoneError(
          "BUNDLE_INVALID",
          `rule 7 (bounded input): bundle ${
            found.next + 1
          } is ${layer.size} bytes; at most ${MAX_BUNDLE_BYTES}`,
        ),
      );
      continue;
    }
    const index = found.reserve();
    found.bundles.push({
      source: "referrer",
      index,
      manifestDigest,
      mediaType: layer.mediaType,
      untrustedBytes: await readBlob(client, repo, layer, read),
    });
  }
}

/** Reads a small blob whose stream errors unless it matches its descriptor's size and digest. */
async function readBlob(
  client: RegistryClient,
  repo: Reference,
  descriptor: Descriptor,
  read: { signal?: AbortSignal },
): Promise<Uint8Array> {
  const stream = await client.getBlob(repo, descriptor, read);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Types the public API refers to, re-exported so its documentation is complete.
export type { Digest } from "../../oci/digest.ts";
export type { Reference } from "../../oci/reference.ts";
export type { RegistryClient } from "../../registry/client.ts";
export type { UntrustedSignatureEntry } from "./cosign_signature.ts";
