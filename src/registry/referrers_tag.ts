/**
 * Writing the OCI 1.1 referrers tag schema (the fallback where a registry has no referrers API): the
 * referrers of a subject are listed in an image index tagged `sha256-<hex>`. A new referrer is merged
 * into the existing index (its other entries kept byte for byte, no duplicate digest), and the index is
 * pushed again only when it changed.
 *
 * The tag's current content is checked to really be a referrers index (oras-go #1396: some registries
 * answer the tag `sha256-<hex>` with the image itself): it must be an OCI index, it must not be the
 * subject, and it must not carry a subject of its own. Anything else is refused (`REGISTRY_PROTOCOL`)
 * rather than overwritten.
 *
 * @module
 */
import { DangerzoneError, isDangerzoneError } from "../errors.ts";
import type { ReadOptions } from "../oci/content_store.ts";
import type { Descriptor } from "../oci/descriptor.ts";
import { type Digest, digestHex } from "../oci/digest.ts";
import { parseManifest, type RawManifest } from "../oci/manifest.ts";
import { MediaType } from "../oci/media_types.ts";
import type { Reference } from "../oci/reference.ts";
import type { RegistryClient } from "./client.ts";

/** What {@linkcode addToReferrersTag} did. */
export type ReferrersTagOutcome = "created" | "merged" | "present";

/**
 * Lists `referrers` (descriptors of manifests whose subject is `subject`) in the referrers index of
 * `subject` in `ref`'s repository, creating it when the tag does not exist.
 *
 * @example
 * ```ts ignore
 * await addToReferrersTag(client, ref, imageDigest, [bundleManifestDescriptor]);
 * ```
 */
export async function addToReferrersTag(
  client: RegistryClient,
  ref: Reference,
  subject: Digest,
  referrers: readonly Descriptor[],
  options: ReadOptions = {},
): Promise<ReferrersTagOutcome> {
  const tag = `sha256-${digestHex(subject)}`;
  let current: RawManifest | undefined;
  try {
    current = await client.getManifest(ref.withTag(tag), options);
  } catch (err) {
    if (!isDangerzoneError(err, "REGISTRY_NOT_FOUND")) throw err;
  }
  const entries: unknown[] = current === undefined ? [] : existingEntries(current, subject, ref, tag);
  const listed = new Set(entries.map((e) => Reflect.get(e as object, "digest")));
  const added: Descriptor[] = [];
  for (const d of referrers) {
    if (listed.has(d.digest)) continue;
    listed.add(d.digest);
    added.push(d);
  }
  if (added.length === 0) return "present";
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: [...entries, ...added.map(referrerEntry)],
  };
  const raw = new TextEncoder().encode(JSON.stringify(index));
  await client.putManifest(ref, raw, { mediaType: MediaType.OCI_INDEX, tag, ...options });
  return current === undefined ? "created" : "merged";
}

/** The entries of an existing referrers index, as they are; refuses content that is not one. */
function existingEntries(current: RawManifest, subject: Digest, ref: Reference, tag: string): unknown[] {
  const where = `${ref.name()}:${tag}`;
  if (current.descriptor.digest === subject || current.descriptor.mediaType !== MediaType.OCI_INDEX) {
    throw notReferrersIndex(where, "it is not an OCI image index");
  }
  const parsed = parseManifest(current.raw, MediaType.OCI_INDEX);
  if (parsed.kind !== "index" || parsed.subject !== undefined) {
    throw notReferrersIndex(where, "it is an index with a subject of its own");
  }
  const untrusted: unknown = JSON.parse(new TextDecoder().decode(current.raw));
  const manifests = typeof untrusted === "object" && untrusted !== null
    ? Reflect.get(untrusted, "manifests")
    : undefined;
  // parseManifest checked every entry to be a descriptor; keep them exactly as they were written
  return Array.isArray(manifests) ? manifests : [];
}

function referrerEntry(d: Descriptor): Descriptor {
  const entry: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) entry.artifactType = d.artifactType;
  if (d.annotations !== undefined) entry.annotations = d.annotations;
  return entry;
}

function notReferrersIndex(where: string, why: string): DangerzoneError {
  return new DangerzoneError(
    "REGISTRY_PROTOCOL",
    `the referrers tag ${where} does not hold a referrers index (${why}); not overwriting it`,
    {
      hint: "the registry answers the fallback tag with other content; use a registry with the referrers API",
    },
  );
}
