/**
 * Pushes the attestations of a `cosign save` layout (its `index.json` entries of kind
 * `dev.cosignproject.cosign/atts`, with their blobs) into a registry repository as the image's legacy
 * `sha256-<hex>.att` tag, the way `cosign attest` stores them: real attestation vectors in a real registry.
 *
 * @module
 */
import { join } from "node:path";
import { parseManifest } from "../../src/oci/manifest.ts";
import type { Reference } from "../../src/oci/reference.ts";
import type { RegistryClient } from "../../src/registry/client.ts";

/** Pushes every attestation manifest of the layout `dir` as `sha256-<hex of imageDigest>.att` in `ref`'s repository. */
export async function pushLayoutAttestations(
  client: RegistryClient,
  ref: Reference,
  dir: string,
  imageDigest: string,
): Promise<void> {
  const index = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  const blob = (d: string) => Deno.readFile(join(dir, "blobs", "sha256", d.slice(7)));
  for (const entry of index.manifests) {
    if (entry.annotations?.kind !== "dev.cosignproject.cosign/atts") continue;
    const raw = await blob(entry.digest);
    const m = parseManifest(raw);
    if (m.kind !== "manifest") throw new Error("fixture: att is not a manifest");
    for (const d of [m.config, ...m.layers]) await client.putBlob(ref, d, await blob(d.digest));
    await client.putManifest(ref, raw, { tag: `sha256-${imageDigest.slice(7)}.att` });
  }
}
