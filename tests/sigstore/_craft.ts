/**
 * Crafted cosign signatures for the per-rule tests: everything valid by default (test publisher key,
 * test Rekor key generated here), with one knob per rule to break exactly one check.
 *
 * @module
 */
import { createHash, sign } from "node:crypto";
import { createTestKey, signSet, type TestKey } from "../_helpers/cosign_signer.ts";
import {
  parseSignatureList,
  type UntrustedSignatureEntry,
} from "../../src/sigstore/cosign/cosign_signature.ts";
import { parsePublicKeyPem } from "../../src/sigstore/crypto/keys.ts";
import { RekorKeyring } from "../../src/sigstore/crypto/rekor_keys.ts";
import type { CosignTrust } from "../../src/sigstore/cosign/verifier.ts";
import { type Digest, parseDigest } from "../../src/oci/digest.ts";

const encoder = new TextEncoder();

/** The keys of one crafted world. */
export interface World {
  publisher: TestKey;
  rekor: TestKey;
  trust: CosignTrust;
  digest: Digest;
  reference: string;
}

let cached: Promise<World> | undefined;

/** A publisher key, a Rekor key and the matching trust (made once per test process). */
export function world(): Promise<World> {
  cached ??= (async () => {
    const publisher = createTestKey();
    const rekor = createTestKey();
    return {
      publisher,
      rekor,
      trust: await trustFor(publisher, rekor),
      digest: parseDigest(`sha256:${"ab".repeat(32)}`),
      reference: "ghcr.io/example/sandbox",
    };
  })();
  return cached;
}

/** The trust of a publisher key and a Rekor key. */
export async function trustFor(publisher: TestKey, ...rekors: TestKey[]): Promise<CosignTrust> {
  const keys = await Promise.all(rekors.map(async (r) => ({
    key: await parsePublicKeyPem(encoder.encode(r.publicPem)),
    source: "test",
    validFrom: null,
    validUntil: null,
  })));
  return {
    publicKey: await parsePublicKeyPem(encoder.encode(publisher.publicPem)),
    rekorKeys: new RekorKeyring(keys),
  };
}

/** The knobs; each breaks one rule. */
export interface CraftOptions {
  /** Payload bytes to sign instead of the standard one. */
  payload?: Uint8Array;
  /** The payload the entry carries (default: the signed one). */
  shippedPayload?: Uint8Array;
  /** Changes the DER signature (used in both Base64Signature and the log entry). */
  mutateSignature?: (der: Uint8Array) => Uint8Array;
  /** Changes the hashedrekord body object before it is encoded and logged. */
  mutateBody?: (body: HashedRekordBody) => unknown;
  /** Replaces the base64 body text entirely. */
  bodyText?: string;
  /** Key that signs the SET (default the trusted Rekor key). */
  setSigner?: TestKey;
  /** The logID in the bundle (default the SET signer's). */
  logId?: string;
  /** Log index (default 1000). */
  logIndex?: number;
  /** Integrated time (default 1700000000). */
  integratedTime?: number;
  /** Drop the Rekor bundle. */
  noBundle?: boolean;
  /** Signing key (default the trusted publisher). */
  signer?: TestKey;
  /** Digest and reference written in the payload. */
  digest?: string;
  reference?: string;
  /** `critical.type`. */
  type?: string;
}

/** The hashedrekord 0.0.1 body shape. */
export interface HashedRekordBody {
  apiVersion: string;
  kind: string;
  spec: {
    data: { hash: { algorithm: string; value: string } };
    signature: { content: string; publicKey: { content: string } };
  };
}

/** The standard payload, as cosign writes it. */
export function payloadFor(
  digest: string,
  reference: string,
  type = "cosign container image signature",
): Uint8Array {
  return encoder.encode(
    `{"critical":{"identity":{"docker-reference":${
      JSON.stringify(reference)
    }},"image":{"docker-manifest-digest":` +
      `${JSON.stringify(digest)}},"type":${JSON.stringify(type)}},"optional":null}`,
  );
}

/** Builds one `cosign download signature` entry object. */
export async function craftEntry(options: CraftOptions = {}): Promise<Record<string, unknown>> {
  const w = await world();
  const signer = options.signer ?? w.publisher;
  const payload = options.payload ??
    payloadFor(options.digest ?? w.digest, options.reference ?? w.reference, options.type);
  let der: Uint8Array = new Uint8Array(sign("sha256", payload, signer.privateKey));
  if (options.mutateSignature !== undefined) der = options.mutateSignature(der);
  const signatureB64 = b64(der);
  const body: HashedRekordBody = {
    apiVersion: "0.0.1",
    kind: "hashedrekord",
    spec: {
      data: { hash: { algorithm: "sha256", value: createHash("sha256").update(payload).digest("hex") } },
      signature: { content: signatureB64, publicKey: { content: btoa(signer.publicPem) } },
    },
  };
  const bodyValue = options.mutateBody === undefined ? body : options.mutateBody(body);
  const setSigner = options.setSigner ?? w.rekor;
  const bundlePayload = {
    body: options.bodyText ?? btoa(JSON.stringify(bodyValue)),
    integratedTime: options.integratedTime ?? 1700000000,
    logIndex: options.logIndex ?? 1000,
    logID: options.logId ?? setSigner.spkiSha256,
  };
  return {
    Base64Signature: signatureB64,
    Payload: b64(options.shippedPayload ?? payload),
    Cert: null,
    Chain: null,
    Bundle: options.noBundle === true
      ? null
      : { SignedEntryTimestamp: signSet(setSigner, bundlePayload), Payload: bundlePayload },
    RFC3161Timestamp: null,
  };
}

/** Entries as the store would hand them over. */
export function entriesOf(...objects: unknown[]): UntrustedSignatureEntry[] {
  return parseSignatureList(encoder.encode(JSON.stringify(objects)));
}

/** One crafted entry, parsed. */
export async function crafted(options: CraftOptions = {}): Promise<UntrustedSignatureEntry> {
  const [entry] = entriesOf(await craftEntry(options));
  if (entry === undefined) throw new Error("unreachable");
  return entry;
}

/** Standard base64. */
export function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Re-encodes a DER ECDSA signature with a superfluous leading zero on `r` (same value, not DER). */
export function overlongR(der: Uint8Array): Uint8Array {
  const rLen = der[3] ?? 0;
  const r = der.subarray(4, 4 + rLen);
  const rest = der.subarray(4 + rLen);
  const newR = new Uint8Array([0x02, rLen + 1, 0x00, ...r]);
  const content = new Uint8Array([...newR, ...rest]);
  return new Uint8Array([0x30, content.length, ...content]);
}

export { createTestKey, type TestKey };
