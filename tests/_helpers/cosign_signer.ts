/**
 * Makes cosign-format signatures for tests and the demo, the way `cosign sign --key` with a Rekor
 * upload does: a simple-signing payload, an ECDSA P-256 signature over its exact bytes, a
 * hashedrekord 0.0.1 log entry and a Signed Entry Timestamp (SET) by a test "Rekor" key. There is no
 * cosign binary here; these are byte-compatible with what cosign writes (see the real ones in
 * tests/testdata/vectors/ghcr-signer/).
 *
 * Output comes in both forms the product reads: the `cosign download signature` JSON entry (the
 * signature store format) and the signature manifest a registry holds under `sha256-<hex>.sig`.
 *
 * @module
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";

const encoder = new TextEncoder();

/** A signing key pair for tests. */
export interface TestKey {
  privateKey: KeyObject;
  /** SubjectPublicKeyInfo PEM, as `cosign generate-key-pair` writes `cosign.pub`. */
  publicPem: string;
  /** sha256 hex of the SPKI DER (a Rekor log ID when this is a log key). */
  spkiSha256: string;
}

/** Creates an ECDSA P-256 key pair. */
export function createTestKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const publicPem = String(publicKey.export({ type: "spki", format: "pem" }));
  const der = publicKey.export({ type: "spki", format: "der" });
  return { privateKey, publicPem, spkiSha256: createHash("sha256").update(der).digest("hex") };
}

/** The Rekor bundle as cosign stores it (`dev.sigstore.cosign/bundle`, and `Bundle` in the store). */
export interface RekorBundle {
  SignedEntryTimestamp: string;
  Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
}

/** One signature in `cosign download signature` form (the signature store's list entries). */
export interface CosignSignatureEntry {
  Base64Signature: string;
  Payload: string;
  Cert: string | null;
  Chain: string | null;
  Bundle: RekorBundle | null;
  RFC3161Timestamp: null;
}

/** Options of {@linkcode signImage}. */
export interface SignImageOptions {
  /** The image manifest (or index) digest being signed. */
  digest: string;
  /** The signed docker-reference (repository without tag or digest). */
  reference: string;
  publisher: TestKey;
  rekor: TestKey;
  logIndex: number;
  /** Unix seconds; default now. */
  integratedTime?: number;
  /** Override the payload bytes entirely (for crafted negatives). */
  payload?: Uint8Array;
  /** The `optional` member of the payload; cosign writes null. */
  optional?: Record<string, string> | null;
}

/** Everything one signature consists of. */
export interface SignedImage {
  payload: Uint8Array;
  signatureB64: string;
  bundle: RekorBundle;
  entry: CosignSignatureEntry;
}

/** The simple-signing payload bytes exactly as cosign writes them. */
export function simpleSigningPayload(
  digest: string,
  reference: string,
  optional: Record<string, string> | null = null,
): Uint8Array {
  return encoder.encode(JSON.stringify({
    critical: {
      identity: { "docker-reference": reference },
      image: { "docker-manifest-digest": digest },
      type: "cosign container image signature",
    },
    optional,
  }));
}

/** The hashedrekord 0.0.1 body for a signature, as Rekor returns it (base64 of its JSON). */
export function hashedRekordBody(payload: Uint8Array, signatureB64: string, publicPem: string): string {
  const body = {
    apiVersion: "0.0.1",
    kind: "hashedrekord",
    spec: {
      data: { hash: { algorithm: "sha256", value: createHash("sha256").update(payload).digest("hex") } },
      signature: { content: signatureB64, publicKey: { content: btoa(publicPem) } },
    },
  };
  return btoa(JSON.stringify(body));
}

/**
 * Signs the SET: ECDSA by the log key over the RFC 8785 canonical JSON of
 * `{body, integratedTime, logID, logIndex}` (keys in that order are already canonical here).
 */
export function signSet(rekor: TestKey, payload: RekorBundle["Payload"]): string {
  const canonical = `{"body":${JSON.stringify(payload.body)},"integratedTime":${payload.integratedTime},` +
    `"logID":${JSON.stringify(payload.logID)},"logIndex":${payload.logIndex}}`;
  return sign("sha256", encoder.encode(canonical), rekor.privateKey).toString("base64");
}

/** Signs an image digest like `cosign sign --key` with a Rekor upload. */
export function signImage(options: SignImageOptions): SignedImage {
  const payload = options.payload ??
    simpleSigningPayload(options.digest, options.reference, options.optional ?? null);
  const signatureB64 = sign("sha256", payload, options.publisher.privateKey).toString("base64");
  const bundlePayload = {
    body: hashedRekordBody(payload, signatureB64, options.publisher.publicPem),
    integratedTime: options.integratedTime ?? Math.floor(Date.now() / 1000),
    logIndex: options.logIndex,
    logID: options.rekor.spkiSha256,
  };
  const bundle: RekorBundle = {
    SignedEntryTimestamp: signSet(options.rekor, bundlePayload),
    Payload: bundlePayload,
  };
  const entry: CosignSignatureEntry = {
    Base64Signature: signatureB64,
    Payload: btoa(String.fromCharCode(...payload)),
    Cert: null,
    Chain: null,
    Bundle: bundle,
    RFC3161Timestamp: null,
  };
  return { payload, signatureB64, bundle, entry };
}

/** A blob with its digest, ready to write to a layout or push. */
export interface Blob {
  digest: string;
  bytes: Uint8Array;
}

/** The signature manifest cosign pushes under `sha256-<hex>.sig`, with its blobs. */
export interface SignatureManifest {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
  /** The tag cosign uses: `sha256-<hex of the signed digest>.sig`. */
  tag: string;
}

function blob(bytes: Uint8Array): Blob {
  return { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, bytes };
}

/** Builds the `.sig` manifest for one or more signatures of the same digest, as cosign does. */
export function signatureManifest(signedDigest: string, signatures: SignedImage[]): SignatureManifest {
  const layers = signatures.map((s) => blob(s.payload));
  const config = blob(encoder.encode(JSON.stringify({
    architecture: "",
    created: "0001-01-01T00:00:00Z",
    history: signatures.map(() => ({ created: "0001-01-01T00:00:00Z" })),
    os: "",
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    config: {},
  })));
  const manifest = blob(encoder.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      size: config.bytes.length,
      digest: config.digest,
    },
    layers: signatures.map((s, i) => ({
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      size: layers[i]?.bytes.length ?? 0,
      digest: layers[i]?.digest ?? "",
      annotations: {
        "dev.cosignproject.cosign/signature": s.signatureB64,
        "dev.sigstore.cosign/bundle": JSON.stringify(s.bundle),
      },
    })),
  })));
  return { manifest, config, layers, tag: `${signedDigest.replace(":", "-")}.sig` };
}

/**
 * Writes a signature manifest as an OCI image layout (tagged `tag`) so skopeo can push it
 * byte-for-byte: `skopeo copy --preserve-digests oci:DIR:TAG docker://HOST/REPO:TAG`.
 */
export async function writeSignatureLayout(dir: string, sig: SignatureManifest): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  for (const b of [sig.manifest, sig.config, ...sig.layers]) {
    await Deno.writeFile(`${dir}/blobs/sha256/${b.digest.slice(7)}`, b.bytes);
  }
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: sig.manifest.digest,
        size: sig.manifest.bytes.length,
        annotations: { "org.opencontainers.image.ref.name": sig.tag },
      }],
    }),
  );
}
