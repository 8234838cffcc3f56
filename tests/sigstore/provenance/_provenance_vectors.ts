/**
 * The slsa-verifier container vectors (`cosign save` layouts with keyless SLSA v0.2 provenance,
 * image layers pruned) and consistent variants of them: a variant changes the attestation layer
 * (envelope bytes, annotations) or the image entry and rewrites the blobs, the attestation manifest and
 * `index.json` so that every digest still matches. Only the signed content is wrong, so verification,
 * not the layout reader, must catch it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { VECTORS } from "../crypto/_conformance_cases.ts";

/** The vector folder. */
export const SLSA_BASE = `${VECTORS}slsa-verifier/cli/slsa-verifier/testdata/gha_generic_container/`;

/** Builder versions and their Rekor kinds. */
export const SLSA_VERSIONS: Readonly<Record<string, string>> = {
  "v1.4.0": "intoto/0.0.1",
  "v1.9.0": "intoto/0.0.1",
  "v1.10.0": "dsse/0.0.1",
  "v2.1.0": "dsse/0.0.1",
};

/** The repository the vectors were built from. */
export const SLSA_REPOSITORY = "slsa-framework/example-package";

/** The layout directory of a version. */
export function layoutOf(version: string): string {
  return `${SLSA_BASE}${version}/container_workflow_dispatch`;
}

/** The image digest of a version (`.digest` file). */
export function imageDigestOf(version: string): string {
  return Deno.readTextFileSync(`${SLSA_BASE}${version}/container_workflow_dispatch.digest`).trim();
}

type Json = Record<string, unknown>;

function record(value: unknown): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("fixture: not an object");
  }
  return { ...value };
}

function list(value: unknown): Json[] {
  if (!Array.isArray(value)) throw new Error("fixture: not a list");
  return value.map(record);
}

/** A layout read into memory. */
export interface LayoutParts {
  /** `index.json`. */
  index: Json;
  /** Its image entry. */
  image: Json;
  /** Its attestation entry. */
  atts: Json;
  /** The attestation manifest. */
  attManifest: Json;
  /** Its first layer descriptor. */
  layer: Json;
  /** The envelope bytes. */
  envelope: Uint8Array;
  /** The layer annotations. */
  annotations: Record<string, string>;
  /** Reads a blob by digest. */
  blob(digest: unknown): Uint8Array;
}

/** Reads the parts of a vector's layout. */
export function readLayout(version: string): LayoutParts {
  const dir = layoutOf(version);
  const blob = (digest: unknown) => Deno.readFileSync(`${dir}/blobs/sha256/${String(digest).slice(7)}`);
  const index = record(JSON.parse(Deno.readTextFileSync(`${dir}/index.json`)));
  const entries = list(index["manifests"]);
  const kind = (e: Json) => record(e["annotations"])["kind"];
  const image = entries.find((e) => String(kind(e)).startsWith("dev.cosignproject.cosign/image"));
  const atts = entries.find((e) => kind(e) === "dev.cosignproject.cosign/atts");
  if (image === undefined || atts === undefined) throw new Error("fixture: no image or atts entry");
  const attManifest = record(JSON.parse(new TextDecoder().decode(blob(atts["digest"]))));
  const layer = list(attManifest["layers"])[0];
  if (layer === undefined) throw new Error("fixture: no layer");
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(layer["annotations"]))) annotations[k] = String(v);
  return { index, image, atts, attManifest, layer, envelope: blob(layer["digest"]), annotations, blob };
}

/** What a variant changes. */
export interface Variant {
  /** New envelope bytes. */
  envelope?: (envelope: Uint8Array) => Uint8Array;
  /** New layer annotations. */
  annotations?: (annotations: Record<string, string>) => Record<string, string>;
  /** Use the image entry (and manifest blob) of another version. */
  imageOf?: string;
  /** Leave the image manifest blob out (layers are pruned anyway). */
  dropImageManifest?: boolean;
}

function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Writes a consistent variant of `version`'s layout into `dir` (created) and returns `dir`. */
export async function writeVariant(version: string, dir: string, variant: Variant = {}): Promise<string> {
  const parts = readLayout(version);
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  const put = async (bytes: Uint8Array) => {
    const digest = digestOf(bytes);
    await Deno.writeFile(`${dir}/blobs/sha256/${digest.slice(7)}`, bytes);
    return { digest, size: bytes.byteLength };
  };
  // Copy every blob that exists, then add the changed ones.
  for await (const e of Deno.readDir(`${layoutOf(version)}/blobs/sha256`)) {
    await Deno.copyFile(`${layoutOf(version)}/blobs/sha256/${e.name}`, `${dir}/blobs/sha256/${e.name}`);
  }
  let image = parts.image;
  if (variant.imageOf !== undefined) {
    const other = readLayout(variant.imageOf);
    image = other.image;
    await put(other.blob(image["digest"]));
  }
  if (variant.dropImageManifest === true) {
    await Deno.remove(`${dir}/blobs/sha256/${String(image["digest"]).slice(7)}`);
  }
  const envelope = variant.envelope?.(parts.envelope) ?? parts.envelope;
  const annotations = variant.annotations?.({ ...parts.annotations }) ?? parts.annotations;
  const layerRef = await put(envelope);
  const layer = { ...parts.layer, ...layerRef, annotations };
  const manifest = new TextEncoder().encode(JSON.stringify({ ...parts.attManifest, layers: [layer] }));
  const attsRef = await put(manifest);
  const index = { ...parts.index, manifests: [image, { ...parts.atts, ...attsRef }] };
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index));
  return dir;
}

/** Rewrites the statement inside a DSSE envelope (the signature is kept, so it no longer matches). */
export function tamperPayload(envelope: Uint8Array, edit: (statement: string) => string): Uint8Array {
  const env = record(JSON.parse(new TextDecoder().decode(envelope)));
  const statement = atob(String(env["payload"]));
  const edited = edit(statement);
  if (edited === statement) throw new Error("fixture: the edit changed nothing");
  env["payload"] = btoa(edited);
  return new TextEncoder().encode(JSON.stringify(env));
}

/** The PEM certificate of a conformance bundle signed by a GitHub workflow at a branch (not a builder). */
export function beaconCertificatePem(): string {
  const dir = `${VECTORS}sigstore-conformance/test/assets/bundle-verify/`;
  for (const e of Deno.readDirSync(dir)) {
    if (!e.isDirectory || e.name.endsWith("_fail")) continue;
    let text: string;
    try {
      text = Deno.readTextFileSync(`${dir}${e.name}/bundle.sigstore.json`);
    } catch {
      continue;
    }
    const material = record(record(JSON.parse(text))["verificationMaterial"]);
    const cert = material["certificate"] === undefined
      ? list(record(material["x509CertificateChain"])["certificates"])[0]
      : record(material["certificate"]);
    const raw = cert?.["rawBytes"];
    if (typeof raw !== "string" || !atob(raw).includes("oidc-beacon.yml@refs/heads/")) continue;
    const lines = raw.match(/.{1,64}/g) ?? [];
    return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
  }
  throw new Error("fixture: no conformance certificate found");
}
